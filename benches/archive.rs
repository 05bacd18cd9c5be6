//! Archive benchmark (`cargo bench --bench archive`): the two backends side by side on a day of
//! 15-minute captures of a simulated fleet (default 100 nodes × 40 containers, 9,600 snapshots;
//! `PATROL_BENCH_ARCHIVE_NODES` changes it).
//!
//! Measured per backend: writing each capture round (`write_all`, one statement per round in
//! PostgreSQL), listing the archive, loading the newest round, and loading the whole 24-hour
//! window a `patrol run` or `patrol report` reads (medians of 5). The PostgreSQL side runs when
//! `PATROL_BENCH_ARCHIVE_URL` (else the test bed's `PATROL_TEST_ARCHIVE_URL`) is set, with the
//! password in PGPASSWORD; it works in the schema `bench_archive` and empties it afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{median, peak_rss_mb};
use patrol::model::Snapshot;
use patrol::store::{Archive, ArchiveMeta, PgTarget, group_rounds};

struct Timings {
    name: String,
    write_round: Duration,
    list: Duration,
    newest_round: Duration,
    window: Duration,
    bytes: u64,
}

fn measure(archive: &Archive, name: &str, rounds: &[Vec<Snapshot>]) -> Timings {
    archive
        .clear_captures()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    archive
        .write_meta(&ArchiveMeta {
            fleet: "bench".into(),
            timezone: "UTC".into(),
            interval_s: Some(900),
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut writes = Vec::new();
    for round in rounds {
        let t = Instant::now();
        archive
            .write_all(round)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        writes.push(t.elapsed());
    }
    let mut lists = Vec::new();
    let mut newest = Vec::new();
    let mut windows = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let entries = archive
            .list(None, None, None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        lists.push(t.elapsed());
        bytes = entries.iter().map(|e| e.stored_bytes()).sum();
        let last = entries.last().map(|e| e.captured_at).unwrap_or_default();

        let t = Instant::now();
        let round = archive
            .list(Some(last - chrono::Duration::minutes(5)), Some(last), None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (snaps, skipped) = archive.load_entries(&round);
        assert!(skipped.is_empty() && !snaps.is_empty(), "{name}");
        newest.push(t.elapsed());

        let t = Instant::now();
        let window = archive
            .list(Some(last - chrono::Duration::hours(24)), Some(last), None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (snaps, skipped) = archive.load_entries(&window);
        assert!(skipped.is_empty(), "{name}");
        assert_eq!(
            snaps.len(),
            rounds.iter().map(Vec::len).sum::<usize>(),
            "{name}"
        );
        windows.push(t.elapsed());
    }
    Timings {
        name: name.into(),
        write_round: median(writes),
        list: median(lists),
        newest_round: median(newest),
        window: median(windows),
        bytes,
    }
}

fn main() {
    // `cargo test --benches` runs bench targets without --bench: nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let nodes: u32 = std::env::var("PATROL_BENCH_ARCHIVE_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let scenario = patrol::simulate::parse(Path::new("bench.toml"), &common::fleet_scenario(nodes))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut all = Vec::new();
    patrol::simulate::generate_each(&scenario, |s| all.push(s)).unwrap_or_else(|e| panic!("{e}"));
    all.sort_by(|a, b| {
        a.captured_at
            .cmp(&b.captured_at)
            .then_with(|| a.node.cmp(&b.node))
    });
    let count = all.len();
    let rounds = group_rounds(all, |s| s.node.as_str(), |s| s.captured_at);
    println!("{nodes} nodes, {} rounds, {count} snapshots", rounds.len());

    let dir = Path::new("target/bench-archive/files");
    let mut results = vec![measure(&Archive::open(dir), "files", &rounds)];
    let url = std::env::var("PATROL_BENCH_ARCHIVE_URL")
        .or_else(|_| std::env::var("PATROL_TEST_ARCHIVE_URL"))
        .ok();
    match url {
        Some(url) => {
            let mut target = PgTarget::parse(&url).unwrap_or_else(|e| panic!("{e}"));
            target.schema = "bench_archive".into();
            target.fleet = Some("bench".into());
            let password = std::env::var("PGPASSWORD").ok();
            let archive = Archive::connect(&target, password.as_deref(), None)
                .unwrap_or_else(|e| panic!("{e}"));
            results.push(measure(&archive, "postgres", &rounds));
            archive
                .clear_captures()
                .unwrap_or_else(|e| panic!("postgres: {e}"));
        }
        None => println!("postgres: skipped (set PATROL_BENCH_ARCHIVE_URL and PGPASSWORD)"),
    }
    println!(
        "{:<9} {:>12} {:>10} {:>13} {:>12} {:>9}",
        "backend", "write/round", "list", "newest round", "24h window", "size"
    );
    for r in &results {
        println!(
            "{:<9} {:>12.1?} {:>10.1?} {:>13.1?} {:>12.1?} {:>7.0}MB",
            r.name,
            r.write_round,
            r.list,
            r.newest_round,
            r.window,
            r.bytes as f64 / 1e6
        );
    }
    if let [files, pg] = results.as_slice() {
        let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64().max(1e-9);
        println!(
            "postgres / files: write {:.2}×, list {:.2}×, newest round {:.2}×, window {:.2}×",
            ratio(files.write_round, pg.write_round),
            ratio(files.list, pg.list),
            ratio(files.newest_round, pg.newest_round),
            ratio(files.window, pg.window)
        );
    }
    println!("peak RSS {:.0} MB", peak_rss_mb());
}
