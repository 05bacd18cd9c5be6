//! Hostile and mistaken input, driven through the binary: each is refused at load with exit 2,
//! every problem of the file named with its line, and nothing written.

use std::path::Path;

use crate::support::{files_under, patrol, root, text};

/// Runs patrol in `dir` and returns (exit code, stderr).
fn refused(args: &[&str], dir: &Path) -> String {
    let out = patrol(args, dir);
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2\nstdout: {}\nstderr: {err}",
        text(&out.stdout)
    );
    assert!(
        !err.contains("panicked"),
        "a panic instead of a message: {err}"
    );
    err
}

fn assert_lines(err: &str, file: &str, lines: &[usize]) {
    for line in lines {
        assert!(
            err.contains(&format!("{file}:{line}:")),
            "no problem reported at {file}:{line}:\n{err}"
        );
    }
}

#[test]
fn a_hostile_config_is_refused_with_every_problem_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            r#"fleet = "x"
timeout = "99999999999999d"
window = "0m"
[daemon]
interval = "99999999999999d"
[[node]]
name = "a"
[node.ssh]
target = "-oProxyCommand=touch {marker}"
[node.docker]
endpoint = "ssh://-oProxyCommand=touch%20x"
[[node.postgres]]
name = "db"
port = 70000
[[node.redis]]
name = "cache"
port = -1
[[node.rabbitmq]]
name = "mq"
url = "amqp://127.0.0.1:5672"
[[node.http]]
name = "web"
url = "not a url"
[[node.http]]
name = "web"
url = "http://127.0.0.1:1/"
timeout = "0s"
[[node]]
name = "a"
[node.prometheus]
url = "http://127.0.0.1:0/"
"#,
            marker = marker.display()
        ),
    )
    .unwrap();
    let err = refused(&["run", "--config", config.to_str().unwrap()], dir.path());
    assert_lines(
        &err,
        "patrol.toml",
        &[2, 3, 5, 9, 11, 14, 17, 20, 23, 25, 27, 29, 31],
    );
    assert!(!marker.exists(), "the ssh target ran a command");
    assert_eq!(
        files_under(dir.path()),
        vec![config.clone()],
        "nothing may be written"
    );
}

#[test]
fn absurd_durations_on_the_command_line_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let demo = root().join("snapshots/demo");
    let out = dir.path().join("out");
    let err = refused(
        &[
            "report",
            "--archive",
            demo.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--window",
            "1000000000w",
        ],
        dir.path(),
    );
    assert!(err.contains("--window") && err.contains("at most"), "{err}");
    let err = refused(
        &[
            "backtest",
            "memory-leak",
            "--archive",
            demo.to_str().unwrap(),
            "--window",
            "0m",
        ],
        dir.path(),
    );
    assert!(err.contains("--window"), "{err}");
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        "fleet = \"x\"\n[[node]]\nname = \"a\"\n[node.host]\n",
    )
    .unwrap();
    let err = refused(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--wait",
            "99999999999999d",
        ],
        dir.path(),
    );
    assert!(err.contains("--wait"), "{err}");
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn an_empty_overlay_keeps_the_built_in_library_and_disabling_every_rule_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let out = dir.path().join("out");
    let demo = root().join("snapshots/demo");
    let args = [
        "report",
        "--archive",
        demo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    std::fs::write(rules.join("notes.toml"), "# rules to come\n").unwrap();
    let listed = crate::support::succeeded(&patrol(&["rules", "list"], dir.path()));
    assert!(listed.contains("container-removed"), "{listed}");
    // Every built-in id, disabled.
    let ids: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|id| format!("\"{id}\""))
        .collect();
    std::fs::write(
        rules.join("notes.toml"),
        format!("disable = [{}]\n", ids.join(", ")),
    )
    .unwrap();
    let err = refused(&args, dir.path());
    assert!(err.contains("no rule left (1 file read)"), "{err}");
    assert!(err.contains("rules"), "{err}");
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn a_scenario_asking_for_a_billion_nodes_or_captures_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("big.toml");
    std::fs::write(
        &scenario,
        r#"[scenario]
fleet = "big"
start = "2026-01-01 00:00"
end = "2090-01-01 00:00"
interval = "1s"

[[node]]
name = "a"
[[node]]
name = "a"

[[node_template]]
prefix = "n"
count = 1000000000
[node_template.node]
name = "x"
"#,
    )
    .unwrap();
    let out = dir.path().join("archive");
    let started = std::time::Instant::now();
    let err = refused(
        &[
            "simulate",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(started.elapsed().as_secs() < 30, "it tried to allocate");
    assert_lines(&err, "big.toml", &[5, 10, 14]);
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn rule_parameters_that_would_silently_turn_a_rule_off_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("writes.toml"),
        r#"[[rule]]
id = "writes"
kind = "growth-rate"
severity = "info"
description = "d"
select = { entity = "container:*", metric = "blkio_write_bytes" }
params = { min_rate = "+1GB/h", window = "0s", min_span = "1h", min_samples = 5, min_r2 = nan }
title = "t"
recommendation = "r"
"#,
    )
    .unwrap();
    let err = refused(&["rules", "check"], dir.path());
    assert!(err.contains("`window`: must be longer than 0"), "{err}");
    assert!(err.contains("`min_r2` must be a finite number"), "{err}");
    assert!(err.contains("writes.toml:"), "{err}");
}
