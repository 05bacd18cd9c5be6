//! The Docker Engine API over its unix socket: engine version, and per container its state,
//! health, restarts, image and revision, memory and CPU, and writable-layer size.
//!
//! The container's environment (`Config.Env`) is never deserialised: that is where passwords
//! live, and what is not read cannot leak into a snapshot.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::config::{DockerEndpoint, LogSettings, SshSettings};
use crate::model::{Container, ContainerState, DockerInfo, Health, HealthCheck, LogStream, Port};
use crate::sources::logs::Reducer;
use crate::sources::ssh::Tunnel;

/// Answers from one engine.
pub struct Engine {
    pub info: DockerInfo,
    pub containers: Vec<Container>,
    /// One stream per container, covering the requested window.
    pub logs: Vec<LogStream>,
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

    async fn response(&self, path: &str) -> Result<reqwest::Response, String> {
        self.response_unless_gone(path)
            .await?
            .ok_or_else(|| format!("{} GET {path}: HTTP 404 Not Found", self.endpoint))
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

    /// Streams a container's log lines written in the window into a reducer: the body is read
    /// chunk by chunk, so only `max_lines` lines are ever parsed, however many were written.
    async fn logs(
        &self,
        id: &str,
        tty: bool,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        reducer: &mut Reducer<'_>,
    ) -> Result<(), String> {
        let secs =
            |t: DateTime<Utc>| format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
        let path = format!(
            "/containers/{id}/logs?stdout=1&stderr=1&timestamps=1&since={}&until={}",
            secs(since),
            secs(until)
        );
        let mut response = self.response(&path).await?;
        let mut frames = FrameReader::new(tty);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failed(&path, e))? {
            frames.feed(&chunk, |line| add_docker_line(reducer, line));
        }
        frames.finish(|line| add_docker_line(reducer, line));
        Ok(())
    }
}

/// A line as the engine sends it with `timestamps=1`: "2026-11-22T13:02:06.569759951Z message".
fn add_docker_line(reducer: &mut Reducer<'_>, line: &str) {
    let (at, text) = match line.split_once(' ') {
        Some((stamp, rest)) => match DateTime::parse_from_rfc3339(stamp) {
            Ok(t) => (Some(t.with_timezone(&Utc)), rest),
            Err(_) => (None, line),
        },
        None => (None, line),
    };
    reducer.add(at, text.trim_end_matches('\r'));
}

/// Splits the engine's log stream into lines: without a TTY each payload comes in a frame with
/// an 8-byte header (stream, 3 zero bytes, big-endian length). Payloads are passed on as they
/// arrive rather than gathered whole, so a header announcing 4 GB costs nothing but the bytes
/// that actually come, and lines are cut at 16 KB.
struct FrameReader {
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
    fn new(tty: bool) -> Self {
        FrameReader {
            tty,
            header: [0; 8],
            header_len: 0,
            remaining: 0,
            line: Vec::new(),
        }
    }

    fn feed(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&str)) {
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

    fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.line.is_empty() {
            emit(&String::from_utf8_lossy(&self.line));
            self.line.clear();
        }
    }
}

/// Collects from one engine, giving up after `timeout`. `logs` is the window of log lines to
/// read, when wanted.
pub async fn collect(
    endpoint: &DockerEndpoint,
    ssh: Option<(&SshSettings, &Path)>,
    logs: Option<(DateTime<Utc>, DateTime<Utc>)>,
    settings: &LogSettings,
    timeout: Duration,
) -> Result<Engine, String> {
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
            collect_with(&api, logs, settings, timeout).await
        }
        DockerEndpoint::Tcp(host) => {
            let api = Api {
                budget: std::sync::Arc::new(super::http::Budget::new(MAX_CAPTURE_BYTES)),
                client: build(reqwest::Client::builder())?,
                base: format!("http://{host}"),
                endpoint: described.clone(),
                timeout,
            };
            collect_with(&api, logs, settings, timeout).await
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
            let result = collect_with(&api, logs, settings, timeout).await;
            drop(tunnel);
            result
        }
    }
}

async fn collect_with(
    api: &Api,
    logs: Option<(DateTime<Utc>, DateTime<Utc>)>,
    settings: &LogSettings,
    timeout: Duration,
) -> Result<Engine, String> {
    let work = async {
        let version: Version = api.get("/version").await?;
        let listed: Vec<Listed> = api.get("/containers/json?all=1&size=1").await?;
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
            let stream = match (&inspect, logs) {
                (Ok(Some(i)), Some((since, until))) if c.state != "created" => {
                    let mut reducer = Reducer::new(settings);
                    let tty = i.config.as_ref().is_some_and(|c| c.tty);
                    let name = c
                        .names
                        .first()
                        .map(|n| n.trim_start_matches('/'))
                        .unwrap_or(&c.id);
                    match api.logs(&c.id, tty, since, until, &mut reducer).await {
                        Ok(()) => Some(reducer.finish(&format!("container:{name}"), since, until)),
                        Err(e) => {
                            // stderr is not a snapshot: mask what the engine echoed here too.
                            tracing::warn!("{}", super::redact::builtin_text(&e.to_string()));
                            None
                        }
                    }
                }
                _ => None,
            };
            (inspect, stats, stream)
        });
        let details = futures_join_all(details).await;
        let mut containers = Vec::with_capacity(listed.len());
        let mut streams = Vec::new();
        for (c, (inspect, stats, stream)) in listed.into_iter().zip(details) {
            let Some(inspect) = inspect? else {
                tracing::info!(
                    "{}: container {} was removed during the capture",
                    api.endpoint,
                    c.id
                );
                continue;
            };
            containers.push(container(c, inspect, stats));
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
