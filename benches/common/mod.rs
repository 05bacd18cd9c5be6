//! Helpers the benchmarks share: medians, the process's peak memory, and the simulated fleet.
//!
//! Each bench target compiles this module on its own and uses only some of it.
#![allow(dead_code)]

use std::time::Duration;

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The process's peak resident memory so far, in MB (VmHWM).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A day of 15-minute captures of `nodes` nodes with 40 containers each (the brief's fleet shape).
pub fn fleet_scenario(nodes: u32) -> String {
    format!(
        r#"
[scenario]
fleet = "bench"
seed = 7
start = "2026-03-01T00:00:00Z"
end = "2026-03-01T23:45:00Z"
interval = "15m"
jitter = "30s"

[[node_template]]
prefix = "node"
count = {nodes}
extra_containers = 33
[node_template.node]
name = "template"
role = "processing"
[node_template.node.host]
mem_total = "64GB"
mem_available = {{ start = "30GB", noise = "500MB" }}
cpu_steal_pct = {{ start = 0.5, noise = 0.4, min = 0 }}
disks = [{{ mount = "/", size = "1TB", used = {{ start = "600GB", rate = "+0.2GB/h" }} }}]
[node_template.node.docker]
compose_version = "v2.32.4"
[[node_template.node.gpu]]
name = "gpu"
util_pct = {{ start = 20, noise = 15, min = 0 }}
mem_used_pct = 60
temp_c = {{ start = 40, noise = 3 }}
[[node_template.node.container]]
name = "worker"
image = "worker"
tag = "c1"
restart_policy = "unless-stopped"
mem = {{ start = "300MB", noise = "5MB", oscillate = {{ amplitude = "40MB", period = "3h" }} }}
cpu = {{ start = 0.3, noise = 0.1, min = 0 }}
size_rw = "50MB"
[[node_template.node.container]]
name = "leaky"
restart_policy = "unless-stopped"
image = "leaky"
tag = "c1"
mem = {{ start = "100MB", rate = "+20MB/h", noise = "1MB" }}
[[node_template.node.container]]
name = "inference"
restart_policy = "unless-stopped"
image = "inference"
tag = "c2"
mem = "6GB"
[[node_template.node.container]]
name = "db"
restart_policy = "unless-stopped"
image = "postgres"
tag = "16"
mem = {{ start = "1GB", noise = "10MB" }}
size_rw = "2GB"
[[node_template.node.container]]
name = "prometheus"
restart_policy = "unless-stopped"
image = "prometheus"
tag = "v2"
mem = {{ start = "700MB", noise = "2MB", oscillate = {{ amplitude = "100MB", period = "2h", shape = "sawtooth" }} }}
[[node_template.node.container]]
name = "cadvisor"
restart_policy = "unless-stopped"
image = "cadvisor"
tag = "v1"
mem = {{ start = "150MB", noise = "2MB" }}
[[node_template.node.container]]
name = "exporter"
restart_policy = "unless-stopped"
image = "exporter"
tag = "v1"
mem = "20MB"
"#
    )
}
