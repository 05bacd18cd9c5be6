//! Analysis benchmark (`cargo bench`): how long the rule library takes per capture.
//!
//! 1. The demo fleet (3 nodes, 24 h window): the committed archive is replayed round by round;
//!    each round's `Library::evaluate` is timed. Prints the median, p90 and max per round.
//! 2. Simulated fleets of N nodes × 40 containers with 96 captures (24 h at 15 min): the window
//!    is built once, then the whole library is evaluated at the last capture 5 times; prints the
//!    median, the series count and the process's peak memory.
//!
//! Wall-clock times on a shared machine are noisy: read medians, and compare runs made on the
//! same machine. `PATROL_BENCH_NODES=300,1000` chooses the fleet sizes.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{median, peak_rss_mb};
use patrol::history::Window;
use patrol::rules::Library;
use patrol::store::Archive;

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn library() -> Library {
    Library::load(Path::new("rules")).unwrap_or_else(|e| panic!("rules: {e}"))
}

fn demo() {
    let lib = library();
    let archive = Archive::open("snapshots/demo");
    let entries = archive
        .list(None, None, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let (snaps, _) = archive.load_entries(&entries);
    let rounds = patrol::app::rounds(entries);
    let mut all = Vec::new();
    for _ in 0..5 {
        let mut it = snaps.iter().cloned();
        let mut window = Window::new(chrono::Duration::hours(24));
        for round in &rounds {
            for _ in 0..round.len() {
                if let Some(s) = it.next() {
                    window.push(s);
                }
            }
            let t = Instant::now();
            let ev = lib.evaluate(&window, chrono_tz::UTC);
            all.push(t.elapsed());
            std::hint::black_box(ev);
        }
    }
    println!(
        "demo fleet (3 nodes, {} rounds × 5 replays, {} rules): evaluate per round median {:?}, p90 {:?}, max {:?}",
        rounds.len(),
        lib.rules.len(),
        median(all.clone()),
        percentile(all.clone(), 0.9),
        all.iter().max().copied().unwrap_or_default()
    );
}

fn fleet(nodes: u32) {
    let lib = library();
    let scenario = patrol::simulate::parse(Path::new("bench.toml"), &common::fleet_scenario(nodes))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut window = Window::new(chrono::Duration::hours(24));
    let t = Instant::now();
    let mut captures = 0usize;
    let mut push_time = Duration::ZERO;
    patrol::simulate::generate_each(&scenario, |s| {
        let p = Instant::now();
        window.push(s);
        push_time += p.elapsed();
        captures += 1;
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let built = t.elapsed();
    let series: usize = window
        .nodes()
        .map(|n| {
            patrol::history::metrics::KNOWN_METRICS
                .iter()
                .map(|m| n.series_of(m).len())
                .sum::<usize>()
        })
        .sum();
    let mut runs = Vec::new();
    let mut findings = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let ev = lib.evaluate(&window, chrono_tz::UTC);
        runs.push(t.elapsed());
        findings = ev.findings.len();
    }
    // Where the time goes: each rule alone, slowest first.
    let mut per_rule: Vec<(Duration, String, usize)> = Vec::new();
    for rule in &lib.rules {
        let mut one = library();
        one.rules.retain(|r| r.id == rule.id);
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let ev = one.evaluate(&window, chrono_tz::UTC);
            times.push(t.elapsed());
            n = ev.findings.len();
        }
        per_rule.push((median(times), rule.id.clone(), n));
    }
    per_rule.sort_by_key(|r| std::cmp::Reverse(r.0));
    let top: Vec<String> = per_rule
        .iter()
        .take(6)
        .map(|(d, id, n)| format!("{id} {d:?} ({n} findings)"))
        .collect();
    println!("{nodes} nodes, slowest rules alone: {}", top.join("; "));
    println!(
        "{nodes} nodes × 40 containers, {captures} captures, {series} series: simulate+push {built:?} (push alone {push_time:?}, {:.1} µs per capture); whole library ({} rules) per analysis: median {:?}, min {:?}, max {:?}; {findings} findings; peak RSS {:.0} MB",
        push_time.as_secs_f64() * 1e6 / captures.max(1) as f64,
        lib.rules.len(),
        median(runs.clone()),
        runs.iter().min().copied().unwrap_or_default(),
        runs.iter().max().copied().unwrap_or_default(),
        peak_rss_mb()
    );
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent; do the quick part only.
    let full = std::env::args().any(|a| a == "--bench");
    demo();
    if !full {
        return;
    }
    let sizes = std::env::var("PATROL_BENCH_NODES").unwrap_or_else(|_| "300,1000".into());
    for n in sizes
        .split(',')
        .filter_map(|x| x.trim().parse::<u32>().ok())
    {
        fleet(n);
    }
}
