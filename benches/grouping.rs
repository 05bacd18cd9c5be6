//! How long the report of a big fleet is: the benchmark fleet (benches/common/fleet-scenario.toml)
//! at 100 and 1,000 nodes, simulated and reported by the release binary. Prints the numbered
//! findings and the bytes of the section, and fails when the section has more than 12 numbered
//! findings or 8 KB (issue 16's bound): five conditions, of which three are problems, are a
//! handful of findings whatever the fleet's size. Run: `cargo bench --bench grouping`
//! (`PATROL_BENCH_NODES=100` for one size).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("patrol {args:?}: {e}"));
    assert!(
        out.status.success(),
        "patrol {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn size(nodes: u32) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let scenario = dir.path().join("fleet.toml");
    std::fs::write(&scenario, common::fleet_scenario(nodes)).unwrap_or_else(|e| panic!("{e}"));
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (archive, out) = (dir.path().join("archive"), dir.path().join("out"));
    run(&["simulate", &path(&scenario), "--out", &path(&archive)]);
    let t = Instant::now();
    let printed = run(&["report", "--archive", &path(&archive), "--out", &path(&out)]);
    let took = t.elapsed();
    let section = std::fs::read_to_string(printed.trim()).unwrap_or_else(|e| panic!("{e}"));
    let numbered = section
        .lines()
        .filter(|l| {
            l.split_once(". **[")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .count();
    println!(
        "{nodes} nodes: {numbered} numbered findings, {:.1} KB section (report took {:.1} s)",
        section.len() as f64 / 1000.0,
        took.as_secs_f64()
    );
    (numbered, section.len())
}

fn main() {
    // `cargo test --benches` runs bench targets without --bench: the ordinary test run holds the
    // bound at 20 nodes (tests/grouping.rs); the big fleets are for `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let sizes: Vec<u32> = match std::env::var("PATROL_BENCH_NODES") {
        Ok(n) => n.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => vec![100, 1000],
    };
    for nodes in sizes {
        let (numbered, bytes) = size(nodes);
        assert!(
            numbered <= 12 && bytes <= 8_000,
            "{nodes} nodes: {numbered} numbered findings, {bytes} bytes (bound: 12, 8,000)"
        );
    }
}
