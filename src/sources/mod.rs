//! Collectors: one module per source. Each returns its part of a snapshot or an error naming the
//! endpoint; a failing source is recorded in the snapshot and the capture goes on.

pub mod docker;
pub mod local;

use std::time::Instant;

use chrono::Utc;

use crate::model::{Snapshot, SourceStatus};

/// How long one Docker engine may take to answer everything.
const DOCKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The engine socket to use: the configured one, else `$DOCKER_HOST` (unix:// only), else the
/// standard socket when it exists.
pub fn docker_socket(configured: Option<&std::path::Path>) -> Option<std::path::PathBuf> {
    if let Some(p) = configured {
        return Some(p.to_path_buf());
    }
    if let Ok(host) = std::env::var("DOCKER_HOST")
        && let Some(path) = host.strip_prefix("unix://")
    {
        return Some(path.into());
    }
    let default = std::path::PathBuf::from("/var/run/docker.sock");
    default.exists().then_some(default)
}

/// Captures this machine: host metrics from /proc, and containers from the Docker engine at
/// `docker` when there is one.
pub fn capture_local(
    fleet: &str,
    node: &str,
    role: Option<&str>,
    docker: Option<&std::path::Path>,
) -> Snapshot {
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
    if let Some(socket) = docker {
        let t = Instant::now();
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the I/O runtime: {e}"))
            .and_then(|rt| rt.block_on(docker::collect(socket, DOCKER_TIMEOUT)));
        let ms = t.elapsed().as_millis() as u64;
        match result {
            Ok(engine) => {
                snap.docker = Some(engine.info);
                snap.containers = Some(engine.containers);
                snap.sources.push(SourceStatus::ok("docker", ms));
            }
            Err(e) => snap.sources.push(SourceStatus::failed("docker", e, ms)),
        }
    }
    snap.collect_duration_ms = started.elapsed().as_millis() as u64;
    snap
}
