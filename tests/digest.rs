//! The weekly digest: its numbers against a hand check of the archive, and its delivery over
//! HTTPS to a local server that behaves like the Telegram Bot API (rate limits, failures, lost
//! and late answers, a crash between sending and recording, two senders at once, refusals).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::botapi::{Behaviour, BotApi};
use crate::support::{root, succeeded, text};

const TOKEN: &str = "123456:TEST-token-never-printed";

/// A fleet config for the demo archive, its report directory with the demo's ledger, and a
/// [telegram] section pointing at `api`.
fn setup(dir: &Path, api: &BotApi) -> PathBuf {
    let out = dir.join("out");
    let demo = std::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(["demo", "--out", out.to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    succeeded(&demo);
    write_config(dir, &api.url, Some(&api.ca_file()), "60s");
    dir.join("patrol.toml")
}

fn write_config(dir: &Path, api: &str, ca_file: Option<&Path>, timeout: &str) {
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    let config = format!(
        r#"fleet = "VisionKing 03002"
timezone = "America/Sao_Paulo"
archive = "{archive}"
output = "out"

[telegram]
api_base = "{api}"
token_env = "PATROL_TEST_BOT_TOKEN"
chat_id = "-100200300"
attempts = 3
backoff = "20ms"
timeout = "{timeout}"
{ca}
[[node]]
name = "vk01"
"#,
        archive = root().join("snapshots/demo").display()
    );
    std::fs::write(dir.join("patrol.toml"), config).unwrap();
}

fn digest(config: &Path, week: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patrol"));
    cmd.args([
        "digest",
        "--week",
        week,
        "--config",
        config.to_str().unwrap(),
    ])
    .args(extra)
    .env("PATROL_TEST_BOT_TOKEN", TOKEN)
    .current_dir(config.parent().unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    for stream in [&out.stdout, &out.stderr] {
        assert!(!text(stream).contains(TOKEN), "the bot token was printed");
    }
    out
}

fn outbox(dir: &Path, week: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("out/outbox/{week}.json"))).unwrap(),
    )
    .unwrap()
}

/// Three numbers of the digest recomputed straight from the archive.
#[test]
fn digest_numbers_match_a_hand_check_of_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &BotApi::start(vec![]));
    let out = digest(&config, "2026-W08", &[], &[]);
    succeeded(&out);
    let md = std::fs::read_to_string(dir.path().join("out/digests/2026-W08.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| vk01 | 100%"))
        .unwrap_or_else(|| panic!("{md}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // | node | answered | missed | reboots | steal | mem available | swap | disk | full in | GPU idle | GPU temp |
    let (missed, reboots, steal, mem, gpu_idle) =
        (cells[3], cells[4], cells[5], cells[6], cells[10]);

    // The hand check: vk01's captures of Feb 16 00:00 to Feb 23 00:00, São Paulo time (UTC-3).
    let archive = patrol::store::Archive::open(root().join("snapshots/demo"));
    let from = chrono::DateTime::parse_from_rfc3339("2026-02-16T03:00:00Z")
        .unwrap()
        .to_utc();
    let to = chrono::DateTime::parse_from_rfc3339("2026-02-23T02:59:59Z")
        .unwrap()
        .to_utc();
    let entries = archive.list(Some(from), Some(to), Some("vk01")).unwrap();
    let (snaps, _) = archive.load_entries(&entries);
    let steals: Vec<f64> = snaps
        .iter()
        .filter_map(|s| s.host.as_ref()?.cpu_steal_pct)
        .collect();
    let mean = steals.iter().sum::<f64>() / steals.len() as f64;
    assert_eq!(steal, format!("{}%", patrol::units::fmt_number(mean, 1)));
    let avail: Vec<f64> = snaps
        .iter()
        .filter_map(|s| s.host.as_ref()?.mem_available_bytes.map(|b| b as f64))
        .collect();
    assert_eq!(
        mem,
        patrol::units::fmt_bytes(avail.iter().sum::<f64>() / avail.len() as f64)
    );
    let mut boots = 0;
    let mut last: Option<i64> = None;
    for s in &snaps {
        let h = s.host.as_ref().unwrap();
        let boot = s.captured_at.timestamp() - h.uptime_s.unwrap() as i64;
        if last.is_some_and(|b| boot - b > 120) {
            boots += 1;
        }
        last = Some(boot);
    }
    assert_eq!(reboots, boots.to_string());
    assert_eq!(
        boots, 2,
        "vk01 rebooted on Feb 18 21:47 and Feb 22 22:50, both in W08"
    );
    // Each idle GPU reading counts for the interval its capture recorded, except the run by
    // hand 74 s after a round (Feb 18 23:31:14), which stands for no time of its own.
    let mut idle_s = 0;
    let mut previous: Option<i64> = None;
    for s in &snaps {
        let t = s.captured_at.timestamp();
        let interval = s.interval_s.expect("the demo records its interval") as i64;
        if previous.is_some_and(|p| (t - p) * 2 < interval) {
            continue;
        }
        previous = Some(t);
        let idle = s
            .gpus
            .iter()
            .flatten()
            .filter(|g| {
                matches!((g.util_pct, g.mem_used_pct), (Some(u), Some(m)) if u < 1.0 && m > 20.0)
            })
            .count() as i64;
        idle_s += idle * interval;
    }
    assert_eq!(
        gpu_idle,
        format!("{} h", patrol::units::fmt_number(idle_s as f64 / 3600.0, 1))
    );
    // Missed rounds: Feb 18 12:00 (the first capture) to Feb 23 00:00 local is 432 quarter hours;
    // captures stop from Feb 19 01:00 to Feb 22 17:15 and after Feb 23 00:00 (next week).
    assert_eq!(snaps.len(), 80, "79 rounds and one run by hand");
    assert_eq!(missed, "353 of 432");
    // The charts are written next to it and referenced.
    assert!(md.contains("![Memory of the top growers over the week](2026-W08-memory.svg)"));
    assert!(
        std::fs::read_to_string(dir.path().join("out/digests/2026-W08-memory.svg"))
            .unwrap()
            .starts_with("<svg")
    );
}

#[test]
fn a_rate_limit_then_success_delivers_one_message_and_failures_are_retried() {
    let api = BotApi::start(vec![
        Behaviour::RateLimit(1),
        Behaviour::Drop,
        Behaviour::ServerError,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let sent = outbox(dir.path(), "2026-W08")["messages"]
        .as_array()
        .unwrap()
        .len();
    let s = api.state.lock().unwrap();
    assert_eq!(s.messages.len(), sent, "each message once");
    assert_eq!(
        s.send_calls,
        sent + 3,
        "a 429, a dropped connection and a 500, then accepted"
    );
    assert!(s.tokens.iter().all(|t| t == TOKEN));
    assert!(
        s.messages[0]
            .text
            .starts_with("<b>VisionKing 03002 — week 2026-W08</b>")
    );
    assert!(
        s.messages
            .iter()
            .all(|m| m.plain.chars().count() <= 4096 && m.chat == "-100200300")
    );
}

#[test]
fn a_server_down_for_three_runs_gets_the_digest_on_the_fourth_once() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: every attempt fails to connect.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("https://{}", dead.local_addr().unwrap());
    drop(dead);
    let api = BotApi::start(vec![]);
    let config = setup(dir.path(), &api);
    write_config(dir.path(), &dead_url, Some(&api.ca_file()), "60s");
    for run in 1..=3 {
        let out = digest(&config, "2026-W08", &["--send"], &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "run {run}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("0 sent"),
            "{}",
            text(&out.stdout)
        );
    }
    write_config(dir.path(), &api.url, Some(&api.ca_file()), "60s");
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    succeeded(&out);
    let expected = outbox(dir.path(), "2026-W08")["messages"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(api.texts().len(), expected);
    // A fifth run has nothing left to send.
    let again = digest(&config, "2026-W08", &["--send"], &[]);
    assert!(again.status.success());
    assert_eq!(api.texts().len(), expected);
}

#[test]
fn a_crash_after_sending_does_not_send_twice() {
    let api = BotApi::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    // An earlier digest tells patrol where the chat's message ids stand.
    assert!(
        digest(&config, "2026-W09", &["--send"], &[])
            .status
            .success()
    );
    let before = api.texts().len();
    let crashed = digest(
        &config,
        "2026-W08",
        &["--send"],
        &[("PATROL_TEST_CRASH", "after-send")],
    );
    assert_eq!(crashed.status.code(), Some(86), "{}", text(&crashed.stderr));
    assert_eq!(api.texts().len(), before + 1, "Telegram got the message");
    assert_eq!(
        outbox(dir.path(), "2026-W08")["messages"][0]["state"],
        "sending"
    );
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    succeeded(&out);
    assert!(
        text(&out.stdout).contains("1 found already delivered"),
        "{}",
        text(&out.stdout)
    );
    let texts = api.texts();
    let w08 = texts.iter().filter(|t| t.contains("week 2026-W08")).count();
    assert_eq!(w08, 1, "the W08 digest was sent once");
    assert!(
        outbox(dir.path(), "2026-W08")["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "sent")
    );
}

#[test]
fn dry_run_prints_the_messages_and_sends_nothing() {
    let api = BotApi::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    let out = digest(&config, "2026-W08", &["--send", "--dry-run"], &[]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("--- message 1 of"), "{stdout}");
    assert!(stdout.contains("<b>Top action:</b>"));
    assert!(api.texts().is_empty());
    assert!(!dir.path().join("out/outbox").exists());
    // Only tags the Bot API accepts, and every other `<` or `&` escaped.
    let allowed = ["b", "i", "u", "s", "code", "pre", "a", "blockquote"];
    let tag = regex::Regex::new(r"<(/?)([a-zA-Z0-9-]+)[^>]*>").unwrap();
    let body: String = stdout
        .lines()
        .filter(|l| !l.starts_with("--- message"))
        .collect::<Vec<_>>()
        .join("\n");
    for c in tag.captures_iter(&body) {
        assert!(allowed.contains(&&c[2]), "tag <{}> is not allowed", &c[2]);
    }
    let stripped = tag.replace_all(&body, "");
    for (i, _) in stripped.match_indices('&') {
        let rest = &stripped[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;"]
                .iter()
                .any(|e| rest.starts_with(e)),
            "unescaped & at {}",
            &rest[..rest.len().min(20)]
        );
    }
    assert!(!stripped.contains('<') && !stripped.contains('>'));
}

/// The messages of a week's outbox, as (state, plain) pairs.
fn states(dir: &Path, week: &str) -> Vec<String> {
    outbox(dir, week)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap().to_string())
        .collect()
}

/// How many live copies of each of the week's messages the chat holds.
fn copies(api: &BotApi, dir: &Path, week: &str) -> Vec<usize> {
    let texts = api.texts();
    outbox(dir, week)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let sent = m["text"].as_str().unwrap();
            texts.iter().filter(|t| t.as_str() == sent).count()
        })
        .collect()
}

#[test]
fn an_https_bot_api_whose_certificate_is_not_trusted_is_refused_by_name() {
    let api = BotApi::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    // The same server, without its CA: the certificate must be refused, the request never sent.
    write_config(dir.path(), &api.url, None, "60s");
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}/bot<token>/sendMessage", api.url))
            && stderr.contains("certificate"),
        "{stderr}"
    );
    let s = api.state.lock().unwrap();
    assert_eq!(
        s.send_calls, 0,
        "nothing was sent past a refused certificate"
    );
    assert_eq!(s.plaintext_requests, 0, "the client spoke TLS");
    drop(s);
    assert!(
        states(dir.path(), "2026-W08")
            .iter()
            .all(|s| s == "pending")
    );
}

#[test]
fn an_answer_later_than_the_timeout_does_not_make_a_copy() {
    // Telegram stores the message and answers after 3 s; patrol gives up waiting after 1 s.
    let api = BotApi::start(vec![Behaviour::AcceptSlowly(
        std::time::Duration::from_secs(3),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    write_config(dir.path(), &api.url, Some(&api.ca_file()), "1s");
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    succeeded(&out);
    assert!(copies(&api, dir.path(), "2026-W08").iter().all(|&n| n == 1));
    assert!(
        text(&out.stdout).contains("1 found already delivered"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(api.state.lock().unwrap().edit_calls, 0);
}

#[test]
fn an_answer_lost_after_telegram_stored_the_message_does_not_make_a_copy() {
    let api = BotApi::start(vec![Behaviour::AcceptThenDrop, Behaviour::AcceptThenDrop]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    succeeded(&out);
    assert!(copies(&api, dir.path(), "2026-W08").iter().all(|&n| n == 1));
    assert!(states(dir.path(), "2026-W08").iter().all(|s| s == "sent"));
}

#[test]
fn recovery_after_a_crash_leaves_another_fleets_digest_from_the_same_bot_untouched() {
    let api = BotApi::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    assert!(
        digest(&config, "2026-W09", &["--send"], &[])
            .status
            .success()
    );
    // Another fleet's digest, sent by the same bot to the same chat, right after.
    let other = "<b>Other fleet — week 2026-W08</b>\nall quiet";
    let other_id = api.post("-100200300", other);
    let crashed = digest(
        &config,
        "2026-W08",
        &["--send"],
        &[("PATROL_TEST_CRASH", "after-send")],
    );
    assert_eq!(crashed.status.code(), Some(86), "{}", text(&crashed.stderr));
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    succeeded(&out);
    assert!(copies(&api, dir.path(), "2026-W08").iter().all(|&n| n == 1));
    let s = api.state.lock().unwrap();
    let kept = s.messages.iter().find(|m| m.id == other_id).unwrap();
    assert!(
        kept.text == other && !kept.edited && !kept.deleted,
        "the other fleet's digest was changed"
    );
    assert_eq!(s.edit_calls, 0, "recovery edits nothing");
}

#[test]
fn two_senders_at_once_deliver_each_message_once() {
    // The first message is answered slowly, so the two runs overlap.
    let api = BotApi::start(vec![Behaviour::AcceptSlowly(
        std::time::Duration::from_millis(1500),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    // The outbox is written first, so both senders see the same pending messages.
    succeeded(&digest(&config, "2026-W08", &[], &[]));
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
            // The second waits for the first's hold on the output, then finds it sent.
            .args([
                "digest", "--week", "2026-W08", "--send", "--wait", "60s", "--config",
            ])
            .arg(&config)
            .env("PATROL_TEST_BOT_TOKEN", TOKEN)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert!(copies(&api, dir.path(), "2026-W08").iter().all(|&n| n == 1));
}

#[test]
fn html_telegram_refuses_goes_as_plain_text_and_never_blocks_the_queue() {
    // W09: refused as HTML and as plain text: skipped and reported. W08, posted after it: HTML
    // refused, then accepted as plain text.
    let api = BotApi::start(vec![
        Behaviour::RefuseEntities,
        Behaviour::RefuseEntities,
        Behaviour::RefuseEntities,
        Behaviour::Accept,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    let out = digest(&config, "2026-W09", &["--send"], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("refused, skipped"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        states(dir.path(), "2026-W09")
            .iter()
            .all(|s| s == "refused")
    );
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    succeeded(&out);
    assert!(states(dir.path(), "2026-W08").iter().all(|s| s == "sent"));
    assert_eq!(outbox(dir.path(), "2026-W08")["messages"][0]["plain"], true);
    let texts = api.texts();
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].starts_with("VisionKing 03002 — week 2026-W08") && !texts[0].contains("<b>"),
        "{}",
        texts[0]
    );
}

#[test]
fn a_chat_that_cannot_be_read_is_said_when_an_unanswered_send_may_have_a_copy() {
    let api = BotApi::start(vec![Behaviour::AcceptThenDrop]);
    api.state.lock().unwrap().protected = true;
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("may repeat an earlier copy") && stderr.contains("can't be forwarded"),
        "{stderr}"
    );
    assert!(states(dir.path(), "2026-W08").iter().all(|s| s == "sent"));
}

#[test]
fn a_hostile_refusal_neither_prints_the_token_nor_reaches_the_terminal_raw() {
    let api = BotApi::start(vec![Behaviour::HostileRefusal]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &api);
    // `digest` fails the test if the token appears in stdout or stderr.
    let out = digest(&config, "2026-W08", &["--send"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad token <token>"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    let outbox = std::fs::read_to_string(dir.path().join("out/outbox/2026-W08.json")).unwrap();
    assert!(!outbox.contains(TOKEN));
}

#[test]
fn a_week_beyond_the_calendar_is_a_usage_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for week in ["262143-W01", "0-W01", "2026-W60"] {
        let out = crate::support::patrol(
            &[
                "digest",
                "--archive",
                root().join("snapshots/demo").to_str().unwrap(),
                "--week",
                week,
                "--out",
                dir.path().to_str().unwrap(),
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{week}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("is not an ISO week"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// A week captured every 10 minutes with patrol down for six hours on Wednesday: the snapshots
/// record the 10-minute interval, and the digest counts the 36 rounds the gap cost and gives GPU
/// idle hours at 10 minutes a capture, with numbers that add up.
#[test]
fn a_ten_minute_week_with_a_gap_counts_its_missed_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("gap.toml");
    std::fs::write(
        &scenario,
        r#"[scenario]
fleet = "Gap Test"
timezone = "UTC"
start = "2026-03-02T00:00:00Z"
end = "2026-03-08T23:50:00Z"
interval = "10m"
gaps = [{ from = "2026-03-04T06:00:00Z", to = "2026-03-04T12:00:00Z" }]

[[node]]
name = "gpu1"
[[node.container]]
name = "inference"
image = "inference"
mem = "2GB"
[[node.gpu]]
name = "NVIDIA RTX A5000"
util_pct = 0
mem_used_pct = 60
temp_c = 40
"#,
    )
    .unwrap();
    let archive = dir.path().join("archive");
    let out = dir.path().join("out");
    let run = |args: &[&str]| crate::support::patrol(args, dir.path());
    succeeded(&run(&[
        "simulate",
        scenario.to_str().unwrap(),
        "--out",
        archive.to_str().unwrap(),
    ]));
    let snap = patrol::store::read_snapshot_file(
        &archive.join("gpu1/2026-03-02/20260302T000000Z.json.zst"),
    )
    .unwrap();
    assert_eq!(
        snap.interval_s,
        Some(600),
        "the snapshot records its interval"
    );
    succeeded(&run(&[
        "digest",
        "--archive",
        archive.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--week",
        "2026-W10",
    ]));
    let md = std::fs::read_to_string(out.join("digests/2026-W10.md")).unwrap();
    // 7 days of 144 rounds; the gap 06:00-12:00 holds 36 of them.
    assert!(
        md.contains(
            "patrol ran 972 of 1008 capture rounds (96.4%; 36 missed) at 10 min (the interval the captures recorded)."
        ),
        "digests/2026-W10.md: the fleet's rounds"
    );
    let row = md
        .lines()
        .find(|l| l.starts_with("| gpu1 | 100% (972/972) |"))
        .expect("digests/2026-W10.md has a row for gpu1");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[3], "36 of 1008", "missed rounds of gpu1");
    // Idle all week: 972 captures of 10 minutes each.
    assert_eq!(cells[10], "162 h", "GPU idle hours of gpu1");
}

/// A config whose daemon makes the digest at `schedule` (UTC), over a simulated archive of the
/// last two weeks; returns the config's path.
fn daemon_fleet(dir: &Path, schedule: &str) -> PathBuf {
    let now = chrono::Utc::now();
    let scenario = dir.join("fleet.scenario.toml");
    std::fs::write(
        &scenario,
        format!(
            "[scenario]\nfleet = \"Catch Up\"\ntimezone = \"UTC\"\nstart = \"{}\"\nend = \"{}\"\ninterval = \"1h\"\n\n[[node]]\nname = \"here\"\n[[node.gpu]]\nname = \"g\"\nutil_pct = 5\nmem_used_pct = 10\ntemp_c = 40\n",
            (now - chrono::Duration::days(15)).format("%Y-%m-%dT%H:00:00Z"),
            (now - chrono::Duration::hours(2)).format("%Y-%m-%dT%H:00:00Z"),
        ),
    )
    .unwrap();
    let archive = dir.join("archive");
    succeeded(&crate::support::patrol(
        &[
            "simulate",
            scenario.to_str().unwrap(),
            "--out",
            archive.to_str().unwrap(),
        ],
        dir,
    ));
    let config = dir.join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Catch Up\"\ntimezone = \"UTC\"\narchive = \"{}\"\noutput = \"{}\"\n[daemon]\ninterval = \"1h\"\ndigest = \"{schedule}\"\n[[node]]\nname = \"here\"\n[node.host]\n",
            archive.display(),
            dir.join("out").display()
        ),
    )
    .unwrap();
    config
}

/// Starts the daemon, lets it make its first tick (the capture is archived), stops it with
/// SIGTERM and returns its stderr.
fn daemon_one_tick(config: &Path) -> String {
    let dir = config.parent().unwrap();
    let captures = || {
        crate::support::files_under(&dir.join("archive/here"))
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
            .count()
    };
    let before = captures();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(["daemon", "--config", config.to_str().unwrap()])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while captures() == before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "daemon: {err}");
    assert_eq!(captures(), before + 1, "the daemon's tick was archived");
    err
}

/// A daemon (re)started a few minutes after the digest's time makes that digest when its record
/// says the last one made is older, and not again when the record says it was made; the very
/// first start (no record) makes none and records the schedule's most recent time.
#[test]
fn a_daemon_restarted_after_the_digest_time_makes_the_missed_digest_once() {
    use chrono::Datelike;
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    let due = now - chrono::Duration::minutes(3);
    let config = daemon_fleet(
        dir.path(),
        &format!("{} {} * * *", due.format("%-M"), due.format("%-H")),
    );
    let due = due.format("%Y-%m-%dT%H:%M:00+00:00").to_string();
    let iso = (now - chrono::Duration::days(7)).iso_week();
    let digest = dir
        .path()
        .join(format!("out/digests/{}-W{:02}.md", iso.year(), iso.week()));
    let record = dir.path().join("out/.state/digest.json");
    let recorded = || -> String {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
        v["occurrence"].as_str().unwrap().to_string()
    };

    // The last digest made is yesterday's: today's, 3 minutes ago, was missed.
    std::fs::create_dir_all(record.parent().unwrap()).unwrap();
    let yesterday = (chrono::DateTime::parse_from_rfc3339(&due).unwrap()
        - chrono::Duration::days(1))
    .to_rfc3339();
    std::fs::write(&record, format!("{{\"occurrence\": \"{yesterday}\"}}")).unwrap();
    let err = daemon_one_tick(&config);
    assert!(digest.exists(), "the missed digest was made: {err}");
    assert!(
        err.contains("missed while the daemon was not running"),
        "{err}"
    );
    assert_eq!(recorded(), due, "{}", record.display());

    // Restarted again: the record says it was made.
    std::fs::remove_file(&digest).unwrap();
    daemon_one_tick(&config);
    assert!(!digest.exists(), "the digest was made twice");

    // The first start ever: no record, no digest; the record starts at the schedule's last time.
    std::fs::remove_file(&record).unwrap();
    daemon_one_tick(&config);
    assert!(!digest.exists(), "a first start made a stale digest");
    assert_eq!(recorded(), due, "{}", record.display());
}

/// `patrol digest` holds the output like `run` and `report`: with another holder it says who and
/// exits 2 without writing, and with --wait it waits for it.
#[test]
fn a_digest_waits_for_the_report_writing_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let lock = patrol::fsutil::RunLock::acquire(
        &out.join(".state/run.lock"),
        std::time::Duration::ZERO,
        &[],
    )
    .unwrap();
    let archive = root().join("snapshots/demo");
    let args = [
        "digest",
        "--archive",
        archive.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--week",
        "2026-W08",
    ];
    let refused = crate::support::patrol(&args, dir.path());
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("another patrol is running"),
        "{}",
        text(&refused.stderr)
    );
    assert!(
        !out.join("digests").exists(),
        "written while the output was held"
    );
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(800));
        drop(lock);
    });
    let waited = crate::support::patrol(&[&args[..], &["--wait", "30s"]].concat(), dir.path());
    release.join().unwrap();
    succeeded(&waited);
    assert!(out.join("digests/2026-W08.md").exists());
}

/// Issue 19: in weeks of lost inspection data, a node gone dark and leaks of GB an hour, the
/// top action was "vk03 endpoint pgadmin is down". It is now ranked by importance, and says why.
#[test]
fn the_top_action_is_the_weeks_costliest_problem_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &BotApi::start(vec![]));
    for week in ["2026-W08", "2026-W09"] {
        let out = digest(&config, week, &["--dry-run"], &[]);
        succeeded(&out);
        let printed = text(&out.stdout);
        let action = printed
            .lines()
            .find(|l| l.starts_with("<b>Top action:</b>"))
            .unwrap_or_else(|| panic!("{printed}"));
        assert!(!action.contains("pgadmin"), "{week}: {action}");
        assert!(
            action.contains("every result of this line is lost"),
            "{week}: the 100 % loss of inspection data comes first: {action}"
        );
        assert!(
            printed.contains(
                "<i>Why first: importance 15 = warning (3) × work or data being lost (5); open "
            ),
            "{week}: {printed}"
        );
        let md =
            std::fs::read_to_string(dir.path().join(format!("out/digests/{week}.md"))).unwrap();
        assert!(md.contains("*Why first:* importance "), "{md}");
    }
}

/// Issue 19: on a phone, one short line per node with ✅/⚠️/❌ before the details; how much of
/// the week patrol saw; and a node that answered but ran nothing is not up, nor scored without
/// a reason.
#[test]
fn the_message_reads_on_a_phone_and_a_node_running_nothing_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &BotApi::start(vec![]));
    let out = digest(&config, "2026-W09", &["--dry-run"], &[]);
    succeeded(&out);
    let printed = text(&out.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    let title = lines
        .iter()
        .position(|l| l.starts_with("<b>VisionKing 03002 — week 2026-W09</b>"))
        .unwrap();
    assert!(
        lines[title + 1].starts_with("patrol saw 25 of 672 capture rounds (3.7%)"),
        "how much of the week patrol saw comes right after the title: {printed}"
    );
    let nodes = lines.iter().position(|l| *l == "<b>Nodes</b>").unwrap();
    let status: Vec<&str> = lines[nodes + 1..nodes + 4].to_vec();
    for l in &status {
        let visible = l
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        assert!(
            visible.chars().count() <= 40,
            "a node's line fits a phone: {visible:?}"
        );
        assert!(["✅", "⚠️", "❌"].iter().any(|m| l.starts_with(m)), "{l}");
    }
    // vk02 ran nothing all week; vk03 scores 100 but two warnings are open about it.
    assert_eq!(
        status[1], "❌ vk02 no score · down since Mon 00:00",
        "{printed}"
    );
    assert_eq!(status[2], "⚠️ vk03 100/100 · 2 warnings open", "{printed}");
    // The details come after the findings, and say why vk02 has no score.
    let details = lines.iter().position(|l| *l == "<b>Details</b>").unwrap();
    assert!(details > nodes);
    assert!(
        printed.contains("vk02: -/100 — could not check: ")
            && printed.contains("vk02: up 0% (0/25; 25 answered with no container running)"),
        "{printed}"
    );
    let md = std::fs::read_to_string(dir.path().join("out/digests/2026-W09.md")).unwrap();
    assert!(
        md.contains("| ❌ | vk02 | down since Mon 00:00 | - |"),
        "{md}"
    );
    // The score card dimension by dimension; "could not check" is no zero, and a node without
    // a card shows none.
    for row in [
        "| node | CPU efficiency (20) | Memory pressure (20) | Disk health (15) | Service health (20) | Maintenance hygiene (15) | LLM readiness (10) |",
        "| vk01 | 20/20 (steal 0.1%) | 20/20 (51.9GB available) | 0/15 (83.4% used) | 20/20 (0 unhealthy) | could not check (no cleanup job `*cleanup*` on the node) |",
        "| vk02 | - | - | - | - | - | - |",
    ] {
        assert!(md.contains(row), "{row}: {md}");
    }
    assert!(
        md.contains("| vk02 | 0% (0/25; 25 answered with no container running) |"),
        "{md}"
    );
}

/// Issue 19: a line for containers in trouble, with how long, checked against the archive.
#[test]
fn containers_in_trouble_say_how_long_as_the_archive_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &BotApi::start(vec![]));
    let out = digest(&config, "2026-W08", &["--dry-run"], &[]);
    succeeded(&out);
    let printed = text(&out.stdout);
    // The hand check: vk01's W08 captures (São Paulo time) with intel-gpu-exporter restarting,
    // each standing for the 15 minutes the captures recorded.
    let archive = patrol::store::Archive::open(root().join("snapshots/demo"));
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc();
    let entries = archive
        .list(
            Some(at("2026-02-16T03:00:00Z")),
            Some(at("2026-02-23T02:59:59Z")),
            Some("vk01"),
        )
        .unwrap();
    let (snaps, _) = archive.load_entries(&entries);
    let restarting = snaps
        .iter()
        .filter(|s| {
            s.containers.iter().flatten().any(|c| {
                c.name == "intel-gpu-exporter"
                    && c.state == patrol::model::ContainerState::Restarting
            })
        })
        .count();
    assert!(restarting > 0);
    let want = format!(
        "vk01 <code>intel-gpu-exporter</code> restarting ~{}",
        patrol::units::fmt_duration(restarting as f64 * 900.0)
    );
    let lines: Vec<&str> = printed.lines().collect();
    let header = lines
        .iter()
        .position(|l| *l == "<b>Containers in trouble</b>")
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(
        lines[header + 1..].iter().any(|l| l.starts_with(&want)),
        "{want}: {printed}"
    );
}

/// Issue 19: the digest's counts are what the week's report sections said: new and resolved
/// added up over the sections of the week, still open as the week's last section left it.
#[test]
fn the_weeks_counts_are_what_its_sections_said() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &BotApi::start(vec![]));
    let report = crate::support::rolling_report(&dir.path().join("out"));
    for (week, days) in [
        ("2026-W08", "2026-02-16".."2026-02-23"),
        ("2026-W09", "2026-02-23".."2026-03-02"),
    ] {
        let (mut new, mut resolved) = (0usize, 0usize);
        let mut still: Option<String> = None;
        for section in report.split("\n## ").skip(1) {
            let date = &section[..10];
            if !days.contains(&date) {
                continue;
            }
            let items = section
                .lines()
                .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(". **["))
                .count();
            // The counts line: "New 1, escalated 1, resolved 2." (absent when the section
            // holds new findings only).
            let counts = section.lines().rev().find(|l| !l.is_empty()).filter(|l| {
                l.ends_with('.')
                    && [
                        "New ",
                        "Escalated ",
                        "Changed ",
                        "Repeated ",
                        "Resolved ",
                        "Acknowledged ",
                    ]
                    .iter()
                    .any(|p| l.starts_with(p))
            });
            let number = |what: &str| -> usize {
                counts
                    .and_then(|c| {
                        c.trim_end_matches('.').split(", ").find_map(|part| {
                            part.to_lowercase().strip_prefix(what)?.trim().parse().ok()
                        })
                    })
                    .unwrap_or(0)
            };
            new += if counts.is_some() {
                number("new ")
            } else {
                items
            };
            resolved += number("resolved ");
            if let Some(line) = section.lines().find(|l| l.contains(" still open: ")) {
                still = Some(line.split(" — ").next().unwrap().to_string());
            }
        }
        let out = digest(&config, week, &["--dry-run"], &[]);
        succeeded(&out);
        let printed = text(&out.stdout);
        let line = printed
            .lines()
            .find(|l| l.starts_with("<b>Findings</b>"))
            .unwrap();
        let total = |part: &str| -> usize {
            part.split(", ")
                .filter_map(|p| p.split(' ').next()?.parse::<usize>().ok())
                .sum()
        };
        let said = |what: &str| -> &str {
            line.split(&format!("{what} "))
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
        };
        assert_eq!(total(said("opened")), new, "{week}: {line}");
        assert_eq!(total(said("resolved")), resolved, "{week}: {line}");
        // "37 still open: 13 WARNING, 11 INFO, 13 SUGGESTION" against "still open 13 warning, …".
        let still = still.unwrap();
        let (n, by_severity) = still.split_once(" still open: ").unwrap();
        assert_eq!(
            by_severity.to_lowercase(),
            said("still open"),
            "{week}: {line}"
        );
        assert_eq!(total(said("still open")), n.parse::<usize>().unwrap());
    }
}

/// Issue 19, the rest of the demo's faults: W08's values are W08's, its growers hold the leaks
/// the Feb 22 reboot reset, W09's hold no sawtooth, a dead node's row shows no healthy-looking
/// "not filling", and the charts break at the capture gap and give small series their own.
#[test]
fn the_demo_weeks_values_growers_and_charts_are_the_weeks_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &BotApi::start(vec![]));
    for week in ["2026-W08", "2026-W09"] {
        succeeded(&digest(&config, week, &[], &[]));
    }
    let md = |week: &str| {
        std::fs::read_to_string(dir.path().join(format!("out/digests/{week}.md"))).unwrap()
    };
    let (w08, w09) = (md("2026-W08"), md("2026-W09"));
    assert!(!w08.contains("11.5GB"), "a W09 value in W08: {w08}");
    let growers = |text: &str| -> Vec<String> {
        text.split("## Top memory growers")
            .nth(1)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .map(str::to_string)
            .collect()
    };
    let g08 = growers(&w08);
    for leak in ["vk01 `is-sis-surface`", "vk01 `visionking-inference`"] {
        assert!(
            g08.iter()
                .any(|l| l.contains(leak) && l.contains("across 1 reset")),
            "{leak} leaked before the reboot reset it: {g08:?}"
        );
    }
    let g09 = growers(&w09);
    assert!(
        !g09.iter().any(|l| l.contains("vk01 `prometheus`")),
        "vk01's Prometheus cycles back to its level: {g09:?}"
    );
    let vk02 = w09.lines().find(|l| l.starts_with("| vk02 | 0% ")).unwrap();
    assert!(!vk02.contains("not filling"), "{vk02}");
    let svg = |name: &str| {
        std::fs::read_to_string(dir.path().join(format!("out/digests/{name}"))).unwrap()
    };
    let memory = svg("2026-W08-memory.svg");
    let labels = memory.matches("<title>").count();
    assert!(
        memory.matches("<polyline").count() > labels,
        "a line across the 3.7-day gap: {memory}"
    );
    assert!(
        w08.contains("(2026-W08-memory-2.svg)"),
        "the small growers get their own chart"
    );
    // vk01's reboots of Feb 18 and Feb 22 reset its growers: the chart says where.
    assert_eq!(memory.matches(">reboot vk01</text>").count(), 2, "{memory}");
}
