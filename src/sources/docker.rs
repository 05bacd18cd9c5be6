//! The Docker Engine API over its unix socket: engine version, and per container its state,
//! health, restarts, image and revision, memory and CPU, and writable-layer size.
//!
//! The container's environment (`Config.Env`) is never deserialised: that is where passwords
//! live, and what is not read cannot leak into a snapshot.

mod api;
mod containers;
mod events;
mod logs;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{DockerEndpoint, LogSettings, SshSettings};
use crate::model::{Container, DockerInfo, EventSpan, LogStream, Truncated, TruncatedReason};
use crate::sources::logs::Reducer;
use crate::sources::ssh::Tunnel;
use api::Api;
pub use containers::split_image;
use containers::{Inspect, Listed, Stats, Version, container};
pub use logs::{FrameReader, LineCounter};
use logs::{LOGS_SHARE_OF_TIMEOUT, LogBounds, wrote_nothing_since};

/// Answers from one engine.
pub struct Engine {
    pub info: DockerInfo,
    pub containers: Vec<Container>,
    /// One stream per container, covering the requested window.
    pub logs: Vec<LogStream>,
    /// What the next capture of this engine needs to know (log cursors, sizes).
    pub memory: EngineMemory,
}

/// What the collector remembers about one engine between captures (kept in the collector
/// state). Bounded by the containers listed now: entries of containers gone are dropped.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineMemory {
    /// Per container id, the engine's timestamp of the newest log line counted: a line at or
    /// before it was counted by an earlier capture and is skipped, so a window widened for a
    /// node's clock offset never counts a line twice.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_cursor: BTreeMap<String, DateTime<Utc>>,
    /// When writable-layer sizes were last asked for (`size=1` is slow on big layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes_at: Option<DateTime<Utc>>,
    /// The sizes measured then, per container id: (writable layer, root filesystem).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sizes: BTreeMap<String, (Option<u64>, Option<u64>)>,
}

/// The container log window to read: patrol's `since`/`until`, and how far to reach back
/// before `since` for a node whose clock is off (its engine filters by its own clock).
#[derive(Debug, Clone, Copy)]
pub struct LogWindow {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub widen: chrono::Duration,
}

/// How one engine is captured, besides where it is.
pub struct Plan<'a> {
    pub logs: Option<LogWindow>,
    pub settings: &'a LogSettings,
    /// Time between two listings with writable-layer sizes.
    pub size_every: Duration,
    /// What the previous capture of this engine left.
    pub memory: &'a EngineMemory,
    pub timeout: Duration,
    /// The capture's time (sizes measured now are dated with it).
    pub now: DateTime<Utc>,
    /// The engine's events are counted from here to `now`: the node's previous capture, or a
    /// bounded look-back for its first.
    pub events_since: DateTime<Utc>,
}

/// Collects from one engine, giving up after the plan's `timeout`.
pub async fn collect(
    endpoint: &DockerEndpoint,
    ssh: Option<(&SshSettings, &Path)>,
    plan: &Plan<'_>,
) -> Result<Engine, String> {
    let timeout = plan.timeout;
    let described = endpoint.describe();
    let build = |b: reqwest::ClientBuilder| {
        crate::tls::http_client(b.timeout(timeout), &crate::tls::TlsOptions::default())
            .map_err(|e| format!("{described}: {e}"))
    };
    match endpoint {
        DockerEndpoint::Unix(path) => {
            let api = Api {
                budget: std::sync::Arc::new(super::http::Budget::new(MAX_CAPTURE_BYTES)),
                client: build(reqwest::Client::builder().unix_socket(path.as_path()))?,
                base: "http://docker".into(),
                endpoint: described.clone(),
                timeout,
            };
            collect_with(&api, plan).await
        }
        DockerEndpoint::Tcp(host) => {
            let api = Api {
                budget: std::sync::Arc::new(super::http::Budget::new(MAX_CAPTURE_BYTES)),
                client: build(reqwest::Client::builder())?,
                base: format!("http://{host}"),
                endpoint: described.clone(),
                timeout,
            };
            collect_with(&api, plan).await
        }
        DockerEndpoint::Ssh { .. } => {
            let (ssh, remote) = ssh.ok_or_else(|| format!("{described}: no ssh settings"))?;
            let tunnel = Tunnel::open(ssh, remote).await?;
            let api = Api {
                budget: std::sync::Arc::new(super::http::Budget::new(MAX_CAPTURE_BYTES)),
                client: build(reqwest::Client::builder().unix_socket(tunnel.local.as_path()))?,
                base: "http://docker".into(),
                endpoint: described.clone(),
                timeout,
            };
            let result = collect_with(&api, plan).await;
            drop(tunnel);
            result
        }
    }
}

/// What was asked about one listed container: its inspection (`Ok(None)` when it was removed
/// since the list) and, when it runs, its stats.
type Details = (Result<Option<Inspect>, String>, Option<Stats>);

/// One container's log stream, if read, and the log cursor its engine memory keeps.
type ContainerLogs = (Option<LogStream>, Option<DateTime<Utc>>);

async fn collect_with(api: &Api, plan: &Plan<'_>) -> Result<Engine, String> {
    let timeout = plan.timeout;
    let logs_deadline = tokio::time::Instant::now() + timeout.mul_f64(LOGS_SHARE_OF_TIMEOUT);
    let work = async {
        let version: Version = api.get("/version").await?;
        let (listed, mut memory) = list_containers(api, plan).await?;
        // The events are read beside the inspections. A failed read costs the counts, not the
        // capture: the span says why they are missing.
        let since = plan.events_since.min(plan.now);
        let (details, events) = tokio::join!(
            futures_join_all(listed.iter().map(|c| inspect_container(api, c))),
            events::read(api, since, plan.now)
        );
        let mut span = EventSpan {
            since,
            until: plan.now,
            error: None,
        };
        let tallies = match events {
            Ok(t) => {
                span.error = t.cut.clone();
                Some(t)
            }
            Err(e) => {
                tracing::warn!("{e}");
                span.error = Some(e);
                None
            }
        };
        // The logs come after every inspection and stats are in hand, and stop at their own
        // deadline, so slow logs never cost the containers' states.
        let reads = listed
            .iter()
            .zip(&details)
            .map(|(c, (inspect, _))| read_logs(api, plan, c, inspect, logs_deadline));
        let reads = futures_join_all(reads).await;
        let (mut containers, logs) = assemble(api, listed, details, reads, &mut memory)?;
        if let Some(t) = &tallies {
            count_events(&mut containers, t);
        }
        Ok::<_, String>(Engine {
            info: DockerInfo {
                engine_version: version.version,
                api_version: version.api_version,
                compose_version: None,
                events: Some(span),
            },
            containers,
            logs,
            memory,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("{}: no complete answer within {timeout:?}", api.endpoint))?
}

/// Lists every container, with writable-layer sizes when they are due (or a container was
/// never measured), and carries the sizes measured earlier over to the others.
async fn list_containers(
    api: &Api,
    plan: &Plan<'_>,
) -> Result<(Vec<Listed>, EngineMemory), String> {
    let now = plan.now;
    let sizes_due = plan
        .memory
        .sizes_at
        .is_none_or(|t| t > now || (now - t).to_std().unwrap_or_default() >= plan.size_every);
    let mut listed: Vec<Listed> = if sizes_due {
        api.get("/containers/json?all=1&size=1").await?
    } else {
        api.get("/containers/json?all=1").await?
    };
    // A container never measured (new since the last sizes) has them measured now: the
    // rules must see no gap.
    let unmeasured = !sizes_due
        && listed
            .iter()
            .any(|c| !plan.memory.sizes.contains_key(&c.id));
    if unmeasured {
        listed = api.get("/containers/json?all=1&size=1").await?;
    }
    let sizes_due = sizes_due || unmeasured;
    let mut memory = EngineMemory {
        sizes_at: if sizes_due {
            Some(now)
        } else {
            plan.memory.sizes_at
        },
        ..EngineMemory::default()
    };
    for c in &mut listed {
        if sizes_due {
            memory
                .sizes
                .insert(c.id.clone(), (Some(c.size_rw.unwrap_or(0)), c.size_root_fs));
        } else if let Some(&(rw, root)) = plan.memory.sizes.get(&c.id) {
            c.size_rw = rw;
            c.size_root_fs = root;
            memory.sizes.insert(c.id.clone(), (rw, root));
        }
    }
    Ok((listed, memory))
}

/// Inspects one listed container and, when it runs, reads its stats.
async fn inspect_container(api: &Api, c: &Listed) -> Details {
    // Removed between the list and now (404): skipped when assembled, the others kept.
    let inspect: Result<Option<Inspect>, String> = api
        .get_unless_gone(&format!("/containers/{}/json", c.id))
        .await;
    let gone = matches!(inspect, Ok(None));
    let stats: Option<Stats> = if c.state == "running" && !gone {
        api.get(&format!("/containers/{}/stats?stream=false", c.id))
            .await
            .ok()
    } else {
        None
    };
    (inspect, stats)
}

/// Reads one container's logs of the plan's window, unless no window was asked for, the
/// container was not inspected or has never run; a stopped container that wrote nothing since
/// the window began gets an empty stream without asking. A read that failed still gives a
/// stream, marked as cut by an error.
async fn read_logs(
    api: &Api,
    plan: &Plan<'_>,
    c: &Listed,
    inspect: &Result<Option<Inspect>, String>,
    logs_deadline: tokio::time::Instant,
) -> ContainerLogs {
    let (Ok(Some(i)), Some(window)) = (inspect, plan.logs) else {
        return (None, None);
    };
    if c.state == "created" {
        return (None, None);
    }
    let name = c
        .names
        .first()
        .map(|n| n.trim_start_matches('/'))
        .unwrap_or(&c.id);
    let source = format!("container:{name}");
    let since = window.since - window.widen;
    let cursor = plan.memory.log_cursor.get(&c.id).copied();
    let mut reducer = Reducer::new(plan.settings);
    if wrote_nothing_since(&c.state, i.state.finished_at.as_deref(), since) {
        return (
            Some(reducer.finish(&source, window.since, window.until)),
            cursor,
        );
    }
    let tty = i.config.as_ref().is_some_and(|c| c.tty);
    let read = LogBounds {
        settings: plan.settings,
        cursor,
        deadline: logs_deadline.min(tokio::time::Instant::now() + plan.settings.read_time),
    };
    match api
        .logs(&c.id, tty, (since, window.until), read, &mut reducer)
        .await
    {
        Ok(Some(done)) => {
            let mut stream = reducer.finish(&source, window.since, window.until);
            stream.truncated = done.truncated;
            (Some(stream), done.newest.max(cursor))
        }
        Ok(None) => (None, None),
        Err(e) => {
            // stderr is not a snapshot: mask what the engine echoed here too.
            tracing::warn!("{}", super::redact::builtin_text(&e.to_string()));
            let mut stream = reducer.finish(&source, window.since, window.until);
            stream.truncated = Some(Truncated {
                reason: TruncatedReason::Error,
                after: None,
                bytes_read: 0,
            });
            (Some(stream), cursor)
        }
    }
}

/// Puts the answers together in a stable order: containers by name, streams by source;
/// containers removed during the capture are left out, and their log cursors with them.
fn assemble(
    api: &Api,
    listed: Vec<Listed>,
    details: Vec<Details>,
    reads: Vec<ContainerLogs>,
    memory: &mut EngineMemory,
) -> Result<(Vec<Container>, Vec<LogStream>), String> {
    let mut containers = Vec::with_capacity(listed.len());
    let mut streams = Vec::new();
    for ((c, (inspect, stats)), (stream, cursor)) in listed.into_iter().zip(details).zip(reads) {
        let Some(inspect) = inspect? else {
            tracing::info!(
                "{}: container {} was removed during the capture",
                api.endpoint,
                c.id
            );
            continue;
        };
        if let Some(cursor) = cursor {
            memory.log_cursor.insert(c.id.clone(), cursor);
        }
        let measured = memory.sizes.contains_key(&c.id).then_some(memory.sizes_at);
        let mut container = container(c, inspect, stats);
        container.size_measured_at = measured.flatten();
        containers.push(container);
        streams.extend(stream);
    }
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    streams.sort_by(|a, b| a.source.cmp(&b.source));
    Ok((containers, streams))
}

/// Gives each container its events of the span; one without any had none (zeros, not gaps, so
/// a rule sees a quiet capture as such).
fn count_events(containers: &mut [Container], tallies: &events::Tallies) {
    for c in containers {
        let tally =
            c.id.as_deref()
                .and_then(|short| {
                    tallies
                        .by_id
                        .iter()
                        .find(|(id, _)| id.starts_with(short))
                        .map(|(_, t)| t.clone())
                })
                .unwrap_or_default();
        c.oom_kills = Some(tally.oom_kills);
        c.exits = Some(tally.exits);
        c.last_exit_code = tally.last_exit_code;
    }
}

/// Most bytes of answers one engine's capture reads (the list, inspections, stats), whatever
/// each answer's own cap.
const MAX_CAPTURE_BYTES: usize = 256 * 1024 * 1024;

/// Runs futures concurrently and keeps their order (a tiny join_all, to avoid a dependency).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}
