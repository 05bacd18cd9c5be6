//! Collectors: one module per source, run concurrently across nodes and sources with a timeout
//! per source and a bound on how many run at once. A source that fails or times out is recorded
//! in the node's snapshot (which source, the error, how long it took) and the capture goes on;
//! a node whose every source failed is captured as dark.

pub mod docker;
pub mod http;
pub mod local;
pub mod logs;
pub mod postgres;
pub mod prometheus;
pub mod rabbitmq;
pub mod redact;
pub mod redis;
pub mod ssh;
mod task;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Source};
use crate::model::{DockerInfo, Endpoint, Host, Snapshot, SourceStatus};
use crate::tls::TlsOptions;
use task::{TaskContext, collect_source};

/// What the collectors remember between runs, kept beside the archive.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct CollectState {
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeState>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct NodeState {
    /// Start of the last capture whose container logs were read (or that asked for none): the
    /// next window starts here. A capture whose Docker source failed leaves it where it was.
    #[serde(default)]
    pub last_capture: Option<DateTime<Utc>>,
    /// Start of the previous capture, whatever it read: the window a PostgreSQL server log
    /// stream covers (its lines are read from its own offset, below, so a failed Docker source
    /// must not stretch it).
    #[serde(default)]
    pub previous_capture: Option<DateTime<Utc>>,
    /// PostgreSQL server log position per source: (file, byte offset).
    #[serde(default)]
    pub pg_log: BTreeMap<String, (String, u64)>,
    /// The node's clock offset as last measured by the ssh source (ms, its clock minus
    /// patrol's): the container log window reaches back that far, since the engine filters
    /// `since` by the node's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<f64>,
    /// The Docker engine's log cursors and writable-layer sizes.
    #[serde(default)]
    pub docker: docker::EngineMemory,
}

/// How far back before `since` a node's container log window reaches: the last measured clock
/// offset either way (lines read twice are skipped by the engine's timestamps), plus a second
/// for the measurement's own uncertainty. Nothing without a measurement.
pub fn log_widening(offset_ms: Option<f64>) -> chrono::Duration {
    match offset_ms.filter(|o| o.is_finite()) {
        // Capped at a day: a clock further off than that is a finding, not a window.
        Some(o) => chrono::Duration::milliseconds(o.abs().min(86_400_000.0) as i64 + 1000),
        None => chrono::Duration::zero(),
    }
}

impl CollectState {
    pub fn path(archive_root: &Path) -> std::path::PathBuf {
        archive_root.join(".state").join("collector.json")
    }

    /// A missing or unreadable state file starts afresh (logs then read the first window).
    /// The state the previous capture left; a fresh one when there is none. One that cannot be
    /// read or parsed is said on stderr (log windows and size schedules then start afresh), so a
    /// state file left to another user or cut short is never a silent reset.
    pub fn load(archive_root: &Path) -> CollectState {
        let path = Self::path(archive_root);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return CollectState::default(),
            Err(e) => {
                tracing::warn!(
                    "{}: {e}; log windows and size schedules start afresh",
                    path.display()
                );
                return CollectState::default();
            }
        };
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(
                "{}: not a collector state ({e}); log windows and size schedules start afresh",
                path.display()
            );
            CollectState::default()
        })
    }

    pub fn save(&self, archive_root: &Path) -> crate::error::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| {
            crate::error::Error::Runtime(format!("cannot write collector state: {e}"))
        })?;
        crate::fsutil::write_atomic(
            &Self::path(archive_root),
            &json,
            crate::fsutil::Mode::Private,
        )
    }
}

/// One source's answer, merged into its node's snapshot.
enum Part {
    Host(Host),
    Docker(docker::Engine),
    Endpoint(Endpoint),
    Postgres(postgres::Answer),
    Redis(crate::model::Redis),
    Ssh(ssh::Probe),
    Prometheus(prometheus::Answered),
    RabbitMq(crate::model::RabbitMq),
}

struct Outcome {
    node: usize,
    source: String,
    result: Result<Part, String>,
    elapsed: Duration,
}

/// Reports progress per node (on a terminal) or nothing (under cron).
pub type Progress<'a> = &'a (dyn Fn(&Snapshot) + Sync);

/// Captures every node of the fleet at once. Returns one snapshot per node, in config order,
/// and the state to keep for the next run.
pub fn capture_fleet(
    config: &Config,
    state: &CollectState,
    progress: Progress,
) -> (Vec<Snapshot>, CollectState) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            // Without a runtime nothing can be asked: every node is recorded as dark.
            let now = Utc::now();
            let snaps = config
                .nodes
                .iter()
                .map(|n| {
                    let mut s = Snapshot::new(&config.fleet, &n.name, now);
                    for src in &n.sources {
                        s.sources.push(SourceStatus::failed(
                            &src.name(),
                            format!("cannot start the I/O runtime: {e}"),
                            0,
                        ));
                    }
                    s
                })
                .collect();
            return (snaps, state.clone());
        }
    };
    runtime.block_on(capture_fleet_async(config, state, progress))
}

async fn capture_fleet_async(
    config: &Config,
    state: &CollectState,
    progress: Progress<'_>,
) -> (Vec<Snapshot>, CollectState) {
    let started = Instant::now();
    let now = Utc::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(config.concurrency));
    let http = crate::tls::http_client(reqwest::Client::builder(), &TlsOptions::default());
    let mut tasks = tokio::task::JoinSet::new();
    let mut spawned = HashMap::new();
    for (index, node) in config.nodes.iter().enumerate() {
        let first_window = chrono::Duration::from_std(config.logs.first_window).unwrap_or_default();
        let previous = state.nodes.get(&node.name);
        let since = previous
            .and_then(|s| s.last_capture)
            .filter(|t| *t < now)
            .unwrap_or(now - first_window);
        let pg_since = previous
            .and_then(|s| s.previous_capture.or(s.last_capture))
            .filter(|t| *t < now)
            .unwrap_or(now - first_window);
        for source in &node.sources {
            let ctx = TaskContext {
                node: state.nodes.get(&node.name).cloned().unwrap_or_default(),
                logs: config.logs.clone(),
                since,
                pg_since,
                until: now,
                http: http.clone(),
            };
            let source = source.clone();
            let limit = source.timeout(config.timeout);
            let semaphore = semaphore.clone();
            let name = source.name();
            let source_name = name.clone();
            let task = tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let t = Instant::now();
                // A little grace, so a collector's own timeout (which says more) fires first.
                let outer = limit + Duration::from_millis(500);
                let result = match tokio::time::timeout(outer, collect_source(source, ctx)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {limit:?}")),
                };
                Outcome {
                    node: index,
                    source: source_name,
                    result,
                    elapsed: t.elapsed(),
                }
            });
            spawned.insert(task.id(), (index, name));
        }
    }
    let mut outcomes = join_sources(tasks, spawned, started).await;
    // Merge in config order, whatever order the answers came in.
    outcomes.sort_by_key(|o| {
        let order = config.nodes[o.node]
            .sources
            .iter()
            .position(|s| s.name() == o.source);
        (o.node, order)
    });
    let mut next = state.clone();
    let mut snaps: Vec<Snapshot> = config
        .nodes
        .iter()
        .map(|n| {
            let mut s = Snapshot::new(&config.fleet, &n.name, now);
            s.role = n.role.clone();
            // The schedule this capture belongs to: the digest counts missed rounds against it.
            s.interval_s = Some(config.daemon.interval.as_secs());
            s
        })
        .collect();
    // Nodes whose container logs were asked for and not read: their log window stays where the
    // last read one ended, so the next capture reads what this one missed.
    let mut logs_unread = vec![false; config.nodes.len()];
    for o in outcomes {
        let snap = &mut snaps[o.node];
        let ms = o.elapsed.as_millis() as u64;
        match o.result {
            Ok(part) => {
                snap.sources.push(SourceStatus::ok(&o.source, ms));
                if let Part::Postgres(answer) = &part
                    && let (Some(position), Some(name)) =
                        (&answer.position, o.source.strip_prefix("postgres:"))
                {
                    let node_state = next.nodes.entry(snap.node.clone()).or_default();
                    node_state.pg_log.insert(name.to_string(), position.clone());
                }
                if let Part::Docker(engine) = &part {
                    let node_state = next.nodes.entry(snap.node.clone()).or_default();
                    node_state.docker = engine.memory.clone();
                }
                merge(snap, part);
            }
            Err(e) => {
                let reads_logs = config.nodes[o.node].sources.iter().any(|s| {
                    matches!(s, Source::Docker { logs: true, .. }) && s.name() == o.source
                });
                logs_unread[o.node] |= reads_logs;
                snap.sources.push(SourceStatus::failed(&o.source, e, ms));
            }
        }
    }
    let secrets = resolved_secrets(config);
    let redactor = redact::Redactor::new(&config.redact, secrets);
    for (snap, unread) in snaps.iter_mut().zip(logs_unread) {
        snap.collect_duration_ms = started.elapsed().as_millis() as u64;
        redactor.snapshot(snap);
        let node_state = next.nodes.entry(snap.node.clone()).or_default();
        if !unread {
            node_state.last_capture = Some(now);
        }
        if let Some(offset) = snap.host.as_ref().and_then(|h| h.clock_offset_ms) {
            node_state.clock_offset_ms = Some(offset);
        }
        node_state.previous_capture = Some(now);
        progress(snap);
    }
    (snaps, next)
}

/// Waits for every source task. A task that panicked or was cancelled is its source's error,
/// with the source's name: a collector that fails in any way is recorded, never missing from
/// the snapshot.
async fn join_sources(
    mut tasks: tokio::task::JoinSet<Outcome>,
    mut spawned: HashMap<tokio::task::Id, (usize, String)>,
    started: Instant,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((id, o)) => {
                spawned.remove(&id);
                outcomes.push(o);
            }
            Err(e) => {
                let Some((node, source)) = spawned.remove(&e.id()) else {
                    tracing::error!("a collector task failed: {e}");
                    continue;
                };
                let error = if e.is_panic() {
                    format!("{source}: the collector failed: {}", panic_message(e))
                } else {
                    format!("{source}: the collector was cancelled")
                };
                tracing::error!("{error}");
                outcomes.push(Outcome {
                    node,
                    source,
                    result: Err(error),
                    elapsed: started.elapsed(),
                });
            }
        }
    }
    outcomes
}

/// What a panic said, when it said it as text.
fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "it panicked".to_string())
}

fn merge(snap: &mut Snapshot, part: Part) {
    match part {
        Part::Host(h) => snap.host = Some(h),
        Part::Docker(engine) => {
            let compose = snap.docker.as_ref().and_then(|d| d.compose_version.clone());
            snap.docker = Some(DockerInfo {
                compose_version: compose.or(engine.info.compose_version),
                ..engine.info
            });
            snap.containers = Some(engine.containers);
            snap.logs.extend(engine.logs);
        }
        Part::Endpoint(e) => snap.endpoints.push(e),
        Part::Postgres(answer) => {
            snap.postgres.push(answer.postgres);
            snap.logs.extend(answer.log);
        }
        Part::Redis(r) => snap.redis.push(r),
        Part::RabbitMq(r) => snap.rabbitmq.push(r),
        Part::Prometheus(p) => {
            // /proc, when also configured, is read on the node itself and wins.
            if snap.host.is_none() {
                snap.host = p.host;
            }
            if p.gpus.is_some() {
                snap.gpus = p.gpus;
            }
            snap.queries.extend(p.queries);
        }
        Part::Ssh(p) => {
            let host = snap.host.get_or_insert_with(Host::default);
            host.uptime_s = host.uptime_s.or(p.uptime_s);
            if host.boot_time.is_none() {
                host.boot_time = p
                    .uptime_s
                    .and_then(|u| crate::units::boot_time(snap.captured_at, u));
            }
            host.clock_offset_ms = p.clock_offset_ms;
            // Each probe command is a source of its own: one broken tool fails only itself, and
            // one the node does not have is not asked at all (no value, no error).
            if let Some(r) = p.compose_version {
                let compose = r.map(|v| {
                    snap.docker
                        .get_or_insert_with(DockerInfo::default)
                        .compose_version = Some(v);
                });
                record(snap, "ssh:compose", compose);
            }
            if let Some(r) = p.gpus {
                let gpus = r.map(|g| snap.gpus = Some(g));
                record(snap, "ssh:nvidia-smi", gpus);
            }
            if let Some(r) = p.ntp_synced {
                let ntp =
                    r.map(|n| snap.host.get_or_insert_with(Host::default).ntp_synced = Some(n));
                record(snap, "ssh:timedatectl", ntp);
            }
        }
    }
}

fn record(snap: &mut Snapshot, name: &str, reply: ssh::Reply<()>) {
    match reply {
        ssh::Reply::Answered(()) => snap.sources.push(SourceStatus::ok(name, 0)),
        ssh::Reply::NotInstalled => {}
        ssh::Reply::Failed(e) => snap.sources.push(SourceStatus::failed(name, e, 0)),
    }
}

/// The passwords patrol itself uses, so their values are masked wherever they might appear.
fn resolved_secrets(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for node in &config.nodes {
        for source in &node.sources {
            let secret = match source {
                Source::Postgres { password, .. }
                | Source::Redis { password, .. }
                | Source::RabbitMq { password, .. } => password.as_ref(),
                _ => None,
            };
            if let Some(Ok(value)) = secret.map(|s| s.resolve()) {
                out.push(value);
            }
        }
    }
    out
}

/// The engine socket to use when there is no config: `$DOCKER_HOST` (unix:// only), else the
/// standard socket when it exists.
pub fn default_docker_socket() -> Option<std::path::PathBuf> {
    if let Ok(host) = std::env::var("DOCKER_HOST")
        && let Some(path) = host.strip_prefix("unix://")
    {
        return Some(path.into());
    }
    let default = std::path::PathBuf::from("/var/run/docker.sock");
    default.exists().then_some(default)
}

/// A one-line account of a node's capture, for a terminal.
pub fn describe(snap: &Snapshot) -> String {
    let ok = snap.sources.iter().filter(|s| s.ok).count();
    let mut line = format!(
        "{}: {}/{} sources answered in {:.1} s",
        snap.node,
        ok,
        snap.sources.len(),
        snap.collect_duration_ms as f64 / 1000.0
    );
    for s in snap.sources.iter().filter(|s| !s.ok) {
        line.push_str(&format!(
            "; {} failed: {}",
            s.name,
            s.error.as_deref().unwrap_or("?")
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_window_reaches_back_by_the_clock_offset_either_way() {
        assert_eq!(log_widening(None), chrono::Duration::zero());
        assert_eq!(log_widening(Some(f64::NAN)), chrono::Duration::zero());
        assert_eq!(
            log_widening(Some(-600_000.0)),
            chrono::Duration::milliseconds(601_000)
        );
        assert_eq!(
            log_widening(Some(2_500.0)),
            chrono::Duration::milliseconds(3_500)
        );
        assert_eq!(
            log_widening(Some(1e15)),
            chrono::Duration::milliseconds(86_401_000),
            "capped at a day"
        );
    }

    #[test]
    fn a_collector_that_panics_is_its_sources_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcomes = runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            let mut spawned = HashMap::new();
            let failing = tasks.spawn(async {
                let text = String::from("conexão");
                // A collector bug on remote text: a byte index inside "ã".
                let cut = &text[..6];
                Outcome {
                    node: 0,
                    source: cut.to_string(),
                    result: Err(String::new()),
                    elapsed: Duration::ZERO,
                }
            });
            spawned.insert(failing.id(), (0, "docker".to_string()));
            let fine = tasks.spawn(async {
                Outcome {
                    node: 0,
                    source: "http:web".into(),
                    result: Ok(Part::RabbitMq(crate::model::RabbitMq {
                        name: "q".into(),
                        version: None,
                        queues: Vec::new(),
                    })),
                    elapsed: Duration::ZERO,
                }
            });
            spawned.insert(fine.id(), (0, "http:web".to_string()));
            join_sources(tasks, spawned, Instant::now()).await
        });
        assert_eq!(outcomes.len(), 2, "no source goes missing");
        let failed = outcomes.iter().find(|o| o.source == "docker").unwrap();
        let error = failed.result.as_ref().err().unwrap();
        assert!(
            error.starts_with("docker: the collector failed: "),
            "{error}"
        );
        assert!(error.contains("char boundary"), "{error}");
    }
}
