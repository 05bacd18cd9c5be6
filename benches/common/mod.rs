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
    include_str!("fleet-scenario.toml").replace("{nodes}", &nodes.to_string())
}
