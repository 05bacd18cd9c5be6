//! Small fake servers that answer as a broken or hostile remote would: a Docker engine on a unix
//! socket, Redis and Prometheus on TCP. Each is a std thread serving one request per connection,
//! so a test can drive the real binary against a fault no real service would produce on cue.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads an HTTP request's head and returns its path.
fn request_path(stream: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head);
    head.split_whitespace().nth(1).map(str::to_string)
}

fn respond(stream: &mut impl Write, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// What the fake engine does.
#[derive(Clone, Default)]
pub struct Docker {
    /// Listed, but removed before it is inspected: its inspect and stats answer 404.
    pub gone: bool,
    /// A log line the kept container wrote (the engine prefixes its timestamp).
    pub log_line: Option<String>,
    /// How long `/version` takes to answer.
    pub delay: Duration,
    /// Where the paths of the log requests are kept, for a test that checks their window.
    pub log_requests: Option<Arc<Mutex<Vec<String>>>>,
    /// Where the paths of the container listings are kept (with or without sizes).
    pub list_requests: Option<Arc<Mutex<Vec<String>>>>,
    /// After its first line, the log stream stalls this long before it ends.
    pub stall_logs: Option<Duration>,
    /// Also lists a container that exited long ago (in 2020).
    pub exited: bool,
    /// What `/events` answers (an empty stream by default).
    pub events: Events,
}

/// The fake engine's event stream.
#[derive(Clone, Default)]
pub enum Events {
    #[default]
    Empty,
    /// The kept container was OOM-killed (exit 137) and restarted, then exited with code 3,
    /// just before the `until` asked for; its events carry a label holding [`EVENT_SECRET`].
    Killed,
    /// Answers this status.
    Status(&'static str),
    /// Sends the `Killed` events, then holds the stream open this long (an engine whose clock
    /// is behind waits for `until` by its own).
    Stall(Duration),
}

/// A value a label of the kept container holds, as labels sometimes hold what the environment
/// does: it must never reach a snapshot.
pub const EVENT_SECRET: &str = "planted-label-value-7c1e";

/// A container that stopped in 2020.
pub const EXITED: &str = "pt-exited";
/// Its writable layer, as the engine reports it when asked for sizes.
pub const KEPT_SIZE_RW: u64 = 12345;

/// A container that is still there after the list.
pub const KEPT: &str = "pt-kept";
/// A container removed between the list and its inspect.
pub const GONE: &str = "pt-gone";

/// Starts a fake Docker engine on a unix socket in `dir`; returns the socket's path.
pub fn docker(dir: &Path, fake: Docker) -> PathBuf {
    let socket = dir.join("docker.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let fake = fake.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let Some(path) = request_path(&mut stream) else {
                    return;
                };
                docker_answer(&mut stream, &path, &fake);
            });
        }
    });
    socket
}

fn docker_answer(stream: &mut std::os::unix::net::UnixStream, path: &str, fake: &Docker) {
    let json = "application/json";
    let listed = |id: &str, name: &str| {
        format!(
            r#"{{"Id":"{id}","Names":["/{name}"],"Image":"patrol-bb:1","ImageID":"sha256:1","State":"running","Labels":{{}},"Ports":[]}}"#
        )
    };
    let kept_id = "1111111111111111";
    let gone_id = "2222222222222222";
    let exited_id = "3333333333333333";
    if path.starts_with("/events") {
        return events_answer(stream, path, &fake.events, kept_id);
    }
    if path.starts_with("/version") {
        std::thread::sleep(fake.delay);
        respond(
            stream,
            "200 OK",
            json,
            br#"{"Version":"27.0.0","ApiVersion":"1.46"}"#,
        );
    } else if path.starts_with("/containers/json") {
        if let Some(requests) = &fake.list_requests {
            requests.lock().unwrap().push(path.to_string());
        }
        let mut kept = listed(kept_id, KEPT);
        if path.contains("size=1") {
            kept = kept.replacen('{', &format!(r#"{{"SizeRw":{KEPT_SIZE_RW},"#), 1);
        }
        let mut items = vec![kept];
        if fake.gone {
            items.push(listed(gone_id, GONE));
        }
        if fake.exited {
            items.push(listed(exited_id, EXITED).replace(r#""running""#, r#""exited""#));
        }
        respond(
            stream,
            "200 OK",
            json,
            format!("[{}]", items.join(",")).as_bytes(),
        );
    } else if path.starts_with(&format!("/containers/{gone_id}/")) {
        respond(
            stream,
            "404 Not Found",
            json,
            format!(r#"{{"message":"No such container: {gone_id}"}}"#).as_bytes(),
        );
    } else if path.starts_with(&format!("/containers/{kept_id}/json")) {
        respond(
            stream,
            "200 OK",
            json,
            br#"{"RestartCount":0,"State":{"Status":"running","OOMKilled":false,"ExitCode":0,"StartedAt":"2026-11-22T13:00:00Z"},"HostConfig":{"Memory":0},"Config":{"Tty":false,"Cmd":["sh"]}}"#,
        );
    } else if path.starts_with(&format!("/containers/{exited_id}/json")) {
        respond(
            stream,
            "200 OK",
            json,
            br#"{"RestartCount":0,"State":{"Status":"exited","OOMKilled":false,"ExitCode":0,"StartedAt":"2020-01-01T00:00:00Z","FinishedAt":"2020-01-01T01:00:00Z"},"HostConfig":{"Memory":0},"Config":{"Tty":false,"Cmd":["sh"]}}"#,
        );
    } else if path.starts_with(&format!("/containers/{exited_id}/logs")) {
        if let Some(requests) = &fake.log_requests {
            requests.lock().unwrap().push(path.to_string());
        }
        respond(
            stream,
            "200 OK",
            "application/vnd.docker.multiplexed-stream",
            b"",
        );
    } else if path.starts_with(&format!("/containers/{kept_id}/stats")) {
        respond(
            stream,
            "200 OK",
            json,
            br#"{"memory_stats":{"usage":1000000,"stats":{}}}"#,
        );
    } else if path.starts_with(&format!("/containers/{kept_id}/logs")) {
        if let Some(requests) = &fake.log_requests {
            requests.lock().unwrap().push(path.to_string());
        }
        // Without a TTY the engine sends frames: stream, three zero bytes, big-endian length.
        let mut body = Vec::new();
        if let Some(line) = &fake.log_line {
            let payload = format!("2026-11-22T13:02:06.5Z {line}\n");
            body.extend([2u8, 0, 0, 0]);
            body.extend((payload.len() as u32).to_be_bytes());
            body.extend(payload.as_bytes());
        }
        if let Some(stall) = fake.stall_logs {
            // No length: the stream ends when the engine closes it, after the stall.
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.docker.multiplexed-stream\r\nconnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
            let _ = stream.flush();
            std::thread::sleep(stall);
            return;
        }
        respond(
            stream,
            "200 OK",
            "application/vnd.docker.multiplexed-stream",
            &body,
        );
    } else {
        respond(
            stream,
            "404 Not Found",
            json,
            br#"{"message":"page not found"}"#,
        );
    }
}

/// The answer to `/events?since=…&until=…`: events a second before `until`.
fn events_answer(
    stream: &mut std::os::unix::net::UnixStream,
    path: &str,
    events: &Events,
    id: &str,
) {
    let until = path
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("until="))
        .and_then(|u| u.split('.').next())
        .and_then(|u| u.parse::<i64>().ok())
        .unwrap_or(0);
    let at = (until - 1) * 1_000_000_000;
    let event = |action: &str, nanos: i64, code: &str| {
        format!(
            r#"{{"status":"{action}","id":"{id}","from":"patrol-bb:1","Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"image":"patrol-bb:1","name":"{KEPT}","com.example.token":"{EVENT_SECRET}"{code}}}}},"scope":"local","time":{},"timeNano":{nanos}}}"#,
            nanos / 1_000_000_000
        )
    };
    let killed = [
        event("oom", at, ""),
        event("die", at + 1, r#","exitCode":"137""#),
        event("die", at + 2, r#","exitCode":"3""#),
    ]
    .join("\n")
        + "\n";
    match events {
        Events::Empty => respond(stream, "200 OK", "application/json", b""),
        Events::Killed => respond(stream, "200 OK", "application/json", killed.as_bytes()),
        Events::Status(status) => respond(
            stream,
            status,
            "application/json",
            br#"{"message":"events are not for you"}"#,
        ),
        Events::Stall(hold) => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(killed.as_bytes());
            let _ = stream.flush();
            std::thread::sleep(*hold);
        }
    }
}

/// Starts a fake Redis that answers every command with `reply`, as is; returns its port.
pub fn redis(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {
                    let _ = stream.write_all(reply);
                }
            });
        }
    });
    port
}

/// Starts a fake Prometheus whose every instant query answers `value` (a Prometheus number as
/// text: "1e17", "NaN", "-5"); returns its base URL.
pub fn prometheus(value: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                if request_path(&mut stream).is_none() {
                    return;
                }
                let body = format!(
                    r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"instance":"fake:9100"}},"value":[1795000000,"{value}"]}}]}}}}"#
                );
                respond(&mut stream, "200 OK", "application/json", body.as_bytes());
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}
