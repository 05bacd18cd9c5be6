//! Tests against the real services of the test bed (`scripts/testbed up`). They are ignored in a
//! plain `cargo test`; `scripts/test` starts the bed and runs them.

use crate::support::{patrol, text};

fn socket() -> String {
    std::env::var("PATROL_TEST_DOCKER_SOCKET")
        .expect("PATROL_TEST_DOCKER_SOCKET is unset: run the suite with scripts/test")
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn run_captures_the_real_docker_engine_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Testbed\"\ntimezone = \"UTC\"\nnode = \"node-a\"\ndocker = \"unix://{}\"\n",
            socket()
        ),
    )
    .unwrap();
    let out = patrol(&["run", "--config", config.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let snaps = snapshots(dir.path());
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let show = patrol(&["show", snaps[0].to_str().unwrap()], dir.path());
    let json = text(&show.stdout);
    let snap: serde_json::Value = serde_json::from_str(&json).unwrap();
    let source = docker_source(&snap);
    assert_eq!(source["ok"], true, "{source}");
    assert!(
        snap["docker"]["engine_version"]
            .as_str()
            .unwrap()
            .starts_with("20.10")
    );
    let by_name = |n: &str| {
        snap["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("{n} missing"))
            .clone()
    };
    let healthy = by_name("pt-healthy");
    assert_eq!(healthy["health"], "healthy");
    assert_eq!(healthy["restart_policy"], "unless-stopped");
    assert_eq!(healthy["revision"], "abc1234", "the image's revision label");
    let unhealthy = by_name("pt-unhealthy");
    assert_eq!(unhealthy["health"], "unhealthy");
    assert!(unhealthy["failing_streak"].as_u64().unwrap() >= 1);
    assert!(!unhealthy["health_log"].as_array().unwrap().is_empty());
    let leak = by_name("pt-leak");
    assert_eq!(
        leak["revision"], "deadbeef",
        "a container label overrides the image's"
    );
    assert_eq!(leak["mem_limit_bytes"], 256 * 1024 * 1024);
    assert!(leak["mem_usage_bytes"].as_u64().unwrap() > 0);
    assert!(leak["cpu_cores"].is_number());
    let oom = by_name("pt-oom");
    assert_eq!(oom["oom_killed"], true);
    assert_eq!(oom["exit_code"], 137);
    assert_eq!(oom["state"], "exited");
    let restarting = by_name("pt-restarting");
    assert!(
        restarting["restart_count"].as_u64().unwrap() >= 1 || restarting["state"] == "restarting"
    );

    let secret = std::env::var("PATROL_TEST_SECRET").unwrap();
    assert!(
        !json.contains(&secret) && !json.contains("DB_PASSWORD"),
        "a container secret reached the snapshot"
    );
    for f in walk(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "{} holds the secret",
            f.display()
        );
    }
    assert!(!text(&out.stdout).contains(&secret) && !text(&out.stderr).contains(&secret));
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn an_engine_that_does_not_answer_is_recorded_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patrol.toml");
    let gone = dir.path().join("no-such.sock");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Gone\"\nnode = \"n\"\ndocker = \"unix://{}\"\n",
            gone.display()
        ),
    )
    .unwrap();
    let out = patrol(&["run", "--config", config.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let snaps = snapshots(dir.path());
    let show = patrol(&["show", snaps[0].to_str().unwrap()], dir.path());
    let snap: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let source = docker_source(&snap);
    assert_eq!(source["ok"], false);
    assert!(
        source["error"].as_str().unwrap().contains("no-such.sock"),
        "the error names the endpoint: {source}"
    );
    assert!(
        snap.get("containers").is_none(),
        "no container list, not an empty one"
    );
    assert!(
        snap["host"]["uptime_s"].as_u64().is_some(),
        "the other sources still answered"
    );
}

/// The `docker` entry of a snapshot's sources.
fn docker_source(snap: &serde_json::Value) -> serde_json::Value {
    snap["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "docker")
        .unwrap()
        .clone()
}

fn snapshots(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    walk(&dir.join("snapshots"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p))
            } else if p.to_string_lossy().ends_with(".zst")
                || p.extension()
                    .is_some_and(|x| x == "md" || x == "json" || x == "toml")
            {
                out.push(p)
            }
        }
    }
    out.sort();
    out
}
