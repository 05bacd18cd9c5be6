//! Container logs read through the real binary against a fake engine: a slow stream is cut at
//! its own deadline without costing the containers' states, containers stopped before the window
//! are not asked again, a window reaching back for a node's clock offset counts no line twice,
//! and writable-layer sizes are asked for on their own schedule and carried forward between.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fakes;
use crate::support::{files_under, patrol, text};

/// A one-node fleet on `socket`, archived under `dir`.
fn config(dir: &Path, top: &str, socket: &Path) -> PathBuf {
    let config = dir.join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Logs\"\ntimezone = \"UTC\"\n{top}\n[[node]]\nname = \"n1\"\n[node.docker]\nendpoint = \"unix://{}\"\n",
            socket.display()
        ),
    )
    .unwrap();
    config
}

/// Runs one capture that must succeed (exit 0) and returns the newest archived snapshot.
fn run(dir: &Path, config: &Path) -> serde_json::Value {
    let out = patrol(&["run", "--config", config.to_str().unwrap()], dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let snaps = files_under(&dir.join("snapshots/logs/n1"));
    let newest = snaps.last().expect("the node is archived");
    let shown = patrol(&["show", newest.to_str().unwrap()], dir);
    serde_json::from_slice(&shown.stdout).expect("patrol show prints the snapshot")
}

fn stream<'a>(snap: &'a serde_json::Value, source: &str) -> &'a serde_json::Value {
    snap["logs"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["source"] == source))
        .unwrap_or_else(|| panic!("no log stream {source} in the snapshot"))
}

fn container<'a>(snap: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    snap["containers"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in the snapshot"))
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("snapshots/logs/.state/collector.json")
}

/// An engine that sends one log line, then holds the stream open for 8 s.
fn stalling_engine(dir: &Path) -> PathBuf {
    fakes::docker(
        dir,
        fakes::Docker {
            log_line: Some("INFO worker started".into()),
            stall_logs: Some(Duration::from_secs(8)),
            ..fakes::Docker::default()
        },
    )
}

#[test]
fn a_log_stream_that_stalls_is_cut_at_its_deadline_and_the_containers_land() {
    let dir = tempfile::tempdir().unwrap();
    let socket = stalling_engine(dir.path());
    let config = config(dir.path(), "timeout = \"2s\"", &socket);
    let started = Instant::now();
    let snap = run(dir.path(), &config);
    assert!(started.elapsed() < Duration::from_secs(6), "the run waited");
    let kept = container(&snap, fakes::KEPT);
    assert_eq!(kept["mem_usage_bytes"], 1000000, "{kept}");
    let logs = stream(&snap, &format!("container:{}", fakes::KEPT));
    assert_eq!(
        logs["lines_total"], 1,
        "the line read before the stall is kept"
    );
    let cut = &logs["truncated"];
    assert_eq!(cut["reason"], "time", "{logs}");
    assert!(
        cut["after"]
            .as_str()
            .is_some_and(|a| a.starts_with("2026-11-22T13:02:06.5")),
        "{logs}"
    );
    assert!(cut["bytes_read"].as_u64().unwrap() > 0, "{logs}");
}

/// A stream cut in captures in a row is reported: lines after the cut, errors included, were
/// never read, and the reader of the report must know.
#[test]
fn a_stream_cut_in_two_captures_in_a_row_is_a_warning_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let socket = stalling_engine(dir.path());
    let config = config(dir.path(), "timeout = \"2s\"", &socket);
    run(dir.path(), &config);
    let said = |dir: &Path| {
        files_under(&dir.join("output"))
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "md"))
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .any(|t| t.contains("[WARNING]") && t.contains("of the window were not read"))
    };
    assert!(!said(dir.path()), "one cut capture is not yet a finding");
    run(dir.path(), &config);
    assert!(
        said(dir.path()),
        "the second cut capture in a row opens the warning"
    );
}

#[test]
fn a_container_stopped_before_the_window_is_not_asked_for_its_logs() {
    let dir = tempfile::tempdir().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let socket = fakes::docker(
        dir.path(),
        fakes::Docker {
            exited: true,
            log_requests: Some(requests.clone()),
            ..fakes::Docker::default()
        },
    );
    let config = config(dir.path(), "", &socket);
    let snap = run(dir.path(), &config);
    let asked = requests.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "only the running container: {asked:?}");
    assert!(asked[0].contains("/containers/1111"), "{asked:?}");
    // The stream is still there, empty, as the engine would have answered.
    let exited = stream(&snap, &format!("container:{}", fakes::EXITED));
    assert_eq!(exited["lines_total"], 0, "{exited}");
    assert_eq!(container(&snap, fakes::EXITED)["state"], "exited");
}

/// Seconds since the epoch of a logs request's `since`.
fn since_of(path: &str) -> f64 {
    path.split(['?', '&'])
        .find_map(|p| p.strip_prefix("since="))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no since in {path}"))
}

#[test]
fn a_window_widened_for_a_lagging_clock_counts_no_line_twice() {
    let dir = tempfile::tempdir().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    // The fake engine sends the same line (same engine timestamp) to every request, as dockerd
    // does when two windows overlap.
    let socket = fakes::docker(
        dir.path(),
        fakes::Docker {
            log_line: Some("ERROR disk full".into()),
            log_requests: Some(requests.clone()),
            ..fakes::Docker::default()
        },
    );
    let config = config(dir.path(), "", &socket);
    let first = run(dir.path(), &config);
    let logs = stream(&first, &format!("container:{}", fakes::KEPT));
    assert_eq!(logs["lines_total"], 1, "{logs}");

    // The ssh source measured the node's clock 10 minutes behind patrol's.
    let file = state_file(dir.path());
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(
        state["nodes"]["n1"]["last_capture"].as_str().unwrap(),
    )
    .unwrap();
    state["nodes"]["n1"]["clock_offset_ms"] = serde_json::json!(-600000.0);
    std::fs::write(&file, serde_json::to_vec(&state).unwrap()).unwrap();

    let second = run(dir.path(), &config);
    let asked = requests.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    let since = since_of(&asked[1]);
    let expected = last.timestamp() as f64 - 601.0;
    assert!(
        (since - expected).abs() < 1.0,
        "the window reaches back by the offset: since {since}, last capture {last}"
    );
    let logs = stream(&second, &format!("container:{}", fakes::KEPT));
    assert_eq!(
        logs["lines_total"], 0,
        "a line counted by the previous capture is not counted again: {logs}"
    );
}

#[test]
fn writable_layer_sizes_are_asked_for_on_their_own_schedule_and_carried_forward() {
    let dir = tempfile::tempdir().unwrap();
    let lists = Arc::new(Mutex::new(Vec::new()));
    let socket = fakes::docker(
        dir.path(),
        fakes::Docker {
            list_requests: Some(lists.clone()),
            ..fakes::Docker::default()
        },
    );
    let config = config(dir.path(), "", &socket);
    let first = run(dir.path(), &config);
    let second = run(dir.path(), &config);
    let asked = lists.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked[0].contains("size=1"),
        "the first capture measures: {asked:?}"
    );
    assert!(
        !asked[1].contains("size=1"),
        "the next one, within size_every, does not: {asked:?}"
    );
    for snap in [&first, &second] {
        let kept = container(snap, fakes::KEPT);
        assert_eq!(kept["size_rw_bytes"], fakes::KEPT_SIZE_RW, "{kept}");
        assert_eq!(
            kept["size_measured_at"], first["captured_at"],
            "the size says when it was measured: {kept}"
        );
    }

    // With `size_every` elapsed, the next capture measures again.
    let config = self::config(dir.path(), "", &socket);
    let text = std::fs::read_to_string(&config).unwrap() + "size_every = \"1s\"\n";
    std::fs::write(&config, text).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    run(dir.path(), &config);
    let asked = lists.lock().unwrap().clone();
    assert!(asked[2].contains("size=1"), "{asked:?}");
}

/// The docker client against the test bed's first engine.
fn bed_docker(args: &[&str]) -> std::process::Output {
    let socket = std::env::var("PATROL_TEST_DOCKER_SOCKET")
        .expect("PATROL_TEST_DOCKER_SOCKET is unset: run the suite with scripts/test");
    std::process::Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{socket}"))
        .args(args)
        .output()
        .expect("the docker client runs")
}

/// Removes the chatty container however the test ends.
struct Chatty(String);

impl Drop for Chatty {
    fn drop(&mut self) {
        let _ = bed_docker(&["rm", "-f", &self.0]);
    }
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn a_chatty_container_on_the_bed_keeps_its_error_and_every_line_is_counted() {
    const INFO_LINES: u64 = 6000;
    let socket = std::env::var("PATROL_TEST_DOCKER_SOCKET")
        .expect("PATROL_TEST_DOCKER_SOCKET is unset: run the suite with scripts/test");
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("pt-chatty-{}-{unique}", std::process::id());
    let script = format!(
        "i=0; while [ $i -lt {INFO_LINES} ]; do echo \"INFO processed batch $i\"; i=$((i+1)); done; echo 'ERROR disk full'; sleep 3600"
    );
    let started = bed_docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "patrol-bb:1",
        "sh",
        "-c",
        &script,
    ]);
    assert!(
        started.status.success(),
        "docker run failed: {}",
        text(&started.stderr)
    );
    let _guard = Chatty(name.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tail = bed_docker(&["logs", "--tail", "1", &name]);
        if text(&tail.stdout).contains("ERROR disk full") {
            break;
        }
        assert!(Instant::now() < deadline, "{name} never wrote its ERROR");
        std::thread::sleep(Duration::from_millis(200));
    }

    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "", Path::new(&socket));
    let snap = run(dir.path(), &config);
    let logs = stream(&snap, &format!("container:{name}"));
    assert_eq!(logs["lines_total"], INFO_LINES + 1, "every line is counted");
    assert!(logs["truncated"].is_null(), "the stream was read whole");
    let templates = logs["templates"].as_array().unwrap();
    let count_of = |template: &str| {
        templates
            .iter()
            .find(|t| t["template"] == template)
            .map(|t| t["count"].as_u64().unwrap())
    };
    assert_eq!(
        count_of("ERROR disk full"),
        Some(1),
        "the ERROR after the chatter is stored"
    );
    assert_eq!(count_of("INFO processed batch <n>"), Some(INFO_LINES));
    let kept: u64 = templates.iter().map(|t| t["count"].as_u64().unwrap()).sum();
    let other: u64 = logs["other"]
        .as_object()
        .map(|o| o.values().map(|v| v.as_u64().unwrap()).sum())
        .unwrap_or(0);
    assert_eq!(kept + other, INFO_LINES + 1, "the counts add up");
}

/// A unix socket that forwards every connection to `upstream` and keeps the request lines it
/// sees, so a test can tell which requests patrol made of a real engine.
fn recording_proxy(dir: &Path, upstream: PathBuf) -> (PathBuf, Arc<Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    let socket = dir.join("proxy.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = UnixStream::connect(&upstream) else {
                continue;
            };
            let seen = kept.clone();
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut server_in, mut client_out) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_in, &mut client_out);
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = client_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    for line in String::from_utf8_lossy(&buf[..n]).lines() {
                        if line.starts_with("GET ") {
                            seen.lock().unwrap().push(line.to_string());
                        }
                    }
                    if server_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (socket, seen)
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn the_bed_engine_is_not_asked_for_the_logs_of_a_container_that_stopped_before_the_window() {
    let socket = std::env::var("PATROL_TEST_DOCKER_SOCKET")
        .expect("PATROL_TEST_DOCKER_SOCKET is unset: run the suite with scripts/test");
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("pt-stopped-{}-{unique}", std::process::id());
    let started = bed_docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "patrol-bb:1",
        "sh",
        "-c",
        "echo bye",
    ]);
    assert!(
        started.status.success(),
        "docker run failed: {}",
        text(&started.stderr)
    );
    let _guard = Chatty(name.clone());
    let id = text(&started.stdout).trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = bed_docker(&["inspect", "-f", "{{.State.Status}}", &name]);
        if text(&status.stdout).trim() == "exited" {
            break;
        }
        assert!(Instant::now() < deadline, "{name} never exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1100));

    let dir = tempfile::tempdir().unwrap();
    let (proxy, seen) = recording_proxy(dir.path(), PathBuf::from(&socket));
    let config = config(dir.path(), "timeout = \"20s\"", &proxy);
    let logs_of = |id: &str| {
        let seen = seen.lock().unwrap();
        let all = seen.iter().filter(|l| l.contains("/logs?")).count();
        let this = seen
            .iter()
            .filter(|l| l.contains(&format!("/containers/{id}/logs")))
            .count();
        (all, this)
    };
    // The first window (the last 15 minutes) covers its run: asked.
    let first = run(dir.path(), &config);
    let (all, this) = logs_of(&id);
    assert_eq!(this, 1, "the first capture asks for its logs");
    assert_eq!(
        stream(&first, &format!("container:{name}"))["lines_total"],
        1,
        "it wrote one line"
    );
    // The next window starts after it stopped: not asked, an empty stream.
    let second = run(dir.path(), &config);
    let (all_after, this_after) = logs_of(&id);
    assert_eq!(this_after, 1, "the second capture does not ask again");
    assert!(
        all_after > all,
        "the running containers' logs are still asked for"
    );
    assert_eq!(
        stream(&second, &format!("container:{name}"))["lines_total"],
        0
    );
}

/// A collector state cut short (a full disk, a hand edit) is said, not silently reset: the log
/// windows start afresh and the operator knows why lines may be counted again.
#[test]
fn a_collector_state_that_cannot_be_parsed_is_said_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let socket = fakes::docker(dir.path(), fakes::Docker::default());
    let config = config(dir.path(), "", &socket);
    run(dir.path(), &config);
    std::fs::write(state_file(dir.path()), b"{\"previous_capture\": ").unwrap();
    let out = patrol(&["run", "--config", config.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("collector.json: not a collector state"),
        "{stderr}"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_file(dir.path())).unwrap()).unwrap();
    assert!(state.is_object(), "a fresh state is saved");
}
