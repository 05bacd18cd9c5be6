//! The scenario format (docs/scenario-format.md): a fleet, its nodes and what happens to them
//! over time, written declaratively. Parsed with serde from TOML, so every mistake comes back
//! with its line and column; quantities are checked for their unit as they are read.

mod check;
mod quantity;

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{self, Deserializer};

pub use crate::units::{MAX_SPAN_SECS, TimeSpec, parse_time};
pub use check::{
    MAX_EPHEMERAL_LISTED, MAX_EXTRA_CONTAINERS, MAX_NODES, MAX_ROUNDS, MAX_SNAPSHOTS, check,
};
pub use quantity::{Bytes, BytesDim, Dim, Oscillation, Plain, PlainDim, Q, Rate, Secs, Step, Traj};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub from: TimeSpec,
    pub to: TimeSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub fleet: String,
    #[serde(default = "utc")]
    pub timezone: TzName,
    #[serde(default)]
    pub seed: u64,
    pub start: TimeSpec,
    pub end: TimeSpec,
    pub interval: Secs,
    #[serde(default)]
    pub jitter: Secs,
    #[serde(default)]
    pub gaps: Vec<Span>,
    #[serde(default)]
    pub extra_captures: Vec<TimeSpec>,
}

fn utc() -> TzName {
    TzName(chrono_tz::UTC)
}

/// An IANA time zone name ("America/Sao_Paulo"), checked when read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TzName(pub Tz);

impl<'de> Deserialize<'de> for TzName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Tz>().map(TzName).map_err(|_| {
            de::Error::custom(format!(
                "`{text}` is not an IANA time zone (e.g. America/Sao_Paulo, UTC)"
            ))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The node boots at `at`: uptime restarts, containers restart, memory resets.
    Reboot,
    /// Nothing answers from `at` until `until`.
    Dark,
    /// The node answers but runs no containers; host metrics read null.
    ContainersDown,
    /// One source (`source`) fails from `at` until `until`.
    SourceDown,
    /// One container (`container`) restarts at `at`.
    Restart,
    /// The kernel kills `container` for memory at `at` (exit code 137); its restart policy
    /// decides whether it runs again.
    OomKill,
    /// `container` exits with `code` at `at` and stays exited until `until`.
    Exit,
    /// `container` exits with `code` and is restarted every `every` from `at` until `until`.
    CrashLoop,
    /// `container`'s health check fails from `at` until `until`, saying `output`.
    Unhealthy,
    /// A read bound cuts `container`'s log: the last `unread` of each window goes unread.
    LogCut,
}

impl EventKind {
    /// The kinds that happen to one container, named by `container`.
    pub fn needs_container(self) -> bool {
        matches!(
            self,
            EventKind::Restart
                | EventKind::OomKill
                | EventKind::Exit
                | EventKind::CrashLoop
                | EventKind::Unhealthy
                | EventKind::LogCut
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Reboot => "reboot",
            EventKind::Dark => "dark",
            EventKind::ContainersDown => "containers-down",
            EventKind::SourceDown => "source-down",
            EventKind::Restart => "restart",
            EventKind::OomKill => "oom-kill",
            EventKind::Exit => "exit",
            EventKind::CrashLoop => "crash-loop",
            EventKind::Unhealthy => "unhealthy",
            EventKind::LogCut => "log-cut",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub at: TimeSpec,
    #[serde(default)]
    pub until: Option<TimeSpec>,
    pub kind: EventKind,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// Exit code of an `exit` or `crash-loop` (default 1).
    #[serde(default)]
    pub code: Option<i64>,
    /// How often a `crash-loop` restarts the container.
    #[serde(default)]
    pub every: Option<Secs>,
    /// What a failing health check (`unhealthy`) prints.
    #[serde(default)]
    pub output: Option<String>,
    /// How much of the end of each log window a `log-cut` leaves unread.
    #[serde(default)]
    pub unread: Option<Secs>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    pub mount: String,
    pub size: Q<BytesDim>,
    pub used: Bytes,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub mem_total: Q<BytesDim>,
    pub mem_available: Bytes,
    #[serde(default)]
    pub mem_free: Option<Bytes>,
    #[serde(default)]
    pub swap_total: Option<Q<BytesDim>>,
    #[serde(default)]
    pub swap_used: Option<Bytes>,
    #[serde(default)]
    pub swap_cached: Option<Bytes>,
    #[serde(default)]
    pub cpu_steal_pct: Option<Plain>,
    #[serde(default)]
    pub load1: Option<Plain>,
    #[serde(default)]
    pub cpus: Option<u32>,
    #[serde(default)]
    pub clock_offset_ms: Option<Plain>,
    #[serde(default)]
    pub ntp_synced: Option<bool>,
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSpec {
    #[serde(default)]
    pub engine_version: Option<String>,
    #[serde(default)]
    pub compose_version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    #[serde(default)]
    pub index: u32,
    pub name: String,
    #[serde(default)]
    pub mem_total: Option<Q<BytesDim>>,
    pub util_pct: Plain,
    pub mem_used_pct: Plain,
    pub temp_c: Plain,
    #[serde(default)]
    pub fan_pct: Option<Plain>,
    #[serde(default)]
    pub exporter: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionChange {
    pub at: TimeSpec,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// The message as written, with `{field}` placeholders filled from `fields`.
    pub message: String,
    #[serde(default)]
    pub level: Option<String>,
    /// One line every this long while active.
    pub every: Secs,
    #[serde(default)]
    pub from: Option<TimeSpec>,
    #[serde(default)]
    pub until: Option<TimeSpec>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// First process id; each line advances it by `pid_step`.
    #[serde(default)]
    pub pid_start: Option<u32>,
    #[serde(default)]
    pub pid_step: Option<u32>,
    /// Lines are stamped this far from the true time (a wrong clock in the writer).
    #[serde(default)]
    pub ts_offset: Option<Secs>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub compose_project: Option<String>,
    #[serde(default = "running")]
    pub state: String,
    #[serde(default)]
    pub health: Option<String>,
    /// Time between two health checks (default 30s, Docker's own default); setting it, or an
    /// `unhealthy` event, makes the snapshots carry the failing streak and the health log.
    #[serde(default)]
    pub health_interval: Option<Secs>,
    /// Failed checks in a row before the health reads `unhealthy` (default 3, as Docker).
    #[serde(default)]
    pub health_retries: Option<u32>,
    #[serde(default)]
    pub restart_policy: Option<String>,
    #[serde(default)]
    pub mem_limit: Option<Q<BytesDim>>,
    pub mem: Bytes,
    #[serde(default)]
    pub cpu: Option<Plain>,
    #[serde(default)]
    pub size_rw: Option<Bytes>,
    /// Bytes written to block devices since the container started (`docker stats` BLOCK I/O):
    /// a counter that starts again at each restart.
    #[serde(default)]
    pub blkio_write: Option<Bytes>,
    #[serde(default)]
    pub image_size: Option<Q<BytesDim>>,
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub from: Option<TimeSpec>,
    #[serde(default)]
    pub until: Option<TimeSpec>,
    #[serde(default)]
    pub versions: Vec<VersionChange>,
    #[serde(default)]
    pub log: Vec<LogSpec>,
}

fn running() -> String {
    "running".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    pub name: String,
    pub size: Bytes,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    pub name: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub version: Option<String>,
    pub active_connections: Plain,
    #[serde(default)]
    pub databases: Vec<DatabaseSpec>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Rows inserted per second; the snapshot carries the running total.
    #[serde(default)]
    pub insert_rate: Option<Plain>,
    #[serde(default)]
    pub log: Vec<LogSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedKeySpec {
    pub db: u32,
    pub key: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
    /// Spans during which the key is absent.
    #[serde(default)]
    pub absent: Vec<Span>,
    /// Field name -> spans during which that field is absent.
    #[serde(default)]
    pub fields_absent: BTreeMap<String, Vec<Span>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    pub name: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub used_memory: Option<Bytes>,
    /// DB index (as a string key, "0") -> key count.
    #[serde(default)]
    pub dbs: BTreeMap<String, Plain>,
    #[serde(default)]
    pub watched: Vec<WatchedKeySpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    pub name: String,
    pub ready: Plain,
    #[serde(default)]
    pub unacked: Option<Plain>,
    pub consumers: Plain,
    #[serde(default)]
    pub publish_rate: Option<Plain>,
    #[serde(default)]
    pub deliver_rate: Option<Plain>,
    #[serde(default)]
    pub redeliver_rate: Option<Plain>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RabbitSpec {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    pub queues: Vec<QueueSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    pub name: String,
    pub url: String,
    pub status: Plain,
    #[serde(default)]
    pub latency_ms: Option<Plain>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    /// When the node last booted before the scenario starts.
    #[serde(default)]
    pub booted: Option<TimeSpec>,
    /// Whether an ssh probe is part of each capture.
    #[serde(default)]
    pub ssh: bool,
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(default)]
    pub host: Option<HostSpec>,
    #[serde(default)]
    pub docker: Option<DockerSpec>,
    #[serde(default)]
    pub gpu: Vec<GpuSpec>,
    #[serde(default)]
    pub container: Vec<ContainerSpec>,
    #[serde(default)]
    pub postgres: Vec<PostgresSpec>,
    #[serde(default)]
    pub redis: Vec<RedisSpec>,
    #[serde(default)]
    pub rabbitmq: Vec<RabbitSpec>,
    #[serde(default)]
    pub endpoint: Vec<EndpointSpec>,
    #[serde(default)]
    pub work_queue: Vec<WorkQueueSpec>,
    #[serde(default)]
    pub job: Vec<JobSpec>,
    #[serde(default)]
    pub entity: Vec<EntitySpec>,
    #[serde(default)]
    pub ephemeral: Vec<EphemeralSpec>,
}

/// Short-lived containers a worker farm starts one after another: one is created every
/// `every`, runs for `lives`, exits with `code` and stays listed for `keep` after it exits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EphemeralSpec {
    /// Names are this prefix and a number: `task-1`, `task-2`, …
    pub prefix: String,
    pub image: String,
    #[serde(default)]
    pub tag: Option<String>,
    pub every: Secs,
    pub lives: Secs,
    #[serde(default)]
    pub code: Option<i64>,
    /// The first one is created then; without it the farm is already running at the start.
    #[serde(default)]
    pub from: Option<TimeSpec>,
    /// None is created from then on.
    #[serde(default)]
    pub until: Option<TimeSpec>,
    #[serde(default)]
    pub keep: Option<Secs>,
    #[serde(default)]
    pub mem: Option<Bytes>,
    #[serde(default)]
    pub cpu: Option<Plain>,
}

/// A processing queue an application reports (seed 003).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkQueueSpec {
    pub name: String,
    pub pending: Plain,
    pub workers: Plain,
    #[serde(default)]
    pub completed: Option<Plain>,
    #[serde(default)]
    pub failed: Option<Plain>,
}

/// A scheduled job with the runs it made; runs from `failing_from` on fail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    pub schedule: String,
    #[serde(default)]
    pub runs: Vec<TimeSpec>,
    #[serde(default)]
    pub failing_from: Option<TimeSpec>,
    #[serde(default)]
    pub freed_mb: Option<f64>,
}

/// A worker an orchestrator manages, with its lifecycle (seed 004).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    pub id: String,
    pub kind: String,
    pub created: TimeSpec,
    #[serde(default)]
    pub promoted: Option<TimeSpec>,
    #[serde(default)]
    pub terminated: Option<TimeSpec>,
    #[serde(default)]
    pub tasks: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub scenario: Header,
    #[serde(default)]
    pub node: Vec<NodeSpec>,
    /// Nodes stamped from one template: `count` copies named `<prefix>001`…, for benchmarks.
    #[serde(default)]
    pub node_template: Vec<NodeTemplate>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTemplate {
    pub prefix: String,
    pub count: u32,
    /// Copies of the first container with a number appended, to reach a container count.
    #[serde(default)]
    pub extra_containers: u32,
    pub node: NodeSpec,
}
