//! The saved history window: a `patrol report` that starts from the window the previous run
//! saved writes exactly what one that rebuilds the window from the snapshots writes, capture
//! round after capture round, through reboots, restarts, a node gone dark, a node that stops
//! reporting, evictions out of the window, an unreadable capture and a pruned one.

use std::path::{Path, PathBuf};

use crate::support::{files_under, patrol, succeeded, text};

const SCENARIO: &str = r#"
[scenario]
fleet = "warmcold"
timezone = "Europe/Berlin"
seed = 77
start = "2026-05-04 08:00"
end = "2026-05-04 15:00"
interval = "15m"
jitter = "0s"

[[node]]
name = "a1"
role = "app"
events = [
  { kind = "reboot", at = "2026-05-04 10:10" },
  { kind = "restart", container = "api", at = "2026-05-04 12:20" },
]
[node.host]
mem_total = "16GB"
mem_available = { start = "9GB", noise = "100MB", rate = "-200MB/h" }
disks = [{ mount = "/", size = "100GB", used = { start = "70GB", rate = "+400MB/h", noise = "20MB" } }]
[[node.container]]
name = "api"
image = "shop/api"
tag = "1.2.0"
restart_policy = "unless-stopped"
mem_limit = "2GB"
mem = { start = "500MB", noise = "5MB", rate = "+30MB/h", reboot_to = "480MB" }
cpu = { start = 0.3, noise = 0.05, min = 0 }
log = [{ message = "request failed: upstream timeout after {ms} ms", level = "ERROR", every = "5m", fields = { ms = "3000" } }]

[[node]]
name = "a2"
role = "app"
events = [
  { kind = "dark", at = "2026-05-04 11:00", until = "2026-05-04 12:30", error = "ssh: connect to host a2 port 22: No route to host" },
]
[node.host]
mem_total = "16GB"
mem_available = { start = "9GB", noise = "100MB" }
disks = [{ mount = "/", size = "100GB", used = { start = "40GB", noise = "20MB" } }]
[[node.container]]
name = "api"
image = "shop/api"
tag = "1.3.0"
restart_policy = "unless-stopped"
mem_limit = "2GB"
mem = { start = "520MB", noise = "5MB" }
cpu = { start = 0.3, noise = 0.05, min = 0 }

[[node]]
name = "a3"
role = "app"
events = [
  { kind = "dark", at = "2026-05-04 13:00", until = "2026-05-04 15:00", error = "ssh: connect to host a3 port 22: Connection timed out" },
]
[node.host]
mem_total = "8GB"
mem_available = { start = "2GB", noise = "50MB" }
[[node.container]]
name = "api"
image = "shop/api"
tag = "1.2.0"
mem = { start = "510MB", noise = "5MB" }
cpu = { start = 0.3, noise = 0.05, min = 0 }
"#;

/// The archive's capture files, grouped by the round they belong to (oldest first).
fn rounds(archive: &Path) -> Vec<Vec<PathBuf>> {
    let mut files: Vec<(String, PathBuf)> = files_under(archive)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, p)
        })
        .collect();
    files.sort();
    // Nodes of one round are captured seconds apart, within the same ten minutes.
    let mut out: Vec<Vec<PathBuf>> = Vec::new();
    let mut last_key = String::new();
    for (name, path) in files {
        let key = name[..12].to_string(); // 20260504T060 (to the ten minutes)
        if out.is_empty() || key != last_key {
            out.push(Vec::new());
        }
        last_key = key;
        out.last_mut().unwrap().push(path);
    }
    out
}

fn copy_into(file: &Path, from: &Path, to: &Path) {
    let rel = file.strip_prefix(from).unwrap();
    let dest = to.join(rel);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(file, dest).unwrap();
}

/// Every output file but the run lock, by path relative to `dir`, with its bytes.
fn outputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("/.state/"))
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_report_from_the_saved_window_writes_what_a_rebuilt_one_writes_round_after_round() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("warmcold.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let full = tmp.path().join("full");
    succeeded(&patrol(
        &[
            "simulate",
            scenario.to_str().unwrap(),
            "--out",
            full.to_str().unwrap(),
        ],
        tmp.path(),
    ));
    let archive = tmp.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::copy(full.join("fleet.toml"), archive.join("fleet.toml")).unwrap();
    let (warm, cold) = (tmp.path().join("warm"), tmp.path().join("cold"));
    let rounds = rounds(&full);
    assert!(rounds.len() >= 25, "{} rounds", rounds.len());
    let mut warm_starts = 0;
    for (i, round) in rounds.iter().enumerate() {
        for (k, f) in round.iter().enumerate() {
            // One capture arrives two rounds late (out of order).
            if !(i == 19 && k == 1) {
                copy_into(f, &full, &archive);
            }
        }
        match i {
            // A capture that cannot be read: skipped alike by both.
            12 => std::fs::write(
                archive.join(round[0].strip_prefix(&full).unwrap()),
                b"not zstd",
            )
            .unwrap(),
            // One pruned from the past: the saved window no longer matches the archive.
            18 => std::fs::remove_file(archive.join(rounds[16][1].strip_prefix(&full).unwrap()))
                .unwrap(),
            21 => copy_into(&rounds[19][1], &full, &archive),
            _ => {}
        }
        let args = |out: &Path, rebuild: bool| {
            let mut a = vec![
                "report".to_string(),
                "--archive".into(),
                archive.to_string_lossy().into_owned(),
                "--out".into(),
                out.to_string_lossy().into_owned(),
                "--window".into(),
                "2h".into(),
                "-v".into(),
            ];
            if rebuild {
                a.push("--rebuild-window".into());
            }
            a
        };
        let run = |out: &Path, rebuild: bool| {
            let a = args(out, rebuild);
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            patrol(&refs, tmp.path())
        };
        let w = run(&warm, false);
        let c = run(&cold, true);
        assert_eq!(
            w.status.code(),
            c.status.code(),
            "round {i}: exit codes differ"
        );
        assert_eq!(
            text(&w.stdout).replace(warm.to_str().unwrap(), "OUT"),
            text(&c.stdout).replace(cold.to_str().unwrap(), "OUT"),
            "round {i}: stdout differs"
        );
        if !text(&w.stderr).contains("rebuilding the history window") && i > 0 {
            warm_starts += 1;
        }
        let (wo, co) = (outputs(&warm), outputs(&cold));
        assert_eq!(
            wo.iter().map(|f| &f.0).collect::<Vec<_>>(),
            co.iter().map(|f| &f.0).collect::<Vec<_>>(),
            "round {i}: the files written differ"
        );
        for ((path, wb), (_, cb)) in wo.iter().zip(&co) {
            assert!(
                wb == cb,
                "round {i}: {} differs between the saved and the rebuilt window",
                path.display()
            );
        }
        assert!(
            warm.join("window.bin").is_file(),
            "round {i}: no window saved"
        );
    }
    // Most runs started from the saved window; the tampered rounds rebuilt it.
    assert!(
        warm_starts >= rounds.len() - 4,
        "only {warm_starts} of {} runs used the saved window",
        rounds.len()
    );
}

#[test]
fn a_corrupt_or_foreign_saved_window_is_rebuilt_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let demo = crate::support::root().join("snapshots/demo");
    let report = |extra: &[&str]| {
        let mut a = vec![
            "report",
            "--archive",
            demo.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-v",
        ];
        a.extend_from_slice(extra);
        patrol(&a, tmp.path())
    };
    succeeded(&report(&[]));
    let saved = out.join("window.bin");
    let good = std::fs::read(&saved).unwrap();
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("not a window", b"hello".to_vec()),
        ("empty", Vec::new()),
    ] {
        std::fs::write(&saved, &bytes).unwrap();
        let r = report(&[]);
        succeeded(&r);
        assert!(
            text(&r.stderr).contains("rebuilding the history window"),
            "{what}: no reason given: {}",
            text(&r.stderr)
        );
        assert_eq!(
            std::fs::read(&saved).unwrap(),
            good,
            "{what}: the rebuilt window is not the one saved before"
        );
    }
    // Another window span: rebuilt, and said. (A shorter one than the library's rules ask for,
    // 26 h for the disk projection, would still be 26 h.)
    let r = report(&["--window", "36h"]);
    succeeded(&r);
    assert!(
        text(&r.stderr).contains("36h") || text(&r.stderr).contains("129600 s"),
        "{}",
        text(&r.stderr)
    );
}
