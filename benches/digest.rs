//! Digest benchmark (`cargo bench --bench digest`): the weekly digest of a simulated fleet of
//! 300 nodes × 40 containers with a week of 15-minute captures (201,600 snapshots).
//!
//! The archive is simulated once into target/bench-digest/ (reused by later runs; delete it to
//! regenerate), then `digest::build` runs once from the snapshots (building the daily rollups)
//! and 3 times from the rollups; prints the first, the median of the others and the process's
//! peak memory. `PATROL_BENCH_DIGEST_NODES` changes the fleet size.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{median, peak_rss_mb};
use patrol::digest::{Week, build};
use patrol::ledger::Ledger;
use patrol::store::{Archive, ArchiveMeta};

fn scenario(nodes: u32) -> String {
    format!(
        r#"
[scenario]
fleet = "bench"
timezone = "UTC"
seed = 11
start = "2026-03-02T00:00:00Z"
end = "2026-03-08T23:45:00Z"
interval = "15m"
jitter = "30s"

[[node_template]]
prefix = "node"
count = {nodes}
extra_containers = 35
[node_template.node]
name = "template"
role = "processing"
[node_template.node.host]
mem_total = "64GB"
mem_available = {{ start = "30GB", noise = "500MB" }}
swap_used = {{ start = "0B", rate = "+1MB/h" }}
cpu_steal_pct = {{ start = 0.5, noise = 0.4, min = 0 }}
disks = [{{ mount = "/", size = "1TB", used = {{ start = "600GB", rate = "+0.2GB/h" }} }}]
[[node_template.node.gpu]]
name = "gpu"
util_pct = {{ start = 20, noise = 15, min = 0 }}
mem_used_pct = 60
temp_c = {{ start = 40, noise = 3 }}
[[node_template.node.container]]
name = "worker"
image = "worker"
restart_policy = "unless-stopped"
mem = {{ start = "300MB", noise = "5MB", oscillate = {{ amplitude = "40MB", period = "3h" }} }}
cpu = {{ start = 0.3, noise = 0.1, min = 0 }}
[[node_template.node.container]]
name = "leaky"
image = "leaky"
restart_policy = "unless-stopped"
mem = {{ start = "100MB", rate = "+20MB/h", noise = "1MB" }}
[[node_template.node.container]]
name = "db"
image = "postgres"
restart_policy = "unless-stopped"
mem = {{ start = "1GB", noise = "10MB" }}
[[node_template.node.container]]
name = "prometheus"
image = "prometheus"
restart_policy = "unless-stopped"
mem = {{ start = "700MB", noise = "2MB", oscillate = {{ amplitude = "100MB", period = "2h", shape = "sawtooth" }} }}
[[node_template.node.container]]
name = "exporter"
image = "exporter"
restart_policy = "unless-stopped"
mem = "20MB"
"#
    )
}

fn main() {
    // `cargo test --benches` runs bench targets without --bench: nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let nodes: u32 = std::env::var("PATROL_BENCH_DIGEST_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let dir = Path::new("target/bench-digest").join(format!("{nodes}"));
    let archive = Archive::open(&dir);
    if archive.read_meta().ok().flatten().is_none() {
        let t = Instant::now();
        let scenario = patrol::simulate::parse(Path::new("bench.toml"), &scenario(nodes))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut n = 0usize;
        patrol::simulate::generate_each(&scenario, |s| {
            archive.write(&s).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        })
        .unwrap_or_else(|e| panic!("{e}"));
        archive
            .write_meta(&ArchiveMeta {
                fleet: "bench".into(),
                timezone: "UTC".into(),
                interval_s: Some(900),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        println!(
            "simulated {n} snapshots into {} in {:?}",
            dir.display(),
            t.elapsed()
        );
    }
    let week = Week::parse("2026-W10", chrono_tz::UTC).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::default();
    // No score-card rule: nodes are scored with the card's default cleanup job.
    let library = patrol::rules::Library::from_sources(&[]).unwrap_or_else(|e| panic!("{e}"));
    // Cold: no rollups yet, every node's days are built from the snapshots (and saved). Warm:
    // the digest a run-fed output gives, seven rollups per node.
    let rollup_dir = dir.join("rollups-bench");
    let _ = std::fs::remove_dir_all(&rollup_dir);
    let rollups = || {
        Some(patrol::digest::rollup::RollupDir {
            dir: rollup_dir.clone(),
            mode: patrol::fsutil::Mode::Private,
        })
    };
    let run = || {
        let t = Instant::now();
        let d = build(
            &archive,
            &ledger,
            &library,
            ("bench", chrono_tz::UTC),
            &week,
            rollups(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (t.elapsed(), d)
    };
    let (cold, _) = run();
    let mut times: Vec<Duration> = Vec::new();
    let mut shown = String::new();
    for _ in 0..3 {
        let (took, d) = run();
        times.push(took);
        shown = format!(
            "{} nodes, {} rounds, top grower {} {}",
            d.nodes.len(),
            d.rounds,
            d.growers.first().map(|g| g.node.as_str()).unwrap_or("-"),
            d.growers
                .first()
                .map(|g| g.container.as_str())
                .unwrap_or("-")
        );
    }
    times.sort();
    println!(
        "digest of {shown}: from the snapshots (rollups built) {cold:?}; from the rollups median {:?}, min {:?}, max {:?}; peak RSS {:.0} MB",
        median(times.clone()),
        times[0],
        times[2],
        peak_rss_mb()
    );
}
