//! The snapshot: one node at one capture.
//!
//! Everything patrol knows about a node comes through this type, so it keeps two kinds of
//! "nothing" apart: a section that is `None` means its source was not asked or did not answer
//! (see [`Snapshot::sources`] for which and why), while a metric that is `None` inside a present
//! section means the source answered without a value (a DCGM exporter returning null). Rules treat
//! the first as "could not check" and the second as a reading.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Major.minor of the format written by this build. Readers accept any minor of the same major:
/// minors only add optional fields.
pub const SCHEMA_VERSION: &str = "1.1";
pub const SCHEMA_MAJOR: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema_version: String,
    pub fleet: String,
    pub node: String,
    /// Peer group from the fleet config ("processing", "backend"); nodes of one role are compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub captured_at: DateTime<Utc>,
    #[serde(default)]
    pub collect_duration_ms: u64,
    /// The interval this capture was scheduled at (seconds), so the archive itself says how many
    /// captures a week should hold and how much time each one stands for. Absent before 1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u64>,
    /// One entry per source asked, in the order asked.
    #[serde(default)]
    pub sources: Vec<SourceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<Vec<Gpu>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<Container>>,
    /// Container logs and server logs, reduced to templates, covering the time since the previous
    /// capture.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogStream>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub postgres: Vec<Postgres>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redis: Vec<Redis>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rabbitmq: Vec<RabbitMq>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// Processing queues read from an application's status endpoint (pending vs workers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub work_queues: Vec<WorkQueue>,
    /// Things an orchestrator creates and retires (workers, jobs) with their lifecycle times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Entity>,
    /// Scheduled jobs (cron) with their last run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cron_jobs: Vec<CronJob>,
    /// Results of user-defined Prometheus queries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<QueryResult>,
}

impl Snapshot {
    pub fn new(fleet: &str, node: &str, captured_at: DateTime<Utc>) -> Self {
        Snapshot {
            schema_version: SCHEMA_VERSION.to_string(),
            fleet: fleet.to_string(),
            node: node.to_string(),
            role: None,
            captured_at,
            collect_duration_ms: 0,
            interval_s: None,
            sources: Vec::new(),
            host: None,
            docker: None,
            gpus: None,
            containers: None,
            logs: Vec::new(),
            postgres: Vec::new(),
            redis: Vec::new(),
            rabbitmq: Vec::new(),
            endpoints: Vec::new(),
            work_queues: Vec::new(),
            entities: Vec::new(),
            cron_jobs: Vec::new(),
            queries: Vec::new(),
        }
    }

    pub fn source(&self, name: &str) -> Option<&SourceStatus> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// True when every source that was asked failed: the node was dark for this capture.
    pub fn is_dark(&self) -> bool {
        !self.sources.is_empty() && self.sources.iter().all(|s| !s.ok)
    }

    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.name == name))
    }
}

/// Node names become directory names in the archive, so they are restricted to a safe alphabet.
pub fn validate_node_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        Err(format!(
            "node name `{name}` must be letters, digits, `-`, `_` or `.` and not start with `.`"
        ))
    } else {
        Ok(())
    }
}

/// Whether one source answered, and if not, why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// "host", "docker", "gpu", "ssh", "postgres:<name>", "redis:<name>", "rabbitmq:<name>",
    /// "http:<name>" ...
    pub name: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub duration_ms: u64,
}

impl SourceStatus {
    pub fn ok(name: &str, duration_ms: u64) -> Self {
        SourceStatus {
            name: name.to_string(),
            ok: true,
            error: None,
            duration_ms,
        }
    }

    pub fn failed(name: &str, error: impl Into<String>, duration_ms: u64) -> Self {
        SourceStatus {
            name: name.to_string(),
            ok: false,
            error: Some(error.into()),
            duration_ms,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default)]
    pub uptime_s: Option<u64>,
    #[serde(default)]
    pub boot_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ntp_synced: Option<bool>,
    #[serde(default)]
    pub cpu_count: Option<u32>,
    #[serde(default)]
    pub mem_total_bytes: Option<u64>,
    #[serde(default)]
    pub mem_available_bytes: Option<u64>,
    #[serde(default)]
    pub mem_free_bytes: Option<u64>,
    #[serde(default)]
    pub swap_total_bytes: Option<u64>,
    #[serde(default)]
    pub swap_used_bytes: Option<u64>,
    #[serde(default)]
    pub swap_cached_bytes: Option<u64>,
    /// Percent of CPU time stolen by the hypervisor, from two samples a short interval apart.
    #[serde(default)]
    pub cpu_steal_pct: Option<f64>,
    #[serde(default)]
    pub load1: Option<f64>,
    #[serde(default)]
    pub disks: Vec<Disk>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub mount: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    pub size_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub used_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerInfo {
    #[serde(default)]
    pub engine_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub compose_version: Option<String>,
    /// The span of the engine's event stream read for this capture (see
    /// [`Container::oom_kills`]); absent when it was not read (a simulated engine, an archive
    /// written by an older patrol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventSpan>,
}

/// Which stretch of the engine's container events a capture counted, and why the counts may be
/// missing or short: the events say what a restart wipes from `docker inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSpan {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Why the stream could not be read (the counts are then absent), or was cut short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub index: u32,
    pub name: String,
    #[serde(default)]
    pub util_pct: Option<f64>,
    #[serde(default)]
    pub mem_used_pct: Option<f64>,
    #[serde(default)]
    pub mem_used_bytes: Option<u64>,
    #[serde(default)]
    pub mem_total_bytes: Option<u64>,
    #[serde(default)]
    pub temp_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_pct: Option<f64>,
    /// Which exporter reported it ("dcgm-exporter", "nvidia-smi").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Restarting,
    Paused,
    Exited,
    Dead,
    Removing,
}

impl ContainerState {
    pub fn label(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Restarting => "restarting",
            ContainerState::Paused => "paused",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Removing => "removing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    None,
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub start: DateTime<Utc>,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub private: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default = "default_proto")]
    pub proto: String,
}

fn default_proto() -> String {
    "tcp".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_service: Option<String>,
    /// Repository part of the image reference, without the tag.
    pub image: String,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_created: Option<DateTime<Utc>>,
    /// `org.opencontainers.image.revision` label.
    #[serde(default)]
    pub revision: Option<String>,
    pub state: ContainerState,
    #[serde(default = "default_health")]
    pub health: Health,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_streak: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_log: Vec<HealthCheck>,
    #[serde(default)]
    pub restart_count: Option<u32>,
    #[serde(default)]
    pub restart_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_killed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// OOM kills the engine reported (`oom` events) since the previous capture. Unlike
    /// `oom_killed`, which the restart policy's next start clears, a restart does not hide
    /// them. `None` when the event stream was not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u32>,
    /// Exits (`die` events) since the previous capture, restarts included; `None` as above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exits: Option<u32>,
    /// The exit code of the newest of those exits (`None` when there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<i64>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Command and arguments (never the environment: that is where secrets live).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default)]
    pub mem_usage_bytes: Option<u64>,
    /// `None` means no limit was set.
    #[serde(default)]
    pub mem_limit_bytes: Option<u64>,
    /// CPU use as a rate in cores (1.0 = one core busy).
    #[serde(default)]
    pub cpu_cores: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blkio_write_bytes: Option<u64>,
    /// Writable layer size.
    #[serde(default)]
    pub size_rw_bytes: Option<u64>,
    /// Writable layer plus image ("virtual" in `docker ps -s`).
    #[serde(default)]
    pub size_root_fs_bytes: Option<u64>,
    /// When the two sizes were measured: the engine is asked for them only every `size_every`,
    /// and between times the last measurement is carried forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_measured_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
}

fn default_health() -> Health {
    Health::None
}

impl Container {
    /// `image:tag`, or the bare image when there is no tag.
    pub fn image_ref(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}:{}", self.image, tag),
            None => self.image.clone(),
        }
    }
}

/// The log lines one source wrote since the previous capture, reduced to templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogStream {
    /// "container:<name>" or "postgres:<name>".
    pub source: String,
    /// The time span the collector read; a template absent from it says nothing about earlier
    /// or later lines.
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub lines_total: u64,
    /// Lines counted but given no template of their own because the template caps were
    /// reached: the sum of `other`.
    #[serde(default)]
    pub lines_dropped: u64,
    pub templates: Vec<LogTemplate>,
    /// Lines past the template caps, counted per level ("-" for a line without one): every
    /// line read is in a template or here, so the counts add up to `lines_total`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, u64>,
    /// Set when the collector stopped reading before the end of the window: the lines after
    /// `after` were not read (absent in archives written before the field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
}

/// Why a log stream was cut, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truncated {
    pub reason: TruncatedReason,
    /// The engine's timestamp of the last line read; `None` when no line was read.
    #[serde(default)]
    pub after: Option<DateTime<Utc>>,
    /// Bytes of the stream read before it was cut.
    #[serde(default)]
    pub bytes_read: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruncatedReason {
    /// `[logs] max_bytes` was reached.
    Bytes,
    /// `[logs] max_lines` was reached.
    Lines,
    /// `[logs] read_time`, or the Docker source's own deadline, passed.
    Time,
    /// The engine broke the stream off (the lines before the error are kept).
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogTemplate {
    /// The message with numbers, hex, UUIDs, IPs and quoted values masked.
    pub template: String,
    #[serde(default)]
    pub level: Option<String>,
    pub count: u64,
    pub first_ts: Option<DateTime<Utc>>,
    pub last_ts: Option<DateTime<Utc>>,
    /// The newest timestamp as written in the line, kept verbatim so a line dated in the future
    /// can be shown as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts_raw: Option<String>,
    /// Process ids seen (bounded; the lowest and highest are always kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// Values of configured fields (e.g. `bar_uuid`) with how often each was seen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, BTreeMap<String, u64>>,
    /// A few lines as written (already redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
}

impl LogTemplate {
    /// A template not yet counted: the collector and the simulator fill it line by line.
    pub fn new(template: String, level: Option<String>) -> LogTemplate {
        LogTemplate {
            template,
            level,
            count: 0,
            first_ts: None,
            last_ts: None,
            last_ts_raw: None,
            pids: Vec::new(),
            fields: BTreeMap::new(),
            samples: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Postgres {
    /// The container or service name the database runs as.
    pub name: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub active_connections: Option<u64>,
    #[serde(default)]
    pub databases: Vec<DatabaseSize>,
    /// `pg_settings` values as PostgreSQL shows them ("128MB", "on").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
    #[serde(default)]
    pub rows_inserted_total: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseSize {
    pub name: String,
    pub size_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redis {
    pub name: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub used_memory_bytes: Option<u64>,
    #[serde(default)]
    pub dbs: Vec<RedisDb>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watched: Vec<WatchedKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisDb {
    pub index: u32,
    pub keys: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchedKey {
    pub db: u32,
    pub key: String,
    pub exists: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_missing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RabbitMq {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub queues: Vec<Queue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    pub name: String,
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub messages_ready: Option<u64>,
    pub messages_unacked: Option<u64>,
    pub consumers: Option<u64>,
    #[serde(default)]
    pub publish_total: Option<u64>,
    #[serde(default)]
    pub deliver_total: Option<u64>,
    #[serde(default)]
    pub redeliver_total: Option<u64>,
    #[serde(default)]
    pub publish_rate: Option<f64>,
    #[serde(default)]
    pub deliver_rate: Option<f64>,
    #[serde(default)]
    pub redeliver_rate: Option<f64>,
}

fn default_vhost() -> String {
    "/".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    /// HTTP status; 0 when nothing answered.
    pub status: u16,
    #[serde(default)]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A processing queue as its application reports it (seed 003: pending work, zero workers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkQueue {
    pub name: String,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub completed: Option<u64>,
    #[serde(default)]
    pub pending: Option<u64>,
    #[serde(default)]
    pub failed: Option<u64>,
    /// Workers busy right now.
    #[serde(default)]
    pub processing_workers: Option<u64>,
    /// Configured throughput, for ETAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_per_min: Option<f64>,
}

/// A worker, job or task an orchestrator manages (seed 004), with its lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub id: String,
    pub kind: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub promoted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub terminated_at: Option<DateTime<Utc>>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_reason: Option<String>,
    /// Id and status at the provider that runs it (to find orphans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<String>,
    #[serde(default)]
    pub tasks: u64,
}

/// A scheduled job and how its last run went (seed 002: cleanup, backups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronJob {
    pub name: String,
    /// Cron expression.
    pub schedule: String,
    #[serde(default)]
    pub last_run: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_success: Option<bool>,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// What the last run reported (e.g. "freed_mb" = 257).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outcome: BTreeMap<String, f64>,
}

/// One sample of a user-defined query: its name, the labels that tell samples apart, the value
/// (`None` for NaN or no sample).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub value: Option<f64>,
}
