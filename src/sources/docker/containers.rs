//! The engine's answers about containers (the list, an inspection, stats) as patrol reads them,
//! and how they become a snapshot's [`Container`]. Only the fields patrol keeps are named, so
//! the environment, where passwords live, is never deserialised.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::{Container, ContainerState, Health, HealthCheck, Port};

#[derive(Deserialize)]
pub(super) struct Version {
    #[serde(rename = "Version")]
    pub(super) version: Option<String>,
    #[serde(rename = "ApiVersion")]
    pub(super) api_version: Option<String>,
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
pub(super) struct Listed {
    #[serde(rename = "Id")]
    pub(super) id: String,
    #[serde(rename = "Names", default)]
    pub(super) names: Vec<String>,
    #[serde(rename = "Image")]
    image: String,
    #[serde(rename = "ImageID")]
    image_id: Option<String>,
    #[serde(rename = "State")]
    pub(super) state: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Ports", default)]
    ports: Vec<ListedPort>,
    // Left out by the engine when it is 0.
    #[serde(rename = "SizeRw")]
    pub(super) size_rw: Option<u64>,
    #[serde(rename = "SizeRootFs")]
    pub(super) size_root_fs: Option<u64>,
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
pub(super) struct InspectState {
    #[serde(rename = "OOMKilled")]
    oom_killed: Option<bool>,
    #[serde(rename = "ExitCode")]
    exit_code: Option<i64>,
    #[serde(rename = "StartedAt")]
    started_at: Option<String>,
    /// When the container last stopped ("0001-01-01T00:00:00Z" when it never did).
    #[serde(rename = "FinishedAt")]
    pub(super) finished_at: Option<String>,
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
pub(super) struct InspectConfig {
    /// With a TTY the log stream is raw; without, it is multiplexed in frames.
    #[serde(rename = "Tty", default)]
    pub(super) tty: bool,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(super) struct Inspect {
    #[serde(rename = "RestartCount")]
    restart_count: Option<u32>,
    #[serde(rename = "State")]
    pub(super) state: InspectState,
    #[serde(rename = "HostConfig")]
    host_config: Option<HostConfig>,
    #[serde(rename = "Config")]
    pub(super) config: Option<InspectConfig>,
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
pub(super) struct Stats {
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

pub(super) fn container(c: Listed, inspect: Inspect, stats: Option<Stats>) -> Container {
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
        // Filled in from the engine's events, when they could be read.
        oom_kills: None,
        exits: None,
        last_exit_code: None,
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
    fn memory_and_cpu_as_docker_stats_shows_them() {
        let s: Stats = serde_json::from_str(r#"{"blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":10},{"major":8,"minor":0,"op":"Write","value":4096},{"major":8,"minor":16,"op":"write","value":1}]},"cpu_stats":{"cpu_usage":{"total_usage":3000000000},"system_cpu_usage":20000000000,"online_cpus":2},"precpu_stats":{"cpu_usage":{"total_usage":2000000000},"system_cpu_usage":18000000000},"memory_stats":{"usage":50000000,"limit":536870912,"stats":{"total_inactive_file":10000000}}}"#).unwrap();
        assert_eq!(memory_used(&s.memory_stats), Some(40_000_000));
        assert_eq!(cpu_cores(&s), Some(1.0));
        assert_eq!(blkio_written(&s), Some(4097));
    }
}
