//! A report is written once, whatever happens: two writers at once, clocks falling back, two
//! runs in one minute, hostile fleet text, an analysis killed half-way, temp files a kill left.

use std::path::{Path, PathBuf};
use std::process::Output;

use proptest::prelude::*;

use crate::support::{files_under, patrol, root, succeeded, text};

fn patrol_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patrol"));
    cmd.args(args).current_dir(cwd).env_remove("PATROL_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Copies the demo archive's metadata and the captures before `until` (a `YYYYMMDDTHHMM` UTC
/// prefix of the file names) into `dest`.
pub fn copy_demo(dest: &Path, from: &str, until: &str) {
    let demo = root().join("snapshots/demo");
    std::fs::create_dir_all(dest).unwrap();
    std::fs::copy(demo.join("fleet.toml"), dest.join("fleet.toml")).unwrap();
    for file in files_under(&demo) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json.zst") || name.as_str() < from || name.as_str() >= until {
            continue;
        }
        let rel = file.strip_prefix(&demo).unwrap();
        let target = dest.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// Holds `<dir>/.state/run.lock` as another patrol would, until the returned file is dropped.
pub fn hold_lock(dir: &Path) -> std::fs::File {
    std::fs::create_dir_all(dir.join(".state")).unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".state/run.lock"))
        .unwrap();
    file.try_lock().unwrap();
    file
}

/// `patrol report` and `patrol demo` hold the fleet as `patrol run` does: while another holds
/// it they say who and exit 2 (writing nothing), or wait with `--wait`.
#[test]
fn report_and_demo_take_the_fleet_lock_run_takes() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    copy_demo(&archive, "20260218T", "20260218T1600");
    let out = dir.path().join("out");
    let report = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        patrol(&args, &root())
    };
    let held = hold_lock(&out);
    let second = report(&[]);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second.stderr));
    let err = text(&second.stderr);
    assert!(err.contains("another patrol is running") && err.contains("run.lock"));
    assert!(!out.join("improvements.md").exists(), "nothing written");
    let demo_out = dir.path().join("demo");
    let demo_held = hold_lock(&demo_out);
    let demo = patrol(
        &[
            "demo",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            demo_out.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(demo.status.code(), Some(2), "{}", text(&demo.stderr));
    drop(demo_held);
    // The holder finishes a second later; a report told to wait then runs.
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(1));
        drop(held);
    });
    succeeded(&report(&["--wait", "30s"]));
    release.join().unwrap();
    let written = crate::support::rolling_report(&out);
    assert_eq!(written.matches("\n## ").count(), 1);

    // With a config, the report holds the lock `patrol run` of that config holds (beside its
    // directory archive), so a report and a run never interleave.
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"VisionKing 03002\"\ntimezone = \"America/Sao_Paulo\"\narchive = {:?}\noutput = {:?}\n[[node]]\nname = \"vk01\"\n[node.host]\n",
            archive.to_str().unwrap(),
            dir.path().join("out2").to_str().unwrap()
        ),
    )
    .unwrap();
    let run_held = hold_lock(&archive);
    let by_config = patrol(&["report", "--config", config.to_str().unwrap()], &root());
    assert_eq!(
        by_config.status.code(),
        Some(2),
        "{}",
        text(&by_config.stderr)
    );
    drop(run_held);
    succeeded(&patrol(
        &["report", "--config", config.to_str().unwrap()],
        &root(),
    ));
}

/// A replay across the night clocks fall back in Berlin (2025-10-26, 03:00 CEST → 02:00 CET),
/// a capture every 10 minutes plus a second one 30 s after 02:30 CET: every capture has a
/// finding, and every capture gets its own section, heading and dated file; none overwritten.
#[test]
fn a_replay_across_the_fall_back_hour_keeps_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let times = fall_back_captures();
    // Memory rises by 100MB just before every capture: one jump, one section, per capture.
    let steps: Vec<String> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "{{ at = \"{}\", set = \"{}MB\" }}",
                (*t - chrono::Duration::seconds(5)).format("%Y-%m-%dT%H:%M:%SZ"),
                1000 + 100 * (i + 1)
            )
        })
        .collect();
    let scenario = format!(
        r#"[scenario]
fleet = "dst"
timezone = "Europe/Berlin"
start = "2025-10-25T23:00:00Z"
end = "2025-10-26T02:50:00Z"
interval = "10m"
extra_captures = ["2025-10-26T01:30:30Z"]

[[node]]
name = "n1"
[node.host]
mem_total = "16GB"
mem_available = "8GB"
[[node.container]]
name = "app"
image = "app"
mem_limit = "8GB"
restart_policy = "always"
mem = {{ start = "1000MB", steps = [{steps}] }}
"#,
        steps = steps.join(", ")
    );
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"[[rule]]
id = "step"
kind = "delta-between-snapshots"
severity = "info"
description = "Every rise (a rise every capture is the series' usual step: noise_k = 0 reports it anyway)."
select = { entity = "container:*", metric = "mem_usage_bytes" }
params = { min_abs = "40MB", min_rel_pct = 1, direction = "rise", max_gap = "1h", noise_k = 0 }
title = "{{ node }} {{ subject }} rose {{ before }} → {{ after }}"
recommendation = "None."
"#,
    )
    .unwrap();
    let archive = simulate(dir.path(), "dst.toml", &scenario);
    let out = dir.path().join("out");
    succeeded(&patrol(
        &[
            "demo",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
        ],
        &root(),
    ));
    let report = crate::support::rolling_report(&out);
    let headings: Vec<&str> = report.lines().filter(|l| l.starts_with("## ")).collect();
    // The first capture has nothing to compare with: every later one is a section.
    assert_eq!(headings.len(), times.len() - 1, "{headings:#?}");
    let unique: std::collections::BTreeSet<&&str> = headings.iter().collect();
    assert_eq!(
        unique.len(),
        headings.len(),
        "headings repeat: {headings:#?}"
    );
    for (h, t) in headings.iter().zip(&times[1..]) {
        let local = t.with_timezone(&chrono_tz::Europe::Berlin);
        let clock = local.format("%Y-%m-%d %H:%M").to_string();
        let offset = local.format("(UTC%:z)").to_string();
        assert!(
            h.contains(&clock) && h.contains(&offset),
            "{h} is not the section of {t} ({clock} {offset})"
        );
    }
    assert!(report.contains("## 2025-10-26 02:30 (UTC+02:00)"));
    assert!(report.contains("## 2025-10-26 02:30 (UTC+01:00)"));
    assert!(report.contains("## 2025-10-26 02:30:30 (UTC+01:00)"));
    // No offset fixed at the report's creation in the header.
    assert!(!report.lines().take(4).any(|l| l.contains("UTC+")));
    assert_each_section_has_its_dated_file(&out, &headings);
}

/// 23:00Z (01:00 CEST) to 02:50Z (03:50 CET) every 10 minutes, and the extra capture at
/// 01:30:30Z (02:30:30 CET), in order.
fn fall_back_captures() -> Vec<chrono::DateTime<chrono::Utc>> {
    let mut times: Vec<chrono::DateTime<chrono::Utc>> = (0..24)
        .map(|i| {
            chrono::DateTime::parse_from_rfc3339("2025-10-25T23:00:00Z")
                .unwrap()
                .to_utc()
                + chrono::Duration::minutes(10 * i)
        })
        .collect();
    let extra = chrono::DateTime::parse_from_rfc3339("2025-10-26T01:30:30Z")
        .unwrap()
        .to_utc();
    times.push(extra);
    times.sort();
    times
}

/// Writes `scenario` as `name` in `dir` and simulates it into `dir/archive`.
fn simulate(dir: &Path, name: &str, scenario: &str) -> PathBuf {
    let scenario_path = dir.join(name);
    std::fs::write(&scenario_path, scenario).unwrap();
    let archive = dir.join("archive");
    succeeded(&patrol(
        &[
            "simulate",
            scenario_path.to_str().unwrap(),
            "--out",
            archive.to_str().unwrap(),
        ],
        &root(),
    ));
    archive
}

/// Every section of the rolling report has a dated file of its own, holding it alone, named by
/// its local time and offset (`_2` for a second one in the same minute).
fn assert_each_section_has_its_dated_file(out: &Path, headings: &[&str]) {
    let dated = files_under(&out.join("reports"));
    assert_eq!(dated.len(), headings.len(), "a dated file per section");
    let mut from_files: Vec<String> = Vec::new();
    for f in &dated {
        let body = std::fs::read_to_string(f).unwrap();
        let hs: Vec<&str> = body.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(hs.len(), 1, "{}", f.display());
        from_files.push(hs[0].to_string());
    }
    from_files.sort();
    let mut expected: Vec<String> = headings.iter().map(|h| h.to_string()).collect();
    expected.sort();
    assert_eq!(from_files, expected, "each section's own dated file");
    let names: Vec<String> = dated
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert!(names.contains(&"2025-10-26_0230+0200.md".to_string()));
    assert!(names.contains(&"2025-10-26_0230+0100.md".to_string()));
    assert!(names.contains(&"2025-10-26_0230+0100_2.md".to_string()));
}

/// Fleet text carrying a `\r## ` heading, ANSI colours, an OSC title and an OSC 8 hyperlink (in
/// a container name and a log line) is shown inert: the report has exactly the headings and
/// items patrol wrote, and no ESC, BEL or bare CR reaches a file or a terminal.
#[test]
fn hostile_fleet_text_forges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let evil = r"x\r## [WARNING] forged\r1. **[WARNING] fake** \u001b[31mred\u001b[0m \u001b]0;title\u0007 \u001b]8;;http://evil.example\u001b\\link\u001b]8;;\u001b\\";
    let scenario = format!(
        r#"[scenario]
fleet = "hostile"
timezone = "UTC"
start = "2026-03-02T00:00:00Z"
end = "2026-03-02T02:00:00Z"
interval = "15m"

[[node]]
name = "n1"
[node.host]
mem_total = "16GB"
mem_available = "8GB"
[[node.container]]
name = "{evil}"
image = "app"
restart_policy = "always"
mem = {{ start = "100MB", steps = [{{ at = "2026-03-02T01:00:00Z", set = "900MB" }}] }}
until = "2026-03-02T01:40:00Z"
log = [{{ message = "OOM killed worker {evil}", level = "ERROR", every = "1m" }}]
"#
    );
    let scenario_path = dir.path().join("hostile.toml");
    let archive = simulate(dir.path(), "hostile.toml", &scenario);
    let out = dir.path().join("out");
    let demo = patrol(
        &[
            "demo",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &root(),
    );
    let mut stdout = succeeded(&demo);
    let report = crate::support::rolling_report(&out);
    assert!(
        report.contains("forged") && report.contains("31mred"),
        "the hostile text is reported (shown, not obeyed)"
    );
    let written_headings = assert_only_what_patrol_wrote_is_structure(&report);
    let dated = files_under(&out.join("reports"));
    assert_eq!(dated.len(), written_headings);

    stdout.push_str(&terminal_views(dir.path(), &archive));
    for (what, bytes) in std::iter::once(("stdout and stderr".to_string(), stdout.into_bytes()))
        .chain(
            files_under(dir.path())
                .into_iter()
                .filter(|p| !p.starts_with(&archive) && p != &scenario_path)
                .filter(|p| !p.to_string_lossy().ends_with(".json"))
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap())),
        )
    {
        assert!(
            !bytes.iter().any(|b| matches!(b, 0x1b | 0x07)),
            "{what}: ESC or BEL"
        );
        let bare_cr = bytes.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
            || bytes.last() == Some(&b'\r');
        assert!(!bare_cr, "{what}: a bare CR");
    }
}

/// The headings and items a markdown reader sees are exactly the ones patrol wrote, one per
/// line (and the title): nothing in the fleet's text became structure. Returns how many
/// section headings there are.
fn assert_only_what_patrol_wrote_is_structure(report: &str) -> usize {
    let lines: Vec<&str> = report.split('\n').collect();
    let written_headings = lines.iter().filter(|l| l.starts_with("## ")).count();
    let item = regex::Regex::new(r"^(\d+\. |- )").unwrap();
    let written_items = lines.iter().filter(|l| item.is_match(l)).count();
    let (mut headings, mut items) = (0, 0);
    for e in pulldown_cmark::Parser::new(report) {
        match e {
            pulldown_cmark::Event::Start(pulldown_cmark::Tag::Heading { .. }) => headings += 1,
            pulldown_cmark::Event::Start(pulldown_cmark::Tag::Item) => items += 1,
            _ => {}
        }
    }
    assert_eq!(
        headings,
        written_headings + 1,
        "the title and the sections only"
    );
    assert_eq!(items, written_items, "the findings patrol wrote only");
    assert!(written_items >= 3, "{written_items} findings");
    written_headings
}

/// What a person reads on a terminal about the hostile container: history, backtest, compare,
/// show, their stdout and stderr together.
fn terminal_views(dir: &Path, archive: &Path) -> String {
    let mut shown_all = String::new();
    let container = "container:x\r## [WARNING] forged\r1. **[WARNING] fake** \u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7} \u{1b}]8;;http://evil.example\u{1b}\\link\u{1b}]8;;\u{1b}\\";
    let a = archive.to_str().unwrap();
    for args in [
        vec![
            "history",
            "n1",
            container,
            "mem_usage_bytes",
            "--archive",
            a,
        ],
        vec!["backtest", "container-memory-jump", "--archive", a],
        vec![
            "compare",
            "n1@2026-03-02 00:30",
            "n1@2026-03-02 01:45",
            "--archive",
            a,
        ],
        vec!["show", "n1@2026-03-02 00:30", "--archive", a],
    ] {
        let mut args = args.clone();
        let history_out = dir.join("terminal");
        if args[0] != "show" && args[0] != "backtest" {
            args.extend(["--out", history_out.to_str().unwrap()]);
        }
        let o = patrol(&args, dir);
        let shown = succeeded(&o);
        assert!(shown.len() > 20, "{}: {shown}", args[0]);
        shown_all.push_str(&shown);
        shown_all.push_str(&text(&o.stderr));
    }
    shown_all
}

/// A run killed in the middle of its analysis (before the ledger is saved) left its capture
/// unanalysed; so does a capture no run analysed at all. The next analysis takes every capture
/// since the last one, in order: single-capture events (vk01's GPU temperature dropping at
/// 00:00, `cadvisor` dropping at 00:30 on Feb 19) each reach their own section, and the report
/// is the one a run per capture would have written.
#[test]
fn a_killed_analysis_resumes_without_losing_a_captures_events() {
    let dir = tempfile::tempdir().unwrap();
    let report = |archive: &Path, out: &Path, at: Option<&str>, env: &[(&str, &str)]| {
        let mut args = vec![
            "report",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        patrol_env(&args, &root(), env)
    };
    // The reference: one analysis per capture round, 23:45 to 00:45.
    let full = dir.path().join("full");
    copy_demo(&full, "20260218T", "20260219T0400");
    let clean = dir.path().join("clean");
    for at in ["2026-02-18 23:50", "00:05", "00:20", "00:35", "00:50"] {
        let at = if at.len() == 5 {
            format!("2026-02-19 {at}")
        } else {
            at.to_string()
        };
        succeeded(&report(&full, &clean, Some(&at), &[]));
    }
    let expected = crate::support::rolling_report(&clean);

    let archive = dir.path().join("archive");
    let out = dir.path().join("out");
    // Up to 23:45 local (02:45Z), analysed.
    copy_demo(&archive, "20260218T", "20260219T0255");
    succeeded(&report(&archive, &out, None, &[]));
    // 00:00 and 00:15 arrive before anything analyses them.
    copy_demo(&archive, "20260219T0255", "20260219T0325");
    succeeded(&report(&archive, &out, None, &[]));
    // 00:30 arrives; its analysis is killed before the ledger is saved.
    copy_demo(&archive, "20260219T0325", "20260219T0340");
    let killed = report(
        &archive,
        &out,
        None,
        &[("PATROL_TEST_CRASH", "before-ledger")],
    );
    assert_eq!(killed.status.code(), Some(86), "{}", text(&killed.stderr));
    // 00:45 arrives.
    copy_demo(&archive, "20260219T0340", "20260219T0400");
    succeeded(&report(&archive, &out, None, &[]));
    let got = crate::support::rolling_report(&out);
    for (event, at) in [
        (
            "vk01 GPU 0 temperature dropped 24°C → 18°C",
            "2026-02-19 00:00",
        ),
        (
            "vk01 `cadvisor` memory dropped 195.4MB → 168.7MB",
            "2026-02-19 00:30",
        ),
        (
            "vk03 `prometheus` memory jumped 242MB → 283MB",
            "2026-02-19 00:45",
        ),
    ] {
        let sections: Vec<&str> = got.split("\n## ").filter(|s| s.contains(event)).collect();
        assert_eq!(sections.len(), 1, "{event}: once");
        assert!(sections[0].starts_with(at), "{event}: in the {at} section");
    }
    assert!(
        got == expected,
        "the report differs from one analysis per capture"
    );
    assert_eq!(
        files_under(&out.join("reports")).len(),
        files_under(&clean.join("reports")).len()
    );
    // Analysing again finds nothing new.
    let again = succeeded(&report(&archive, &out, None, &[]));
    assert!(again.contains("nothing new"), "{again}");
}

/// Temp files of patrol's own naming that a `kill -9` left (older than the command) are removed
/// by the next command that holds the fleet; other files, and fresh ones, are not touched.
#[test]
fn temp_files_a_kill_left_are_removed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    copy_demo(&archive, "20260218T", "20260218T1600");
    let out = dir.path().join("out");
    let stale: Vec<PathBuf> = vec![
        out.join(".patrol-Ab12Cd.tmp"),
        out.join("reports/.patrol-Zz99Yy.tmp"),
        out.join(".state/.patrol-Qq11Ww.tmp"),
    ];
    let foreign = out.join("notes.tmp");
    for p in stale.iter().chain([&foreign]) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "half a file").unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    succeeded(&patrol(
        &[
            "report",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &root(),
    ));
    for p in &stale {
        assert!(!p.exists(), "{} left", p.display());
    }
    assert!(
        foreign.exists(),
        "a file not of patrol's naming is not touched"
    );
}

/// Under cron stderr is a file: no colour codes, and each log line starts with its time.
#[test]
fn logs_under_cron_have_times_and_no_colours() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    copy_demo(&archive, "20260218T", "20260218T1600");
    // An unreadable capture: patrol skips it with a warning.
    std::fs::write(
        archive.join("vk01/2026-02-18/20260218T154500Z.json.zst"),
        "not zstd",
    )
    .unwrap();
    let out = patrol_env(
        &[
            "report",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            dir.path().join("out").to_str().unwrap(),
        ],
        &root(),
        &[("PATROL_LOG", "info")],
    );
    succeeded(&out);
    let err = text(&out.stderr);
    assert!(err.contains("skipping unreadable snapshot"), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes in a log file");
    let stamped = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}").unwrap();
    for line in err.lines().filter(|l| !l.trim().is_empty()) {
        assert!(stamped.is_match(line), "no time on: {line}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Telegram's HTML mode: fleet text escaped has no raw `<`, `>` or `&` but entities, and no
    /// control character but the line feed.
    #[test]
    fn telegram_escape_leaves_no_markup_and_no_controls(s in any::<String>(), extra in prop::sample::select(vec!["\r", "\u{1b}[31m", "\u{1b}]0;t\u{7}", "<b>", "&amp;", "\u{85}"])) {
        let input = format!("{s}{extra}{s}");
        let escaped = patrol::telegram::escape(&input);
        prop_assert!(!escaped.contains(['<', '>']));
        let without_entities = escaped
            .replace("&amp;", "")
            .replace("&lt;", "")
            .replace("&gt;", "");
        prop_assert!(!without_entities.contains('&'));
        prop_assert!(escaped.chars().all(|c| !c.is_control() || c == '\n'));
    }
}
