//! contrib/: the systemd units are checked for syntax, so a copy-paste into /etc works (the
//! cron lines, and the units under systemd-analyze, are driven in tests/install.rs).

use crate::support::root;

/// Sections and keys of a unit file; every line is a comment, a section or `Key=value`.
fn parse_unit(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not Key=value: {line}", i + 1));
        assert!(
            !section.is_empty(),
            "line {}: key before any section",
            i + 1
        );
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric()),
            "line {}: bad key {key}",
            i + 1
        );
        out.push((section.clone(), key.to_string(), value.to_string()));
    }
    out
}

const KNOWN: &[(&str, &[&str])] = &[
    (
        "Unit",
        &["Description", "Documentation", "After", "Wants", "Requires"],
    ),
    (
        "Service",
        &[
            "Type",
            "User",
            "Group",
            "SupplementaryGroups",
            "WorkingDirectory",
            "EnvironmentFile",
            "ExecStart",
            "KillSignal",
            "TimeoutStopSec",
            "Restart",
            "RestartSec",
            "ProtectSystem",
            "ReadWritePaths",
            "PrivateTmp",
            "NoNewPrivileges",
            "ProtectHome",
            "ProtectKernelTunables",
            "ProtectKernelModules",
            "ProtectControlGroups",
            "RestrictSUIDSGID",
            "LockPersonality",
            "RestrictRealtime",
            "RestrictAddressFamilies",
        ],
    ),
    (
        "Timer",
        &["OnCalendar", "AccuracySec", "Persistent", "Unit"],
    ),
    ("Install", &["WantedBy"]),
];

#[test]
fn the_systemd_units_are_well_formed() {
    for name in [
        "patrol.service",
        "patrol-run.service",
        "patrol-run.timer",
        "patrol-digest.service",
        "patrol-digest.timer",
    ] {
        let text = std::fs::read_to_string(root().join("contrib").join(name)).unwrap();
        let keys = parse_unit(&text);
        for (section, key, value) in &keys {
            let known = KNOWN
                .iter()
                .find(|(s, _)| s == section)
                .unwrap_or_else(|| panic!("{name}: unknown section [{section}]"));
            assert!(known.1.contains(&key.as_str()), "{name}: [{section}] {key}");
            if key == "ExecStart" {
                assert!(
                    value.starts_with("/usr/local/bin/patrol "),
                    "{name}: {value}"
                );
                // The command line patrol is given must parse.
                let args: Vec<&str> = value.split_whitespace().skip(1).collect();
                let parsed = <patrol::cli::Cli as clap::Parser>::try_parse_from(
                    std::iter::once("patrol").chain(args),
                );
                assert!(parsed.is_ok(), "{name}: {value}: {:?}", parsed.err());
            }
            if key == "OnCalendar" && std::path::Path::new("/usr/bin/systemd-analyze").exists() {
                let out = std::process::Command::new("systemd-analyze")
                    .args(["calendar", value])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{name}: OnCalendar={value}");
            }
        }
        // A oneshot started by its timer needs no [Install]; the daemon and the timer do.
        if !name.ends_with(".service") || name == "patrol.service" {
            assert!(
                keys.iter().any(|k| k.0 == "Install"),
                "{name} has no [Install]"
            );
        }
    }
}

/// A daemon stopped with SIGTERM in the middle of a capture finishes it, leaves no temp file,
/// and starts again cleanly.
#[test]
fn a_daemon_stopped_mid_capture_finishes_it_and_resumes_cleanly() {
    let port = crate::support::slow_endpoint(std::time::Duration::from_millis(1500));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        format!("fleet = \"Daemon Test\"\ntimezone = \"UTC\"\n[daemon]\ninterval = \"1h\"\ndigest = \"off\"\n[[node]]\nname = \"here\"\n[node.host]\n[[node.http]]\nname = \"slow\"\nurl = \"http://127.0.0.1:{port}/\"\n"),
    )
    .unwrap();
    let snapshots = || {
        let files = crate::support::files_under(&dir.path().join("snapshots"));
        for p in &files {
            assert!(
                !p.to_string_lossy().contains(".patrol-"),
                "temp file left: {}",
                p.display()
            );
        }
        files
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
            .count()
    };
    for round in 1..=2 {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
            .args(["daemon", "--config", config.to_str().unwrap()])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Mid-capture: the endpoint takes 1.5 s to answer.
        std::thread::sleep(std::time::Duration::from_millis(700));
        // The shell's own `kill`: no procps needed.
        let kill = std::process::Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", child.id())])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "round {round}: {err}");
        assert!(
            err.contains("finishing the capture under way") && err.contains("stopped"),
            "{err}"
        );
        assert_eq!(
            snapshots(),
            round,
            "the capture under way was finished and archived"
        );
    }
}
