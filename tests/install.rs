//! The install story in contrib/ and docs/install.md, driven with the real tools: every systemd
//! unit through `systemd-analyze verify`, and every cron line run by `sh` the way cron runs it,
//! with an empty environment, to prove it hands the passwords in /etc/patrol/env to patrol and
//! refuses to run without them. A copy-paste of these files into /etc must work the first time.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{root, text};

const ENV_FILE: &str = "/etc/patrol/env";
const LOG_FILE: &str = "/var/log/patrol/patrol.log";
const BINARY: &str = "/usr/local/bin/patrol";
const CONFIG: &str = "/etc/patrol/patrol.toml";

/// The units an operator installs: the daemon, or the capture and digest timers.
const UNITS: &[&str] = &[
    "patrol.service",
    "patrol-run.service",
    "patrol-run.timer",
    "patrol-digest.service",
    "patrol-digest.timer",
];

fn contrib(name: &str) -> String {
    std::fs::read_to_string(root().join("contrib").join(name))
        .unwrap_or_else(|e| panic!("contrib/{name}: {e}"))
}

/// `Key=value` of a unit, in order (comments and section headers left out).
fn unit_values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .collect()
}

/// Splits `n` whitespace-separated fields off a line; the remainder keeps its spacing, as cron
/// hands it to the shell.
fn split_fields(line: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut rest = line.trim_start();
    let mut fields = Vec::new();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        fields.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    Some((fields, rest))
}

/// A crontab: its environment lines and its jobs (schedule, user when the format has one,
/// command with cron's `%` handling applied).
struct Crontab {
    env: Vec<(String, String)>,
    jobs: Vec<(String, Option<String>, String)>,
}

fn parse_crontab(name: &str, with_user: bool) -> Crontab {
    let text = contrib(name);
    let mut env = Vec::new();
    let mut jobs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let first = trimmed.split_whitespace().next().unwrap_or_default();
        if let Some((k, v)) = first.split_once('=')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            assert_eq!(first, trimmed, "{name}:{}: an environment line", i + 1);
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let n = if with_user { 6 } else { 5 };
        let (fields, command) = split_fields(trimmed, n)
            .unwrap_or_else(|| panic!("{name}:{}: fewer than {n} fields", i + 1));
        let schedule = fields[..5].join(" ");
        assert!(
            schedule.parse::<croner::Cron>().is_ok(),
            "{name}:{}: bad schedule {schedule}",
            i + 1
        );
        // cron turns an unescaped % into a newline and feeds the rest to stdin.
        let unescaped = command.replace("\\%", "");
        assert!(
            !unescaped.contains('%'),
            "{name}:{}: a bare % would cut the command",
            i + 1
        );
        assert!(!command.is_empty(), "{name}:{}: no command", i + 1);
        jobs.push((
            schedule,
            with_user.then(|| fields[5].to_string()),
            command.replace("\\%", "%"),
        ));
    }
    Crontab { env, jobs }
}

/// The variable names contrib/env.example shows: what an operator's /etc/patrol/env holds.
fn example_names() -> Vec<String> {
    let names: Vec<String> = contrib("env.example")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_string())
        .collect();
    assert!(!names.is_empty(), "contrib/env.example names no variable");
    names
}

/// A stand-in for patrol that records its arguments and which of `names` it received (names
/// only: the values are secrets), and writes a line on stderr to show where stderr goes.
fn fake_patrol(dir: &Path, names: &[String]) -> (PathBuf, PathBuf) {
    let marker = dir.join("received");
    let script = dir.join("patrol");
    let mut body = format!("#!/bin/sh\nexec 3>'{}'\n", marker.display());
    body.push_str("for a in \"$@\"; do echo \"arg $a\" >&3; done\n");
    for n in names {
        body.push_str(&format!("[ -n \"${{{n}:-}}\" ] && echo \"env {n}\" >&3\n"));
    }
    body.push_str("echo 'fake patrol: a line on stderr' >&2\nexit 0\n");
    std::fs::write(&script, body).unwrap();
    make_executable(&script);
    (script, marker)
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs one cron command as cron would: `$SHELL -c` with only the crontab's variables and
/// cron's own (HOME, LOGNAME), the install paths pointed into `dir`.
fn run_cron_command(
    tab: &Crontab,
    command: &str,
    dir: &Path,
    env_file: &Path,
    fake: &Path,
) -> std::process::Output {
    let command = command
        .replace(ENV_FILE, &env_file.display().to_string())
        .replace(LOG_FILE, &dir.join("patrol.log").display().to_string())
        .replace(BINARY, &fake.display().to_string());
    let shell = tab
        .env
        .iter()
        .find(|(k, _)| k == "SHELL")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/bin/sh");
    let mut cmd = Command::new("env");
    cmd.arg("-i")
        .arg(format!("HOME={}", dir.display()))
        .arg("LOGNAME=patrol");
    for (k, v) in &tab.env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.args([shell, "-c", &command]).current_dir(dir);
    cmd.output().unwrap()
}

fn check_crontab(name: &str, with_user: bool) {
    let tab = parse_crontab(name, with_user);
    assert!(
        tab.env
            .iter()
            .any(|(k, v)| k == "PATH" && v.split(':').any(|d| d == "/usr/bin")),
        "{name}: sets no PATH with /usr/bin"
    );
    let names = example_names();
    let mut subcommands = Vec::new();
    for (schedule, user, command) in &tab.jobs {
        if with_user {
            assert_eq!(
                user.as_deref(),
                Some("patrol"),
                "{name}: `{schedule}` runs as the wrong user"
            );
        }
        assert!(
            command.contains(ENV_FILE),
            "{name}: `{schedule}` does not load {ENV_FILE}"
        );

        // With the file there: every variable reaches patrol, and stderr lands in the log.
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join("env");
        let mut env_text = String::from("# planted\n");
        for (i, n) in names.iter().enumerate() {
            // Spaces and shell characters, quoted as env.example says.
            env_text.push_str(&format!("{n}='planted value {i} $x;|'\n"));
        }
        std::fs::write(&env_file, env_text).unwrap();
        let (fake, marker) = fake_patrol(dir.path(), &names);
        let out = run_cron_command(&tab, command, dir.path(), &env_file, &fake);
        assert!(
            out.status.success(),
            "{name}: `{schedule}` failed with the env file present: {}",
            // Planted values are not secrets, but tests never echo what they plant.
            text(&out.stderr).replace("planted value", "***")
        );
        let received = std::fs::read_to_string(&marker)
            .unwrap_or_else(|_| panic!("{name}: `{schedule}` never ran patrol"));
        for n in &names {
            assert!(
                received.lines().any(|l| l == format!("env {n}")),
                "{name}: `{schedule}` did not hand {n} to patrol"
            );
        }
        let args: Vec<&str> = received
            .lines()
            .filter_map(|l| l.strip_prefix("arg "))
            .collect();
        let parsed = <patrol::cli::Cli as clap::Parser>::try_parse_from(
            std::iter::once("patrol").chain(args.iter().copied()),
        );
        assert!(parsed.is_ok(), "{name}: `{schedule}`: {:?}", parsed.err());
        assert!(
            args.windows(2).any(|w| w == ["--config", CONFIG]),
            "{name}: `{schedule}` does not use {CONFIG}"
        );
        subcommands.push(args.first().map(|s| s.to_string()).unwrap_or_default());
        let log = std::fs::read_to_string(dir.path().join("patrol.log")).unwrap_or_default();
        assert!(
            log.contains("fake patrol: a line on stderr"),
            "{name}: `{schedule}`: patrol's stderr is not in the log"
        );

        // Without it: no run, and a message naming the file on stderr and in the log.
        let missing = dir.path().join("no-such-env");
        std::fs::remove_file(&marker).unwrap();
        let out = run_cron_command(&tab, command, dir.path(), &missing, &fake);
        assert!(
            !out.status.success(),
            "{name}: `{schedule}` exits 0 without the env file"
        );
        assert!(
            !marker.exists(),
            "{name}: `{schedule}` ran patrol without the env file"
        );
        let err = text(&out.stderr);
        assert!(
            err.contains(&missing.display().to_string()),
            "{name}: `{schedule}` does not name the missing env file on stderr: {err}"
        );
        let log = std::fs::read_to_string(dir.path().join("patrol.log")).unwrap_or_default();
        assert!(
            log.contains(&missing.display().to_string()),
            "{name}: `{schedule}` does not say in the log that the env file is missing"
        );
    }
    subcommands.sort();
    assert_eq!(
        subcommands,
        ["digest", "run"],
        "{name}: a capture line and a digest line"
    );
    let digest = tab.jobs.iter().find(|j| j.2.contains(" digest ")).unwrap();
    assert!(
        digest.2.contains("--send"),
        "{name}: the digest is not sent"
    );
}

#[test]
fn the_cron_d_file_has_a_user_field_and_hands_the_env_file_to_patrol() {
    check_crontab("patrol.cron", true);
}

#[test]
fn the_user_crontab_hands_the_env_file_to_patrol() {
    check_crontab("patrol.crontab", false);
}

/// docs/install.md shows the cron.d lines as they are in contrib/.
#[test]
fn the_install_guide_shows_the_cron_lines_of_contrib() {
    let guide = std::fs::read_to_string(root().join("docs/install.md")).unwrap();
    for line in contrib("patrol.cron")
        .lines()
        .filter(|l| l.starts_with(|c: char| c == '*' || c.is_ascii_digit()))
    {
        assert!(
            guide.contains(line),
            "docs/install.md lacks the cron line: {line}"
        );
    }
}

/// Every unit, with the binary path pointed at the built patrol (verify requires ExecStart to
/// exist), passes `systemd-analyze verify` without a warning: systemd ignores a key it cannot
/// parse with only a warning, which would silently drop a hardening option.
#[test]
fn every_systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("SKIPPED: systemd-analyze is not installed; the units are not verified");
        return;
    };
    let mut present: Vec<String> = std::fs::read_dir(root().join("contrib"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".service") || n.ends_with(".timer"))
        .collect();
    present.sort();
    for unit in UNITS {
        assert!(
            present.iter().any(|p| p == unit),
            "contrib/{unit} is missing"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for name in &present {
        let unit = contrib(name).replace(BINARY, env!("CARGO_BIN_EXE_patrol"));
        std::fs::write(dir.path().join(name), unit).unwrap();
    }
    for name in &present {
        let out = Command::new(analyze)
            .args(["verify", "--man=no"])
            .arg(dir.path().join(name))
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "contrib/{name}: systemd-analyze verify: exit {:?}\n{err}",
            out.status.code()
        );
    }
}

/// What systemd-analyze cannot know: the services read the env file and fail without it, are
/// hardened, and the timers start services that exist, with the same config as the cron lines.
#[test]
fn the_systemd_units_fail_without_the_env_file_and_are_hardened() {
    for unit in UNITS.iter().filter(|u| u.ends_with(".service")) {
        let text = contrib(unit);
        assert_eq!(
            unit_values(&text, "EnvironmentFile"),
            [ENV_FILE],
            "contrib/{unit}: EnvironmentFile must be {ENV_FILE}, without the '-' that ignores a missing file"
        );
        for (key, value) in [
            ("ProtectSystem", "strict"),
            ("NoNewPrivileges", "yes"),
            ("PrivateTmp", "yes"),
            ("ReadWritePaths", "/var/lib/patrol"),
            ("User", "patrol"),
        ] {
            assert_eq!(unit_values(&text, key), [value], "contrib/{unit}: {key}");
        }
        let exec = unit_values(&text, "ExecStart");
        assert_eq!(exec.len(), 1, "contrib/{unit}: one ExecStart");
        let args: Vec<&str> = exec[0].split_whitespace().collect();
        assert_eq!(args[0], BINARY, "contrib/{unit}");
        assert!(
            args.windows(2).any(|w| w == ["--config", CONFIG]),
            "contrib/{unit} does not use {CONFIG}"
        );
        let parsed = <patrol::cli::Cli as clap::Parser>::try_parse_from(args.iter().copied());
        assert!(parsed.is_ok(), "contrib/{unit}: {:?}", parsed.err());
    }
    for (timer, service, subcommand) in [
        ("patrol-run.timer", "patrol-run.service", "run"),
        ("patrol-digest.timer", "patrol-digest.service", "digest"),
    ] {
        let text = contrib(timer);
        assert_eq!(unit_values(&text, "Unit"), [service], "contrib/{timer}");
        assert_eq!(
            unit_values(&text, "WantedBy"),
            ["timers.target"],
            "contrib/{timer}"
        );
        let exec = contrib(service);
        let exec = unit_values(&exec, "ExecStart");
        assert_eq!(
            exec.first().and_then(|e| e.split_whitespace().nth(1)),
            Some(subcommand),
            "contrib/{service}"
        );
    }
    let digest = contrib("patrol-digest.service");
    assert!(
        unit_values(&digest, "ExecStart")
            .iter()
            .all(|e| e.split_whitespace().any(|a| a == "--send")),
        "contrib/patrol-digest.service does not send the digest"
    );
}

/// The read-only socket proxy of docs/install.md, run as written (its `global` section aside:
/// the test runs as whoever runs the suite) in front of the bed's engine: patrol captures
/// containers, stats and logs through it, so the documented GET paths are all patrol needs,
/// and the proxy refuses a write and any other path.
#[test]
#[ignore = "needs the test bed and haproxy: scripts/test"]
fn the_documented_socket_proxy_is_enough_for_patrol_and_refuses_writes() {
    let engine = std::env::var("PATROL_TEST_DOCKER_SOCKET")
        .expect("PATROL_TEST_DOCKER_SOCKET is unset: run the suite with scripts/test");
    let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("haproxy is not installed (scripts/test installs it)");
    let dir = tempfile::tempdir().unwrap();
    let proxy = dir.path().join("docker.sock");
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, documented_proxy_config(&proxy, &engine)).unwrap();
    let _stop = start_haproxy(haproxy, &cfg, &proxy);

    assert!(
        proxy_request(&proxy, "GET", "/version").contains(" 200"),
        "GET /version"
    );
    for (method, path) in [
        ("POST", "/containers/create"),
        ("POST", "/containers/pt-leak/kill"),
        ("DELETE", "/containers/pt-leak"),
        ("GET", "/info"),
        ("GET", "/images/json"),
        ("GET", "/containers/pt-leak/export"),
    ] {
        let status = proxy_request(&proxy, method, path);
        assert!(status.contains(" 403"), "{method} {path}: {status}");
    }

    let json = capture_through(&proxy, dir.path());
    let snap: serde_json::Value = serde_json::from_str(&json).unwrap();
    let containers = snap["containers"].as_array().cloned().unwrap_or_default();
    let leak = containers
        .iter()
        .find(|c| c["name"] == "pt-leak")
        .expect("pt-leak captured through the proxy");
    assert!(
        leak["mem_usage_bytes"].as_u64().unwrap_or(0) > 0,
        "stats through the proxy"
    );
    assert!(
        leak["health"].is_string() || leak["restart_policy"].is_string(),
        "inspect through the proxy"
    );
    assert!(
        json.contains("container:pt-logger"),
        "pt-logger's log stream read through the proxy"
    );
}

/// The ```haproxy block of docs/install.md from its `defaults` on, listening on `proxy` and
/// forwarding to `engine`, without the `user` it runs as in production.
fn documented_proxy_config(proxy: &Path, engine: &str) -> String {
    let guide = std::fs::read_to_string(root().join("docs/install.md")).unwrap();
    let block = guide
        .split("```haproxy\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("docs/install.md has a ```haproxy block");
    block
        .split("\ndefaults")
        .nth(1)
        .map(|rest| format!("defaults{rest}"))
        .expect("the haproxy block has a defaults section")
        .replace(" user patrol", "")
        .replace(
            "/run/patrol-docker/docker.sock",
            &proxy.display().to_string(),
        )
        .replace("/var/run/docker.sock", engine)
}

/// Stops haproxy when the test ends, however it ends.
struct StopOnDrop(std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts haproxy with `cfg` and waits for its socket; haproxy exiting instead fails with what
/// it said.
fn start_haproxy(haproxy: &str, cfg: &Path, proxy: &Path) -> StopOnDrop {
    let mut child = Command::new(haproxy)
        .arg("-db")
        .arg("-f")
        .arg(cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if proxy.exists() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("haproxy exited {status} with the documented config: {err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let stop = StopOnDrop(child);
    assert!(proxy.exists(), "haproxy did not open its socket");
    stop
}

/// The status line of one request through the proxy.
fn proxy_request(proxy: &Path, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(proxy).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

/// `patrol run` of a one-node fleet whose engine is the proxy, with nothing refused: the
/// snapshot it wrote, as `patrol show` prints it.
fn capture_through(proxy: &Path, dir: &Path) -> String {
    let config = dir.join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Proxy\"\ntimezone = \"UTC\"\n[[node]]\nname = \"node-a\"\n[node.docker]\nendpoint = \"unix://{}\"\n",
            proxy.display()
        ),
    )
    .unwrap();
    let out = crate::support::patrol(&["run", "--config", config.to_str().unwrap()], dir);
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "patrol run through the proxy: {err}"
    );
    assert!(
        !err.contains("WARN"),
        "a request patrol makes was refused by the proxy: {err}"
    );
    let snaps: Vec<PathBuf> = crate::support::files_under(&dir.join("snapshots"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
        .collect();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let show = crate::support::patrol(&["show", snaps[0].to_str().unwrap()], dir);
    text(&show.stdout)
}
