//! A capture that could not read some sources must say so: a distinct exit code, one stderr line
//! per failing source with its cause, even under cron with an empty environment.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::{patrol, text};

fn config_with_docker(dir: &Path, socket: &Path) -> std::path::PathBuf {
    let config = dir.join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Blind Test\"\ntimezone = \"UTC\"\n[[node]]\nname = \"here\"\n[node.host]\n[node.docker]\nendpoint = \"unix://{}\"\n",
            socket.display()
        ),
    )
    .unwrap();
    config
}

/// The stderr lines naming failing sources.
fn degraded_lines(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| l.contains("degraded:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_run_with_a_failing_source_exits_3_and_names_node_source_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_docker(dir.path(), &dir.path().join("no-such.sock"));
    let config = config.to_str().unwrap();
    for args in [
        vec!["run", "--config", config],
        // Degraded wins over findings: the findings of a partial capture are not the whole story.
        vec!["run", "--config", config, "--fail-on", "suggestion"],
        vec!["run", "--config", config, "--capture-only"],
    ] {
        let out = patrol(&args, dir.path());
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let lines = degraded_lines(&out);
        assert_eq!(lines.len(), 1, "{args:?}: {}", text(&out.stderr));
        let line = &lines[0];
        assert!(
            line.contains("node here") && line.contains("source docker"),
            "{line}"
        );
        assert!(line.contains("No such file or directory"), "{line}");
    }
}

#[test]
fn a_run_where_every_source_fails_under_cron_is_never_silent_nor_0() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Blind Test\"\ntimezone = \"UTC\"\n[[node]]\nname = \"dark\"\n[node.docker]\nendpoint = \"unix://{}\"\n[[node.postgres]]\nname = \"db\"\nport = 9\npassword_env = \"PATROL_BLIND_TEST_UNSET\"\n",
            dir.path().join("gone.sock").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(["run", "--config", config.to_str().unwrap()])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let lines = degraded_lines(&out);
    assert_eq!(lines.len(), 2, "{}", text(&out.stderr));
    assert!(lines.iter().any(|l| l.contains("source docker")));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("source postgres:db") && l.contains("PATROL_BLIND_TEST_UNSET")),
        "{lines:?}"
    );
    // Under cron each line carries its time, as the log's other lines do.
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("20") && l.contains("Z patrol: ")),
        "{lines:?}"
    );
}

/// A socket that exists but may not be opened reads differently from one that is not there.
/// Root is never denied, so as root the probe runs as `nobody` (via setpriv).
#[test]
fn a_socket_that_denies_access_reads_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = dir.path().join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o000)).unwrap();
    let config = config_with_docker(dir.path(), &socket);
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let root = running_as_root();
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_patrol"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_patrol"))
    };
    let out = cmd
        .args([
            "run",
            "--capture-only",
            "--config",
            config.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .env_remove("PATROL_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let lines = degraded_lines(&out);
    assert_eq!(lines.len(), 1, "{}", text(&out.stderr));
    assert!(lines[0].contains("Permission denied"), "{}", lines[0]);
    assert!(!lines[0].contains("No such file"), "{}", lines[0]);
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Two captures with the Docker source failing: past its one-capture grace, the shipped
/// `source-failing` rule is a warning, and the textfile says the source is down.
#[test]
fn a_source_failing_twice_is_a_warning_and_the_textfile_says_it_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_docker(dir.path(), &dir.path().join("no-such.sock"));
    let config = config.to_str().unwrap();
    for _ in 0..2 {
        let out = patrol(&["run", "--config", config], dir.path());
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        // Captures are keyed by the second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let report = crate::support::rolling_report(&dir.path().join("output/blind-test"));
    assert!(
        report
            .lines()
            .any(|l| l.contains("[WARNING] here source docker is failing")),
        "{report}"
    );
    let prom = dir.path().join("patrol.prom");
    let out = patrol(
        &[
            "report",
            "--config",
            config,
            "--textfile",
            prom.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        out.status.code().is_some_and(|c| c == 0),
        "{}",
        text(&out.stderr)
    );
    let metrics = std::fs::read_to_string(&prom).unwrap();
    let lines: Vec<&str> = metrics.lines().collect();
    assert!(
        lines.contains(&"patrol_source_up{fleet=\"Blind Test\",node=\"here\",source=\"docker\"} 0"),
        "{metrics}"
    );
    assert!(
        lines.contains(&"patrol_source_up{fleet=\"Blind Test\",node=\"here\",source=\"host\"} 1"),
        "{metrics}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "patrol_source_last_success_timestamp_seconds{fleet=\"Blind Test\",node=\"here\",source=\"host\"} "
        )),
        "{metrics}"
    );
    // Docker never answered: it has no last success to give.
    assert!(
        !metrics.contains("patrol_source_last_success_timestamp_seconds{fleet=\"Blind Test\",node=\"here\",source=\"docker\"}"),
        "{metrics}"
    );
    strict_exposition_check(&metrics);
    if let Ok(out) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&prom).unwrap())
        .output()
    {
        assert!(
            out.status.success(),
            "promtool refuses {}: {}{}",
            prom.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// The text exposition format, strictly: HELP and TYPE before a family's samples, one TYPE per
/// family, metric and label names of the allowed characters, label values with only `\\`, `\"`
/// and `\n` escapes, and a number for each value.
fn strict_exposition_check(text: &str) {
    let name_ok = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed = std::collections::HashSet::new();
    let mut helped = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let at = i + 1;
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(
                name_ok(name) && helped.insert(name.to_string()),
                "line {at}: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            assert!(
                name_ok(name)
                    && ["gauge", "counter", "untyped"].contains(&parts.next().unwrap_or(""))
                    && typed.insert(name.to_string()),
                "line {at}: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "line {at}: {line}"
        );
        let brace = line.find('{').unwrap_or_else(|| line.find(' ').unwrap());
        let name = &line[..brace];
        assert!(
            name_ok(name) && typed.contains(name) && helped.contains(name),
            "line {at}: {line}"
        );
        let mut rest = &line[brace..];
        if let Some(labels) = rest.strip_prefix('{') {
            let mut chars = labels.char_indices().peekable();
            loop {
                let start = chars.peek().unwrap().0;
                let mut eq = None;
                for (j, c) in chars.by_ref() {
                    if c == '=' {
                        eq = Some(j);
                        break;
                    }
                }
                let eq = eq.unwrap_or_else(|| panic!("line {at}: {line}"));
                assert!(name_ok(&labels[start..eq]), "line {at}: {line}");
                assert_eq!(chars.next().map(|c| c.1), Some('"'), "line {at}: {line}");
                loop {
                    match chars.next().map(|c| c.1) {
                        Some('\\') => assert!(
                            matches!(chars.next().map(|c| c.1), Some('\\' | '"' | 'n')),
                            "line {at}: {line}"
                        ),
                        Some('"') => break,
                        Some('\n') | None => panic!("line {at}: {line}"),
                        Some(_) => {}
                    }
                }
                match chars.next() {
                    Some((_, ',')) => continue,
                    Some((j, '}')) => {
                        rest = &labels[j + 1..];
                        break;
                    }
                    _ => panic!("line {at}: {line}"),
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("line {at}: {line}"));
        assert!(value.parse::<f64>().is_ok(), "line {at}: {line}");
    }
}
