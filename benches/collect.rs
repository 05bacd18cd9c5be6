//! Collection benchmark (`cargo bench --bench collect`): 50 HTTP endpoints that each answer
//! after 200 ms, served by a real HTTP server on 127.0.0.1 inside this process. Collecting all
//! of them should take about the slowest one, not the sum (10 s), as long as `concurrency`
//! allows; with `concurrency = 10` it takes five rounds. Prints medians of 5 runs.

mod common;

use common::median;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use patrol::config::{Config, LogSettings, NodeConfig, Source};

const ENDPOINTS: usize = 50;
const DELAY: Duration = Duration::from_millis(200);

fn serve_slowly() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf);
                std::thread::sleep(DELAY);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    port
}

fn config(port: u16, concurrency: usize) -> Config {
    let sources = (0..ENDPOINTS)
        .map(|i| Source::Http {
            name: format!("slow-{i}"),
            url: format!("http://127.0.0.1:{port}/slow/{i}"),
            timeout: Duration::from_secs(5),
            tls: Default::default(),
        })
        .collect();
    Config {
        fleet: "bench".into(),
        timezone: chrono_tz::UTC,
        archive: patrol::config::ArchiveSpec::Dir("unused".into()),
        output: "unused".into(),
        rules: Vec::new(),
        window: "24h".into(),
        report: patrol::config::ReportSettings::default(),
        telegram: None,
        retention: None,
        daemon: patrol::config::DaemonSettings::default(),
        concurrency,
        timeout: Duration::from_secs(5),
        logs: LogSettings::default(),
        redact: Vec::new(),
        nodes: vec![NodeConfig {
            name: "bench".into(),
            role: None,
            address: None,
            sources,
        }],
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { 5 } else { 1 };
    let port = serve_slowly();
    let state = patrol::sources::CollectState::default();
    for concurrency in [64, 10] {
        let cfg = config(port, concurrency);
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let (snaps, _) = patrol::sources::capture_fleet(&cfg, &state, &|_| {});
            times.push(t.elapsed());
            let answered = snaps[0]
                .endpoints
                .iter()
                .filter(|e| e.status == 200)
                .count();
            assert_eq!(answered, ENDPOINTS, "every endpoint answers");
        }
        let m = median(times);
        println!(
            "{ENDPOINTS} endpoints × {} ms, concurrency {concurrency}: median {:?} for all ({:.1}× one endpoint; the sum would be {:?})",
            DELAY.as_millis(),
            m,
            m.as_secs_f64() / DELAY.as_secs_f64(),
            DELAY * ENDPOINTS as u32
        );
    }
}
