//! Collectors: one module per source. Each returns its part of a snapshot or an error naming the
//! endpoint; a failing source is recorded in the snapshot and the capture goes on.

pub mod local;

use std::time::Instant;

use chrono::Utc;

use crate::model::{Snapshot, SourceStatus};

/// Captures this machine: host metrics from /proc.
pub fn capture_local(fleet: &str, node: &str, role: Option<&str>) -> Snapshot {
    let started = Instant::now();
    let mut snap = Snapshot::new(fleet, node, Utc::now());
    snap.role = role.map(str::to_string);
    let t = Instant::now();
    match local::host(std::path::Path::new("/proc")) {
        Ok(host) => {
            snap.host = Some(host);
            snap.sources
                .push(SourceStatus::ok("host", t.elapsed().as_millis() as u64));
        }
        Err(e) => snap.sources.push(SourceStatus::failed(
            "host",
            e,
            t.elapsed().as_millis() as u64,
        )),
    }
    snap.collect_duration_ms = started.elapsed().as_millis() as u64;
    snap
}
