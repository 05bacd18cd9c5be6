//! Helpers: the repository root, and running the real `patrol` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn patrol(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PATROL_LOG")
        .output()
        .expect("the patrol binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stdout of a run that must have succeeded; otherwise the test fails with its exit code,
/// stdout and stderr.
pub fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Every file under a directory, sorted (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whether expected files should be rewritten instead of compared.
pub fn blessing() -> bool {
    // Only a real value: `PATROL_BLESS=` or `PATROL_BLESS=0` must not rewrite golden files.
    std::env::var("PATROL_BLESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// An HTTP endpoint on 127.0.0.1 that answers 200 after `delay`: it keeps a capture busy. Returns
/// its port.
pub fn slow_endpoint(delay: std::time::Duration) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    port
}

/// The stdout of a capture that completed: exit 0, or 3 (degraded) when some source could not be
/// read, in which case stderr must name at least one failing source. Tests that plant a broken
/// source check the snapshot for it themselves.
pub fn captured(out: &Output) -> String {
    let stderr = text(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => assert!(
            stderr
                .lines()
                .any(|l| l.contains("patrol: degraded: node ")),
            "exit 3 without a failing source named\n{stderr}"
        ),
        code => panic!("exit {code:?}\n{}\n{stderr}", text(&out.stdout)),
    }
    text(&out.stdout)
}

/// The whole rolling report of an output directory as one text: its monthly files
/// (`improvements/YYYY-MM.md`) oldest first, after any report kept from before monthly files
/// (`improvements/earlier*.md`). Empty when nothing was written.
pub fn rolling_report(out: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(out.join("improvements"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort_by_key(|n| (!n.starts_with("earlier"), n.len(), n.clone()));
    names
        .iter()
        .map(|n| std::fs::read_to_string(out.join("improvements").join(n)).unwrap())
        .collect()
}
