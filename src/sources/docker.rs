//! The Docker Engine API over its unix socket: engine version, and per container its state,
//! health, restarts, image and revision, memory and CPU, and writable-layer size.
//!
//! The container's environment (`Config.Env`) is never deserialised: that is where passwords
//! live, and what is not read cannot leak into a snapshot.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{DockerEndpoint, LogSettings, SshSettings};
use crate::model::{
    Container, ContainerState, DockerInfo, Health, HealthCheck, LogStream, Port, Truncated,
    TruncatedReason,
};
use crate::sources::logs::Reducer;
use crate::sources::ssh::Tunnel;

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
}

#[derive(Deserialize)]
struct Version {
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "ApiVersion")]
    api_version: Option<String>,
}

#[derive(Deserialize)]
struct ListedPort {
    #[serde(rename = "IP")]
    ip: Option<String>,
    #[serde(rename = "PrivatePort")]
    private: u16,
    #[serde(rename = "PublicPort")]
    public: Option<u16>,
    #[serde(rename = "Type")]
    proto: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Names", default)]
    names: Vec<String>,
    #[serde(rename = "Image")]
    image: String,
    #[serde(rename = "ImageID")]
    image_id: Option<String>,
    #[serde(rename = "State")]
    state: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Ports", default)]
    ports: Vec<ListedPort>,
    // Left out by the engine when it is 0.
    #[serde(rename = "SizeRw")]
    size_rw: Option<u64>,
    #[serde(rename = "SizeRootFs")]
    size_root_fs: Option<u64>,
}

#[derive(Deserialize)]
struct HealthLogEntry {
    #[serde(rename = "Start")]
    start: DateTime<Utc>,
    #[serde(rename = "ExitCode")]
    exit_code: i64,
    #[serde(rename = "Output", default)]
    output: String,
}

#[derive(Deserialize)]
struct InspectHealth {
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "FailingStreak")]
    failing_streak: Option<u32>,
    #[serde(rename = "Log", default)]
    log: Vec<HealthLogEntry>,
}

#[derive(Deserialize)]
struct InspectState {
    #[serde(rename = "OOMKilled")]
    oom_killed: Option<bool>,
    #[serde(rename = "ExitCode")]
    exit_code: Option<i64>,
    #[serde(rename = "StartedAt")]
    started_at: Option<String>,
    /// When the container last stopped ("0001-01-01T00:00:00Z" when it never did).
    #[serde(rename = "FinishedAt")]
    finished_at: Option<String>,
    #[serde(rename = "Health")]
    health: Option<InspectHealth>,
}

#[derive(Deserialize)]
struct RestartPolicy {
    #[serde(rename = "Name")]
    name: Option<String>,
}

#[derive(Deserialize)]
struct HostConfig {
    #[serde(rename = "Memory")]
    memory: Option<u64>,
    #[serde(rename = "RestartPolicy")]
    restart_policy: Option<RestartPolicy>,
}

/// Only what patrol keeps: no `Env`.
#[derive(Deserialize)]
struct InspectConfig {
    /// With a TTY the log stream is raw; without, it is multiplexed in frames.
    #[serde(rename = "Tty", default)]
    tty: bool,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Inspect {
    #[serde(rename = "RestartCount")]
    restart_count: Option<u32>,
    #[serde(rename = "State")]
    state: InspectState,
    #[serde(rename = "HostConfig")]
    host_config: Option<HostConfig>,
    #[serde(rename = "Config")]
    config: Option<InspectConfig>,
}

#[derive(Deserialize, Default)]
struct CpuUsage {
    total_usage: Option<u64>,
}

#[derive(Deserialize, Default)]
struct CpuStats {
    #[serde(default)]
    cpu_usage: CpuUsage,
    system_cpu_usage: Option<u64>,
    online_cpus: Option<u64>,
}

#[derive(Deserialize, Default)]
struct MemoryStats {
    usage: Option<u64>,
    #[serde(default)]
    stats: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct BlkioEntry {
    op: String,
    value: u64,
}

#[derive(Deserialize, Default)]
struct BlkioStats {
    #[serde(default)]
    io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
}

#[derive(Deserialize)]
struct Stats {
    #[serde(default)]
    blkio_stats: BlkioStats,
    #[serde(default)]
    cpu_stats: CpuStats,
    #[serde(default)]
    precpu_stats: CpuStats,
    #[serde(default)]
    memory_stats: MemoryStats,
}

/// Splits "registry:5000/repo:tag" into ("registry:5000/repo", Some("tag")); a digest
/// reference keeps no tag.
pub fn split_image(reference: &str) -> (String, Option<String>) {
    let reference = reference.split('@').next().unwrap_or(reference);
    let last_slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            reference[..last_slash + i].to_string(),
            Some(reference[last_slash + i + 1..].to_string()),
        ),
        None => (reference.to_string(), None),
    }
}

/// Memory in use as `docker stats` shows it: usage less the page cache that can be dropped.
fn memory_used(m: &MemoryStats) -> Option<u64> {
    let usage = m.usage?;
    let cache = m
        .stats
        .get("total_inactive_file")
        .or_else(|| m.stats.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    Some(usage.saturating_sub(cache))
}

/// Bytes written to block devices since the container started (cgroup v1 says "Write", v2
/// "write").
fn blkio_written(s: &Stats) -> Option<u64> {
    let entries = s.blkio_stats.io_service_bytes_recursive.as_ref()?;
    Some(
        entries
            .iter()
            .filter(|e| e.op.eq_ignore_ascii_case("write"))
            .map(|e| e.value)
            .sum(),
    )
}

fn cpu_cores(s: &Stats) -> Option<f64> {
    let total = s
        .cpu_stats
        .cpu_usage
        .total_usage?
        .checked_sub(s.precpu_stats.cpu_usage.total_usage?)?;
    let system = s
        .cpu_stats
        .system_cpu_usage?
        .checked_sub(s.precpu_stats.system_cpu_usage?)?;
    let cpus = s.cpu_stats.online_cpus.unwrap_or(1) as f64;
    (system > 0).then(|| (total as f64 / system as f64 * cpus * 1000.0).round() / 1000.0)
}

fn state_of(text: &str) -> ContainerState {
    match text {
        "running" => ContainerState::Running,
        "restarting" => ContainerState::Restarting,
        "paused" => ContainerState::Paused,
        "exited" => ContainerState::Exited,
        "dead" => ContainerState::Dead,
        "removing" => ContainerState::Removing,
        _ => ContainerState::Created,
    }
}

fn health_of(text: Option<&str>) -> Health {
    match text {
        Some("healthy") => Health::Healthy,
        Some("unhealthy") => Health::Unhealthy,
        Some("starting") => Health::Starting,
        _ => Health::None,
    }
}

struct Api {
    client: reqwest::Client,
    base: String,
    endpoint: String,
    /// The source's `timeout`, which the client enforces per request.
    timeout: Duration,
    /// What all answers of this capture may read together.
    budget: std::sync::Arc<super::http::Budget>,
}

impl Api {
    fn failed(&self, path: &str, e: reqwest::Error) -> String {
        if e.is_timeout() {
            format!(
                "{} GET {path}: no answer within {:?}",
                self.endpoint, self.timeout
            )
        } else {
            // The causes say why: no socket, a socket we may not open, a refused connection.
            format!(
                "{} GET {path}: {}",
                self.endpoint,
                crate::error::with_causes(&e.without_url())
            )
        }
    }

    /// The engine's answer, or `None` when it says 404: a container removed since it was
    /// listed is gone, not a failure of the engine.
    async fn response_unless_gone(&self, path: &str) -> Result<Option<reqwest::Response>, String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| self.failed(path, e))?;
        let status = response.status();
        if status.is_success() {
            Ok(Some(response))
        } else if status == reqwest::StatusCode::NOT_FOUND {
            Ok(None)
        } else {
            let body = super::http::body_excerpt(response, 1024).await;
            Err(format!(
                "{} GET {path}: HTTP {status}: {body}",
                self.endpoint
            ))
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        self.get_unless_gone(path)
            .await?
            .ok_or_else(|| format!("{} GET {path}: HTTP 404 Not Found", self.endpoint))
    }

    /// Reads and parses an answer (at most [`super::http::MAX_BODY_BYTES`]); `None` on 404.
    async fn get_unless_gone<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, String> {
        let Some(response) = self.response_unless_gone(path).await? else {
            return Ok(None);
        };
        let what = format!("{} GET {path}", self.endpoint);
        let bytes = super::http::read_body(
            response,
            &what,
            super::http::MAX_BODY_BYTES,
            Some(&self.budget),
        )
        .await?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{what}: unexpected answer: {e}"))
    }

    /// Streams a container's log lines written since `since` into a reducer, chunk by chunk,
    /// until the end of the stream or a bound (`max_bytes`, `max_lines`, the `deadline`): past a
    /// bound reading stops, what was read is kept and the answer says where it stopped. Lines
    /// stamped at or before `cursor` were counted by an earlier capture and are skipped.
    /// `Ok(None)` when the container is gone.
    async fn logs(
        &self,
        id: &str,
        tty: bool,
        window: (DateTime<Utc>, DateTime<Utc>),
        read: LogRead<'_>,
        reducer: &mut Reducer<'_>,
    ) -> Result<Option<LogsRead>, String> {
        let secs =
            |t: DateTime<Utc>| format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
        let path = format!(
            "/containers/{id}/logs?stdout=1&stderr=1&timestamps=1&since={}&until={}",
            secs(window.0),
            secs(window.1)
        );
        let mut counter = LineCounter::new(read.cursor, read.settings.max_lines);
        let cut = |counter: &LineCounter, reason, bytes_read| LogsRead {
            newest: counter.newest,
            truncated: Some(Truncated {
                reason,
                after: counter.newest,
                bytes_read,
            }),
        };
        let mut response =
            match tokio::time::timeout_at(read.deadline, self.response_unless_gone(&path)).await {
                Err(_) => return Ok(Some(cut(&counter, TruncatedReason::Time, 0))),
                Ok(r) => match r? {
                    Some(r) => r,
                    None => return Ok(None),
                },
            };
        let mut frames = FrameReader::new(tty);
        let mut bytes_read: u64 = 0;
        loop {
            let chunk = match tokio::time::timeout_at(read.deadline, response.chunk()).await {
                Err(_) => return Ok(Some(cut(&counter, TruncatedReason::Time, bytes_read))),
                Ok(Err(e)) => {
                    // stderr is not a snapshot: mask what the engine echoed here too.
                    tracing::warn!("{}", super::redact::builtin_text(&self.failed(&path, e)));
                    return Ok(Some(cut(&counter, TruncatedReason::Error, bytes_read)));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            let room = read.settings.max_bytes.saturating_sub(bytes_read);
            let take = (chunk.len() as u64).min(room) as usize;
            bytes_read += take as u64;
            frames.feed(&chunk[..take], |line| counter.add(reducer, line));
            if counter.full() {
                return Ok(Some(cut(&counter, TruncatedReason::Lines, bytes_read)));
            }
            if take < chunk.len() || bytes_read >= read.settings.max_bytes {
                // A partial last line is left unread rather than counted as a line.
                return Ok(Some(cut(&counter, TruncatedReason::Bytes, bytes_read)));
            }
        }
        frames.finish(|line| counter.add(reducer, line));
        Ok(Some(LogsRead {
            newest: counter.newest,
            truncated: None,
        }))
    }
}

/// The bounds of one container's log read.
struct LogRead<'a> {
    settings: &'a LogSettings,
    cursor: Option<DateTime<Utc>>,
    deadline: tokio::time::Instant,
}

/// How a container's log read ended.
struct LogsRead {
    /// The engine's timestamp of the newest line counted.
    newest: Option<DateTime<Utc>>,
    truncated: Option<Truncated>,
}

/// Passes the engine's lines to the reducer, skipping those an earlier capture counted and
/// stopping at `max_lines`.
pub struct LineCounter {
    cursor: Option<DateTime<Utc>>,
    max_lines: usize,
    lines: usize,
    /// Lines skipped as already counted.
    pub repeated: u64,
    pub newest: Option<DateTime<Utc>>,
}

impl LineCounter {
    pub fn new(cursor: Option<DateTime<Utc>>, max_lines: usize) -> Self {
        LineCounter {
            cursor,
            max_lines,
            lines: 0,
            repeated: 0,
            newest: None,
        }
    }

    fn full(&self) -> bool {
        self.lines >= self.max_lines
    }

    /// A line as the engine sends it with `timestamps=1`: "2026-11-22T13:02:06.569759951Z
    /// message".
    pub fn add(&mut self, reducer: &mut Reducer<'_>, line: &str) {
        if self.full() {
            return;
        }
        let (at, text) = match line.split_once(' ') {
            Some((stamp, rest)) => match DateTime::parse_from_rfc3339(stamp) {
                Ok(t) => (Some(t.with_timezone(&Utc)), rest),
                Err(_) => (None, line),
            },
            None => (None, line),
        };
        if let (Some(at), Some(cursor)) = (at, self.cursor)
            && at <= cursor
        {
            self.repeated += 1;
            return;
        }
        self.lines += 1;
        if let Some(at) = at {
            self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
        }
        reducer.add(at, text.trim_end_matches('\r'));
    }
}

/// Splits the engine's log stream into lines: without a TTY each payload comes in a frame with
/// an 8-byte header (stream, 3 zero bytes, big-endian length). Payloads are passed on as they
/// arrive rather than gathered whole, so a header announcing 4 GB costs nothing but the bytes
/// that actually come, and lines are cut at 16 KB.
pub struct FrameReader {
    tty: bool,
    header: [u8; 8],
    header_len: usize,
    /// Bytes of the current frame's payload still to come.
    remaining: usize,
    line: Vec<u8>,
}

/// Longest line kept; the rest of it is dropped.
const MAX_LINE_BYTES: usize = 16 * 1024;

impl FrameReader {
    pub fn new(tty: bool) -> Self {
        FrameReader {
            tty,
            header: [0; 8],
            header_len: 0,
            remaining: 0,
            line: Vec::new(),
        }
    }

    pub fn feed(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&str)) {
        if self.tty {
            self.text(bytes, &mut emit);
            return;
        }
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(bytes.len());
                let (payload, rest) = bytes.split_at(take);
                self.text(payload, &mut emit);
                self.remaining -= take;
                bytes = rest;
                continue;
            }
            let take = (8 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len == 8 {
                let h = self.header;
                self.remaining = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
                self.header_len = 0;
            }
        }
    }

    fn text(&mut self, bytes: &[u8], emit: &mut impl FnMut(&str)) {
        for &b in bytes {
            if b == b'\n' {
                emit(&String::from_utf8_lossy(&self.line));
                self.line.clear();
            } else if self.line.len() < MAX_LINE_BYTES {
                self.line.push(b);
            }
        }
    }

    pub fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.line.is_empty() {
            emit(&String::from_utf8_lossy(&self.line));
            self.line.clear();
        }
    }
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

/// Share of the source's timeout past which container logs stop being read, so the list,
/// inspections and stats (already in hand by then) always land.
const LOGS_SHARE_OF_TIMEOUT: f64 = 0.8;

/// Whether a container's log request can be skipped: it is stopped and stopped before the
/// window, so it wrote nothing in it (dockerd would rescan its whole log file to say so).
fn wrote_nothing_since(state: &str, finished_at: Option<&str>, since: DateTime<Utc>) -> bool {
    if !matches!(state, "exited" | "dead") {
        return false;
    }
    finished_at
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|t| t.timestamp() > 0 && t.with_timezone(&Utc) < since)
}

async fn collect_with(api: &Api, plan: &Plan<'_>) -> Result<Engine, String> {
    let timeout = plan.timeout;
    let logs_deadline = tokio::time::Instant::now() + timeout.mul_f64(LOGS_SHARE_OF_TIMEOUT);
    let work = async {
        let version: Version = api.get("/version").await?;
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
        let details = listed.iter().map(|c| async {
            // Removed between the list and now (404): skipped below, the others kept.
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
        });
        let details = futures_join_all(details).await;
        // The logs come after every inspection and stats are in hand, and stop at their own
        // deadline, so slow logs never cost the containers' states.
        let reads = listed
            .iter()
            .zip(&details)
            .map(|(c, (inspect, _))| async move {
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
                let read = LogRead {
                    settings: plan.settings,
                    cursor,
                    deadline: logs_deadline
                        .min(tokio::time::Instant::now() + plan.settings.read_time),
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
            });
        let reads = futures_join_all(reads).await;
        let mut containers = Vec::with_capacity(listed.len());
        let mut streams = Vec::new();
        for ((c, (inspect, stats)), (stream, cursor)) in listed.into_iter().zip(details).zip(reads)
        {
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
        Ok::<_, String>(Engine {
            info: DockerInfo {
                engine_version: version.version,
                api_version: version.api_version,
                compose_version: None,
            },
            containers,
            logs: streams,
            memory,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("{}: no complete answer within {timeout:?}", api.endpoint))?
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

fn container(c: Listed, inspect: Inspect, stats: Option<Stats>) -> Container {
    let labels = c.labels.unwrap_or_default();
    let (image, tag) = split_image(&c.image);
    let name = c
        .names
        .first()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_else(|| c.id.chars().take(12).collect());
    let health = inspect.state.health.as_ref();
    let mut command = Vec::new();
    if let Some(cfg) = &inspect.config {
        command.extend(cfg.entrypoint.clone().unwrap_or_default());
        command.extend(cfg.cmd.clone().unwrap_or_default());
    }
    let started_at = inspect
        .state
        .started_at
        .as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| t.timestamp() > 0);
    let limit = inspect
        .host_config
        .as_ref()
        .and_then(|h| h.memory)
        .filter(|m| *m > 0);
    Container {
        name,
        id: Some(c.id.chars().take(12).collect()),
        compose_project: labels.get("com.docker.compose.project").cloned(),
        compose_service: labels.get("com.docker.compose.service").cloned(),
        image,
        tag,
        image_id: c.image_id,
        image_created: None,
        revision: labels.get("org.opencontainers.image.revision").cloned(),
        state: state_of(&c.state),
        health: health_of(health.map(|h| h.status.as_str())),
        failing_streak: health.and_then(|h| h.failing_streak),
        health_log: health
            .map(|h| {
                h.log
                    .iter()
                    .rev()
                    .take(3)
                    .rev()
                    .map(|l| HealthCheck {
                        start: l.start,
                        exit_code: l.exit_code,
                        output: l.output.chars().take(300).collect(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        restart_count: inspect.restart_count,
        restart_policy: inspect
            .host_config
            .as_ref()
            .and_then(|h| h.restart_policy.as_ref())
            .and_then(|r| r.name.clone())
            .filter(|n| !n.is_empty()),
        oom_killed: inspect.state.oom_killed,
        exit_code: inspect.state.exit_code,
        started_at,
        ports: c
            .ports
            .into_iter()
            .map(|p| Port {
                private: p.private,
                public: p.public,
                ip: p.ip,
                proto: p.proto.unwrap_or_else(|| "tcp".into()),
            })
            .collect(),
        command,
        mem_usage_bytes: stats.as_ref().and_then(|s| memory_used(&s.memory_stats)),
        mem_limit_bytes: limit,
        cpu_cores: stats.as_ref().and_then(cpu_cores),
        pids: None,
        blkio_write_bytes: stats.as_ref().and_then(blkio_written),
        size_rw_bytes: Some(c.size_rw.unwrap_or(0)),
        size_root_fs_bytes: c.size_root_fs,
        size_measured_at: None,
        volumes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_image_references() {
        assert_eq!(
            split_image("postgres:16.4"),
            ("postgres".into(), Some("16.4".into()))
        );
        assert_eq!(
            split_image("registry:5000/team/app:c014"),
            ("registry:5000/team/app".into(), Some("c014".into()))
        );
        assert_eq!(
            split_image("registry:5000/team/app"),
            ("registry:5000/team/app".into(), None)
        );
        assert_eq!(split_image("app@sha256:abcd"), ("app".into(), None));
    }

    #[test]
    fn inspect_never_keeps_the_environment() {
        let json = r#"{"RestartCount":2,"State":{"Status":"running","OOMKilled":false,"ExitCode":0,"StartedAt":"2026-11-22T13:00:00Z"},"HostConfig":{"Memory":536870912,"RestartPolicy":{"Name":"unless-stopped"}},"Config":{"Env":["DB_PASSWORD=hunter2"],"Cmd":["sh","-c","sleep 1"]}}"#;
        let inspect: Inspect = serde_json::from_str(json).unwrap();
        let listed: Listed = serde_json::from_str(
            r#"{"Id":"0123456789abcdef","Names":["/pt-leak"],"Image":"patrol-bb:1","ImageID":"sha256:x","State":"running","Labels":{"org.opencontainers.image.revision":"deadbeef"},"Ports":[],"SizeRootFs":1200000}"#,
        )
        .unwrap();
        let c = container(listed, inspect, None);
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("DB_PASSWORD"));
        assert_eq!(c.name, "pt-leak");
        assert_eq!(c.revision.as_deref(), Some("deadbeef"));
        assert_eq!(c.mem_limit_bytes, Some(536870912));
        assert_eq!(c.restart_policy.as_deref(), Some("unless-stopped"));
        assert_eq!(c.size_rw_bytes, Some(0), "SizeRw is left out when it is 0");
    }

    #[test]
    fn frames_are_split_into_lines_across_chunks() {
        let frame = |text: &str| {
            let mut f = vec![1u8, 0, 0, 0];
            f.extend((text.len() as u32).to_be_bytes());
            f.extend(text.as_bytes());
            f
        };
        let mut bytes = frame("2026-11-22T13:02:06.5Z first\n2026-11-22T13:02:07Z sec");
        bytes.extend(frame("ond\n"));
        let mut reader = FrameReader::new(false);
        let mut lines = Vec::new();
        for chunk in bytes.chunks(5) {
            reader.feed(chunk, |l| lines.push(l.to_string()));
        }
        reader.finish(|l| lines.push(l.to_string()));
        assert_eq!(
            lines,
            [
                "2026-11-22T13:02:06.5Z first",
                "2026-11-22T13:02:07Z second"
            ]
        );
    }

    #[test]
    fn only_a_container_stopped_before_the_window_is_not_asked_for_logs() {
        let since: DateTime<Utc> = "2026-11-22T13:00:00Z".parse().unwrap();
        let before = Some("2026-11-22T12:59:59.9Z");
        let after = Some("2026-11-22T13:00:00.1Z");
        assert!(wrote_nothing_since("exited", before, since));
        assert!(wrote_nothing_since("dead", before, since));
        assert!(
            !wrote_nothing_since("exited", after, since),
            "it ran in the window"
        );
        assert!(!wrote_nothing_since("running", before, since));
        assert!(!wrote_nothing_since("restarting", before, since));
        assert!(!wrote_nothing_since("paused", before, since));
        // The engine's "never stopped" and an unreadable time: asked, to be safe.
        assert!(!wrote_nothing_since(
            "exited",
            Some("0001-01-01T00:00:00Z"),
            since
        ));
        assert!(!wrote_nothing_since("exited", Some("yesterday"), since));
        assert!(!wrote_nothing_since("exited", None, since));
    }

    #[test]
    fn lines_at_or_before_the_cursor_are_skipped_and_max_lines_stops_the_count() {
        let settings = LogSettings::default();
        let mut reducer = Reducer::new(&settings);
        let cursor: DateTime<Utc> = "2026-11-22T13:02:06.5Z".parse().unwrap();
        let mut counter = LineCounter::new(Some(cursor), 2);
        for line in [
            "2026-11-22T13:02:06.4Z INFO counted before",
            "2026-11-22T13:02:06.5Z INFO counted before, at the cursor",
            "2026-11-22T13:02:06.6Z ERROR new\r",
            "no timestamp",
            "2026-11-22T13:02:07Z INFO past max_lines",
        ] {
            counter.add(&mut reducer, line);
        }
        assert_eq!(counter.repeated, 2);
        assert!(counter.full());
        assert_eq!(
            counter.newest,
            Some("2026-11-22T13:02:06.6Z".parse().unwrap())
        );
        let s = reducer.finish("container:x", cursor, cursor);
        assert_eq!(s.lines_total, 2);
        assert!(s.templates.iter().any(|t| t.template == "ERROR new"));
    }

    #[test]
    fn memory_and_cpu_as_docker_stats_shows_them() {
        let s: Stats = serde_json::from_str(r#"{"blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":10},{"major":8,"minor":0,"op":"Write","value":4096},{"major":8,"minor":16,"op":"write","value":1}]},"cpu_stats":{"cpu_usage":{"total_usage":3000000000},"system_cpu_usage":20000000000,"online_cpus":2},"precpu_stats":{"cpu_usage":{"total_usage":2000000000},"system_cpu_usage":18000000000},"memory_stats":{"usage":50000000,"limit":536870912,"stats":{"total_inactive_file":10000000}}}"#).unwrap();
        assert_eq!(memory_used(&s.memory_stats), Some(40_000_000));
        assert_eq!(cpu_cores(&s), Some(1.0));
        assert_eq!(blkio_written(&s), Some(4097));
    }

    #[test]
    fn a_frame_announcing_gigabytes_is_streamed_not_gathered() {
        let mut bytes = vec![1u8, 0, 0, 0];
        bytes.extend(u32::MAX.to_be_bytes());
        bytes.extend(b"2026-11-22T13:02:06Z first\n2026-11-22T13:02:07Z second\n");
        let mut reader = FrameReader::new(false);
        let mut lines = Vec::new();
        for chunk in bytes.chunks(7) {
            reader.feed(chunk, |l| lines.push(l.to_string()));
        }
        assert_eq!(
            lines,
            ["2026-11-22T13:02:06Z first", "2026-11-22T13:02:07Z second"],
            "lines of a frame still arriving are passed on"
        );
    }
}
