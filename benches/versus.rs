//! patrol against Prometheus (`scripts/bench-versus-prometheus`): the rules that answer the same
//! questions as three PromQL queries, timed over the same numbers.
//!
//! Prometheus answers "how fast does each container's memory grow" with `deriv(x[6h])`, "when
//! does it reach its limit" with `predict_linear(x[6h], 86400)` and "how wide is its band" with
//! `max_over_time(x[24h]) - min_over_time(x[24h])`; patrol answers them with its growth-rate,
//! projection and oscillation rules. A comparison is only worth something when both sides read
//! identical numbers, so the synthetic series are generated here and nowhere else: this target
//! writes them as OpenMetrics text for promtool (`--write-openmetrics PATH`) and builds patrol's
//! window from the very same values.
//!
//! The series: `--nodes N` (default 1,000) nodes × 40 containers, 96 samples at 15 minutes
//! (2026-03-01 00:00 to 23:45 UTC), deterministic (no clock, no seed from outside). Their
//! shapes: a slow creep on every node and a fast leak on every tenth, a sine band, a sawtooth,
//! and flat noisy containers of assorted sizes, each with a memory limit.
//!
//! Flags (after `cargo bench --bench versus --`): `--write-openmetrics PATH` writes the series
//! and stops; `--prometheus PATH` reads the medians the script measured (`key<TAB>query<TAB>
//! seconds` per line) and prints them beside patrol's, with the ratios. Each rule is timed alone
//! (a library holding just it), median of 5; so is the whole library over the same window.
//! Under `cargo test --benches` (no `--bench` argument) it does a tiny quick run only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use chrono::{DateTime, Utc};
use common::{median, peak_rss_mb};
use patrol::history::Window;
use patrol::model::{Container, Snapshot};
use patrol::rules::Library;

const CONTAINERS: u32 = 40;
const SAMPLES: i64 = 96;
const STEP_S: i64 = 900;
/// 2026-03-01T00:00:00Z: the first sample.
const START_S: i64 = 1_772_323_200;
const METRIC: &str = "container_memory_usage_bytes";
const MB: f64 = 1e6;

/// Rules the library lacks in the query's exact form: a projection of container memory to its
/// limit with `predict_linear`'s window and horizon, and the library's sawtooth rule over
/// `max_over_time - min_over_time`'s 24 h instead of its own 4 h.
const EXTRA_RULES: &str = r#"
[[rule]]
id = "container-memory-limit-projection"
kind = "projection"
family = "container-memory"
severity = "warning"
description = "A container's memory reaches its limit within a day at the rate of the last six hours."
select = { entity = "container:*", metric = "mem_usage_bytes" }
params = { to = "mem_limit", within = "24h", window = "6h", min_span = "1h", min_samples = 4, min_r2 = 0.8 }
title = "{{ node }} {{ subject }} memory {{ value }}, rising {{ rate }}: {{ projection }}"
recommendation = "Find what it keeps before the kernel kills it at its limit."

[[rule]]
id = "container-memory-sawtooth-24h"
kind = "oscillation"
family = "container-memory"
across_nodes = "baseline"
severity = "info"
description = "container-memory-sawtooth over 24 h, the window of the PromQL it is compared with."
select = { entity = "container:*", metric = "mem_usage_bytes" }
params = { min_range = "150MB", min_move = "100MB", min_swings = 2, window = "24h", load = "cpu_cores" }
title = "{{ node }} {{ subject }} memory cycles in a {{ low }}-{{ high }} band ({{ range }} peak-to-trough)"
recommendation = "Treat the band as its baseline: investigate if the peak leaves it without dropping back."
"#;

/// Each PromQL query (by the key the script writes) and the patrol rules that answer it.
const PAIRS: &[(&str, &str, &[&str])] = &[
    (
        "deriv",
        "deriv(x[6h])",
        &["container-memory-leak", "container-memory-creep"],
    ),
    (
        "predict_linear",
        "predict_linear(x[6h], 86400)",
        &["container-memory-limit-projection"],
    ),
    (
        "range",
        "max_over_time(x[24h]) - min_over_time(x[24h])",
        &["container-memory-sawtooth", "container-memory-sawtooth-24h"],
    ),
];

/// How one container's memory moves over the day.
struct Shape {
    name: String,
    image: &'static str,
    base: f64,
    rate_per_h: f64,
    noise: f64,
    /// Half the peak-to-trough of a periodic band, and its period in hours.
    amp: f64,
    period_h: f64,
    sawtooth: bool,
}

fn shape(node: u32, c: u32) -> Shape {
    let flat = |name: String, image, base, noise| Shape {
        name,
        image,
        base,
        rate_per_h: 0.0,
        noise,
        amp: 0.0,
        period_h: 1.0,
        sawtooth: false,
    };
    match c {
        0 => Shape {
            amp: 40.0 * MB,
            period_h: 3.0,
            ..flat("worker".into(), "worker", 300.0 * MB, 5.0 * MB)
        },
        1 => Shape {
            // A creep everywhere, a leak fast enough for the leak rule on every tenth node.
            rate_per_h: if node.is_multiple_of(10) { 250.0 } else { 20.0 } * MB,
            ..flat("leaky".into(), "leaky", 100.0 * MB, MB)
        },
        2 => flat("inference".into(), "inference", 6e9, MB),
        3 => flat("db".into(), "postgres", 1e9, 10.0 * MB),
        4 => Shape {
            amp: 100.0 * MB,
            period_h: 2.0,
            sawtooth: true,
            ..flat("prometheus".into(), "prometheus", 700.0 * MB, 2.0 * MB)
        },
        5 => flat("cadvisor".into(), "cadvisor", 150.0 * MB, 2.0 * MB),
        6 => flat("exporter".into(), "exporter", 20.0 * MB, 0.0),
        _ => {
            let base = (50 + mix((u64::from(node) << 8) | u64::from(c)) % 400) as f64 * MB;
            flat(format!("extra-{c:02}"), "extra", base, base / 100.0)
        }
    }
}

/// The memory limit each container runs with: room for its band, and for the leaks to reach
/// within the day.
fn limit(s: &Shape) -> u64 {
    if s.rate_per_h > 0.0 {
        8_000_000_000
    } else {
        (2.0 * (s.base + s.amp) + 256.0 * MB) as u64
    }
}

/// splitmix64: a fixed function of its input, so every run (and both sides) see the same noise.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform in [-1, 1), from the container and the sample.
fn noise(node: u32, c: u32, i: i64, salt: u64) -> f64 {
    let h = mix((u64::from(node) << 40) ^ (u64::from(c) << 24) ^ ((i as u64) << 4) ^ salt);
    (h >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Memory of container `c` of `node` at sample `i`, in whole bytes: the one value both sides read.
fn mem(s: &Shape, node: u32, c: u32, i: i64) -> u64 {
    let hours = (i * STEP_S) as f64 / 3600.0;
    let band = if s.amp == 0.0 {
        0.0
    } else if s.sawtooth {
        let phase = (hours / s.period_h).fract();
        s.amp * (2.0 * phase - 1.0)
    } else {
        s.amp * (std::f64::consts::TAU * hours / s.period_h).sin()
    };
    let v = s.base + s.rate_per_h * hours + band + s.noise * noise(node, c, i, 1);
    v.max(0.0).round() as u64
}

fn cpu(node: u32, c: u32, i: i64) -> f64 {
    (0.2 + 0.05 * noise(node, c, i, 2)).max(0.0)
}

fn node_name(node: u32) -> String {
    format!("node-{node:04}")
}

fn at(i: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(START_S + i * STEP_S, 0).unwrap_or_default()
}

/// The containers of a node at the first sample; later captures change only their readings.
fn containers(node: u32) -> Vec<(Shape, Container)> {
    (0..CONTAINERS)
        .map(|c| {
            let s = shape(node, c);
            let json = serde_json::json!({
                "name": s.name,
                "image": s.image,
                "tag": "v1",
                "state": "running",
                "health": "none",
                "restart_count": 0,
                "restart_policy": "unless-stopped",
                "started_at": "2026-02-27T00:00:00Z",
                "mem_limit_bytes": limit(&s),
            });
            let container: Container =
                serde_json::from_value(json).unwrap_or_else(|e| panic!("container: {e}"));
            (s, container)
        })
        .collect()
}

/// The window patrol's rules read: every node's 96 captures pushed in time order.
fn window(nodes: u32) -> Window {
    let templates: Vec<Vec<(Shape, Container)>> = (0..nodes).map(containers).collect();
    let mut window = Window::new(chrono::Duration::hours(24));
    for i in 0..SAMPLES {
        for (node, template) in (0..nodes).zip(&templates) {
            let mut snap = Snapshot::new("versus", &node_name(node), at(i));
            snap.role = Some("processing".into());
            snap.interval_s = Some(STEP_S as u64);
            let cs = (0..CONTAINERS)
                .zip(template)
                .map(|(c, (s, t))| {
                    let mut t = t.clone();
                    t.mem_usage_bytes = Some(mem(s, node, c, i));
                    t.cpu_cores = Some(cpu(node, c, i));
                    t
                })
                .collect();
            snap.containers = Some(cs);
            window.push(snap);
        }
    }
    window
}

/// The same numbers as OpenMetrics text: one gauge family, each series' samples in time order.
fn openmetrics(nodes: u32) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(nodes as usize * CONTAINERS as usize * 96 * 90);
    let _ = writeln!(out, "# TYPE {METRIC} gauge");
    for node in 0..nodes {
        let name = node_name(node);
        for c in 0..CONTAINERS {
            let s = shape(node, c);
            for i in 0..SAMPLES {
                let _ = writeln!(
                    out,
                    "{METRIC}{{node=\"{name}\",container=\"{}\"}} {} {}",
                    s.name,
                    mem(&s, node, c, i),
                    START_S + i * STEP_S
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn builtin() -> Library {
    Library::load_all(&[]).unwrap_or_else(|e| panic!("rules: {e}"))
}

/// A library holding just rule `id`, from the built-in library or the extra rules above.
fn only(id: &str) -> Library {
    let mut lib = builtin();
    if lib.get(id).is_none() {
        lib = Library::from_sources(&[(PathBuf::from("benches/versus.rs"), EXTRA_RULES.into())])
            .unwrap_or_else(|e| panic!("extra rules: {e}"));
    }
    lib.rules.retain(|r| r.id == id);
    assert_eq!(lib.rules.len(), 1, "no rule {id}");
    lib
}

/// Median of `runs` evaluations, and the findings of the last.
fn time(lib: &Library, window: &Window, runs: usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut findings = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let ev = lib.evaluate(window, chrono_tz::UTC);
        times.push(t.elapsed());
        findings = ev.findings.len();
    }
    (median(times), findings)
}

/// The script's medians: key → (query as sent, seconds).
fn prometheus_medians(path: &Path) -> BTreeMap<String, (String, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let mut f = line.split('\t');
        match (
            f.next(),
            f.next(),
            f.next().and_then(|s| s.trim().parse::<f64>().ok()),
        ) {
            (Some(key), Some(query), Some(secs)) => {
                out.insert(key.to_string(), (query.to_string(), secs));
            }
            _ => panic!(
                "{}:{}: expected key<TAB>query<TAB>seconds",
                path.display(),
                n + 1
            ),
        }
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn compare(nodes: u32, runs: usize, prometheus: Option<&Path>) {
    let t = Instant::now();
    let window = window(nodes);
    let built = t.elapsed();
    let series: usize = window
        .nodes()
        .map(|n| n.series_of("mem_usage_bytes").len())
        .sum();
    assert_eq!(
        series,
        (nodes * CONTAINERS) as usize,
        "container memory series in the window"
    );
    let prom = prometheus.map(prometheus_medians).unwrap_or_default();
    println!(
        "{nodes} nodes × {CONTAINERS} containers: {series} memory series × {SAMPLES} samples at 15 min; window built in {built:?}; medians of {runs}"
    );
    println!();
    println!(
        "| PromQL over HTTP (Prometheus) | median | patrol rule alone (same series) | median | findings | ratio |"
    );
    println!("|---|---:|---|---:|---:|---:|");
    for (key, query, rules) in PAIRS {
        let p = prom.get(*key);
        for id in *rules {
            let (d, findings) = time(&only(id), &window, runs);
            let (q, pm, ratio) = match p {
                Some((q, secs)) => (
                    format!("`{q}`"),
                    format!("{:.0} ms", secs * 1e3),
                    format!("{:.1}×", secs / d.as_secs_f64()),
                ),
                None => (format!("`{query}`"), "–".into(), "–".into()),
            };
            println!("| {q} | {pm} | {id} | {} | {findings} | {ratio} |", ms(d));
        }
    }
    let lib = builtin();
    let (d, findings) = time(&lib, &window, runs);
    println!(
        "| | | whole library ({} rules) | {} | {findings} | |",
        lib.rules.len(),
        ms(d)
    );
    println!();
    println!("peak RSS {:.0} MB", peak_rss_mb());
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` runs bench targets with --bench absent; do the quick part only.
    let full = args.iter().any(|a| a == "--bench");
    let nodes = arg(&args, "--nodes")
        .map(|n| {
            n.parse::<u32>()
                .unwrap_or_else(|e| panic!("--nodes {n}: {e}"))
        })
        .unwrap_or(if full { 1000 } else { 2 });
    if let Some(path) = arg(&args, "--write-openmetrics") {
        let text = openmetrics(nodes);
        patrol::fsutil::write_atomic(
            Path::new(&path),
            text.as_bytes(),
            patrol::fsutil::Mode::Public,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{path}: {} series × {SAMPLES} samples ({} MB)",
            nodes * CONTAINERS,
            text.len() / 1_000_000
        );
        return;
    }
    if !full {
        quick(nodes);
        return;
    }
    let prometheus = arg(&args, "--prometheus").map(PathBuf::from);
    compare(nodes, 5, prometheus.as_deref());
}

/// The test-suite run: both sides of a tiny fleet agree, and every rule of the table loads and runs.
fn quick(nodes: u32) {
    let text = openmetrics(nodes);
    let samples = text.lines().filter(|l| l.starts_with(METRIC)).count();
    assert_eq!(samples, (nodes * CONTAINERS) as usize * SAMPLES as usize);
    let window = window(nodes);
    let leaky = window
        .node(&node_name(0))
        .and_then(|n| n.series("container:leaky", "mem_usage_bytes"))
        .map(|s| s.points.iter().filter_map(|p| p.value).collect::<Vec<_>>())
        .unwrap_or_default();
    let s = shape(0, 1);
    let expected: Vec<f64> = (0..SAMPLES).map(|i| mem(&s, 0, 1, i) as f64).collect();
    assert_eq!(
        leaky, expected,
        "the window holds the values written for promtool"
    );
    compare(nodes, 1, None);
}
