//! Collectors facing hostile remote data, driven through the real binary: whatever a remote
//! sends, `patrol run` finishes (exit 0, or 3 when a source could not be read), archives the
//! node, and records the source that could not be read with its error, rather than aborting or
//! dropping the source from the snapshot.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::fakes;
use crate::support::{files_under, patrol, text};

/// Runs one capture of a one-node fleet whose node has `sources` (TOML), and returns the
/// archived snapshot as JSON with how long the run took.
fn capture(dir: &Path, top: &str, sources: &str) -> (serde_json::Value, Duration) {
    let config = dir.join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Hostile\"\ntimezone = \"UTC\"\n{top}\n[[node]]\nname = \"n1\"\n{sources}\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = patrol(&["run", "--config", config.to_str().unwrap()], dir);
    let took = started.elapsed();
    let snaps = files_under(&dir.join("snapshots/hostile/n1"));
    assert_eq!(
        snaps.len(),
        1,
        "the node is archived: {}",
        text(&out.stderr)
    );
    let shown = patrol(&["show", snaps[0].to_str().unwrap()], dir);
    let snap: serde_json::Value =
        serde_json::from_slice(&shown.stdout).expect("patrol show prints the snapshot");
    // A source the remote broke makes the run degraded (3), never an error (2) nor ok (0).
    let degraded = snap["sources"]
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s["ok"] == false));
    assert_eq!(
        out.status.code(),
        Some(if degraded { 3 } else { 0 }),
        "{}",
        text(&out.stderr)
    );
    (snap, took)
}

/// The status the snapshot records for `source`; the test fails when the source is missing.
fn status<'a>(snap: &'a serde_json::Value, source: &str) -> &'a serde_json::Value {
    snap["sources"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == source))
        .unwrap_or_else(|| panic!("source {source} is missing from the snapshot: {snap}"))
}

fn docker_source(socket: &Path) -> String {
    format!(
        "[node.docker]\nendpoint = \"unix://{}\"\n",
        socket.display()
    )
}

#[test]
fn a_multibyte_character_across_the_template_cap_keeps_the_docker_source() {
    let dir = tempfile::tempdir().unwrap();
    // Byte 400 of the template falls inside "ç".
    let line = format!("ERROR {}ção do lote falhou", "a".repeat(393));
    let socket = fakes::docker(
        dir.path(),
        fakes::Docker {
            log_line: Some(line),
            ..fakes::Docker::default()
        },
    );
    let (snap, _) = capture(dir.path(), "", &docker_source(&socket));
    let docker = status(&snap, "docker");
    assert_eq!(docker["ok"], true, "{docker}");
    let logs = snap["logs"].as_array().unwrap();
    let stream = logs
        .iter()
        .find(|l| l["source"] == format!("container:{}", fakes::KEPT))
        .unwrap_or_else(|| panic!("the container's log stream is kept: {snap}"));
    let template = stream["templates"][0]["template"].as_str().unwrap();
    assert!(
        template.len() <= 400 && template.ends_with('a'),
        "{template}"
    );
}

#[test]
fn a_container_removed_during_the_capture_is_skipped_and_the_others_kept() {
    let dir = tempfile::tempdir().unwrap();
    let socket = fakes::docker(
        dir.path(),
        fakes::Docker {
            gone: true,
            ..fakes::Docker::default()
        },
    );
    let (snap, _) = capture(dir.path(), "", &docker_source(&socket));
    let docker = status(&snap, "docker");
    assert_eq!(docker["ok"], true, "{docker}");
    let names: Vec<&str> = snap["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, [fakes::KEPT]);
}

#[test]
fn docker_honours_the_configured_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let socket = fakes::docker(
        dir.path(),
        fakes::Docker {
            delay: Duration::from_secs(6),
            ..fakes::Docker::default()
        },
    );
    let (snap, took) = capture(dir.path(), "timeout = \"2s\"", &docker_source(&socket));
    let docker = status(&snap, "docker");
    assert_eq!(docker["ok"], false, "{docker}");
    assert!(docker["error"].as_str().unwrap().contains("2s"), "{docker}");
    assert!(took < Duration::from_secs(5), "the run took {took:?}");
}

#[test]
fn a_redis_announcing_a_100_gb_reply_is_a_recorded_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = fakes::redis(b"$100000000000\r\n");
    let (snap, _) = capture(
        dir.path(),
        "",
        &format!("[[node.redis]]\nname = \"cache\"\nhost = \"127.0.0.1\"\nport = {port}\n"),
    );
    let redis = status(&snap, "redis:cache");
    assert_eq!(redis["ok"], false, "{redis}");
    let error = redis["error"].as_str().unwrap();
    assert!(
        error.contains("100000000000 bytes") && error.contains(&port.to_string()),
        "{error}"
    );
}

#[test]
fn an_absurd_prometheus_uptime_is_a_recorded_error() {
    for value in ["1e17", "-5"] {
        let dir = tempfile::tempdir().unwrap();
        let url = fakes::prometheus(value);
        let (snap, _) = capture(
            dir.path(),
            "",
            &format!("[node.prometheus]\nurl = \"{url}\"\n"),
        );
        let prometheus = status(&snap, "prometheus");
        assert_eq!(prometheus["ok"], false, "{value}: {prometheus}");
        assert!(
            prometheus["error"].as_str().unwrap().contains("uptime"),
            "{value}: {prometheus}"
        );
    }
}

/// The `since` and `until` of a logs request's path.
fn log_window(path: &str) -> (String, String) {
    let param = |key: &str| {
        path.split(['?', '&'])
            .find_map(|p| p.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {path}"))
            .to_string()
    };
    (param("since="), param("until="))
}

#[test]
fn a_capture_whose_engine_failed_leaves_the_log_window_where_the_last_read_one_ended() {
    let dir = tempfile::tempdir().unwrap();
    let engine_dir = dir.path().join("engine");
    std::fs::create_dir(&engine_dir).unwrap();
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let engine = fakes::docker(
        &engine_dir,
        fakes::Docker {
            log_requests: Some(requests.clone()),
            ..fakes::Docker::default()
        },
    );
    // The config names a link: removed, the engine cannot be reached; put back, it answers.
    let link = dir.path().join("docker.sock");
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Cursor\"\ntimezone = \"UTC\"\n[[node]]\nname = \"n1\"\n{}",
            docker_source(&link)
        ),
    )
    .unwrap();
    // 0 when the engine answers; 3 (degraded) when it cannot be reached.
    let run = |expected: i32| {
        let out = patrol(&["run", "--config", config.to_str().unwrap()], dir.path());
        assert_eq!(out.status.code(), Some(expected), "{}", text(&out.stderr));
    };
    let state = || {
        let file = files_under(dir.path())
            .into_iter()
            .find(|p| p.ends_with(".state/collector.json"))
            .expect("the collector keeps its state");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        json["nodes"]["n1"]["last_capture"].clone()
    };

    std::os::unix::fs::symlink(&engine, &link).unwrap();
    run(0);
    let read = requests.lock().unwrap().clone();
    assert_eq!(read.len(), 1, "one container, one logs request: {read:?}");
    let (_, first_until) = log_window(&read[0]);
    let cursor = state();

    std::fs::remove_file(&link).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    run(3);
    assert_eq!(
        requests.lock().unwrap().len(),
        1,
        "the engine was not reached"
    );
    assert_eq!(state(), cursor, "a failed Docker source leaves the cursor");

    std::os::unix::fs::symlink(&engine, &link).unwrap();
    run(0);
    let read = requests.lock().unwrap().clone();
    assert_eq!(read.len(), 2, "{read:?}");
    let (since, _) = log_window(&read[1]);
    assert_eq!(
        since, first_until,
        "the window after the failed capture starts where the last read one ended"
    );
}

/// The kept container's counts and the engine's event span, from one capture of `events`.
fn capture_events(events: fakes::Events, top: &str) -> (serde_json::Value, Duration, String) {
    let dir = tempfile::tempdir().unwrap();
    let socket = fakes::docker(
        dir.path(),
        fakes::Docker {
            events,
            ..fakes::Docker::default()
        },
    );
    let (snap, took) = capture(dir.path(), top, &docker_source(&socket));
    let docker = status(&snap, "docker");
    assert_eq!(
        docker["ok"], true,
        "the event stream never fails the capture: {docker}"
    );
    let kept = snap["containers"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == fakes::KEPT))
        .unwrap_or_else(|| panic!("{} is kept: {snap}", fakes::KEPT))
        .clone();
    let text = snap.to_string();
    (kept, took, text)
}

#[test]
fn the_engine_events_count_an_oom_kill_a_restart_hid_and_keep_no_label() {
    let (kept, _, text) = capture_events(fakes::Events::Killed, "");
    // Inspect says nothing: the restart cleared the flag and the code.
    assert_eq!(kept["oom_kills"], 1, "{kept}");
    assert_eq!(kept["exits"], 2, "{kept}");
    assert_eq!(kept["last_exit_code"], 3, "{kept}");
    assert!(
        !text.contains(fakes::EVENT_SECRET),
        "the archived snapshot keeps a container label from the event stream"
    );
}

#[test]
fn an_event_stream_the_engine_refuses_leaves_the_counts_out_and_says_why() {
    let (kept, _, text) = capture_events(fakes::Events::Status("500 Internal Server Error"), "");
    assert!(kept.get("oom_kills").is_none(), "{kept}");
    let snap: serde_json::Value = serde_json::from_str(&text).unwrap();
    let error = snap["docker"]["events"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("/events") && error.contains("500"),
        "{}",
        snap["docker"]
    );
}

#[test]
fn an_event_stream_left_open_is_cut_at_its_share_of_the_timeout() {
    let (kept, took, text) = capture_events(
        fakes::Events::Stall(Duration::from_secs(30)),
        "timeout = \"8s\"",
    );
    // 2 s (a quarter of the timeout) for the events, then the rest of the capture.
    assert!(took < Duration::from_secs(7), "the run took {took:?}");
    assert_eq!(
        kept["oom_kills"], 1,
        "what came before the stall counts: {kept}"
    );
    let snap: serde_json::Value = serde_json::from_str(&text).unwrap();
    let error = snap["docker"]["events"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("still open"), "{}", snap["docker"]);
}
