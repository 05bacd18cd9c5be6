//! The scenario format (docs/scenario-format.md): a fleet, its nodes and what happens to them
//! over time, written declaratively. Parsed with serde from TOML, so every mistake comes back
//! with its line and column; quantities are checked for their unit as they are read.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::units::{self, Dimension};

use crate::units::bounded_secs;
pub use crate::units::{MAX_SPAN_SECS, TimeSpec, parse_time};

/// Seconds, read from "15m", "74s", "2h".
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Secs(pub f64);

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        bounded_secs(&text).map(Secs).map_err(de::Error::custom)
    }
}

/// The dimension a quantity is read in.
pub trait Dim {
    const DIM: Dimension;
}
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BytesDim;
impl Dim for BytesDim {
    const DIM: Dimension = Dimension::Bytes;
}
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PlainDim;
impl Dim for PlainDim {
    const DIM: Dimension = Dimension::Plain;
}

/// A number in dimension `D`, written as a number or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Q<D>(pub f64, PhantomData<D>);

impl<D> Q<D> {
    pub fn new(v: f64) -> Self {
        Q(v, PhantomData)
    }
}

struct QVisitor<D>(PhantomData<D>);

impl<'de, D: Dim> de::Visitor<'de> for QVisitor<D> {
    type Value = Q<D>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match D::DIM {
            Dimension::Bytes => f.write_str("a size such as \"414MB\""),
            _ => f.write_str("a number"),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Q<D>, E> {
        Ok(Q::new(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Q<D>, E> {
        Ok(Q::new(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Q<D>, E> {
        Ok(Q::new(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Q<D>, E> {
        units::parse(v, D::DIM).map(Q::new).map_err(E::custom)
    }
}

impl<'de, D: Dim> Deserialize<'de> for Q<D> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        d.deserialize_any(QVisitor(PhantomData))
    }
}

/// A rate "+2.7MB/h" in dimension `D`, stored per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate<D>(pub f64, PhantomData<D>);

impl<'de, D: Dim> Deserialize<'de> for Rate<D> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        let text = String::deserialize(d)?;
        units::parse_rate_per_sec(&text, D::DIM)
            .map(|v| Rate(v, PhantomData))
            .map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "D: Dim"))]
pub struct Oscillation<D: Dim> {
    pub amplitude: Q<D>,
    pub period: Secs,
    #[serde(default = "sine")]
    pub shape: String,
}

fn sine() -> String {
    "sine".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "D: Dim"))]
pub struct Step<D: Dim> {
    pub at: TimeSpec,
    #[serde(default)]
    pub set: Option<Q<D>>,
    #[serde(default)]
    pub rate: Option<Rate<D>>,
    #[serde(default)]
    pub null: Option<bool>,
    #[serde(default)]
    pub noise: Option<Q<D>>,
}

/// How a number moves over time. A plain number or string is a constant.
#[derive(Debug, Clone)]
pub struct Traj<D: Dim> {
    pub start: f64,
    pub rate: f64,
    pub noise: f64,
    pub oscillate: Option<Oscillation<D>>,
    pub steps: Vec<Step<D>>,
    pub reboot_to: Option<f64>,
    pub null: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub decimals: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "D: Dim"))]
struct TrajTable<D: Dim> {
    start: Q<D>,
    #[serde(default)]
    rate: Option<Rate<D>>,
    #[serde(default)]
    noise: Option<Q<D>>,
    #[serde(default)]
    oscillate: Option<Oscillation<D>>,
    #[serde(default)]
    steps: Vec<Step<D>>,
    #[serde(default)]
    reboot_to: Option<Q<D>>,
    #[serde(default)]
    null: bool,
    #[serde(default)]
    min: Option<Q<D>>,
    #[serde(default)]
    max: Option<Q<D>>,
    #[serde(default)]
    decimals: Option<u32>,
}

enum TrajRepr<D: Dim> {
    Constant(Q<D>),
    Table(TrajTable<D>),
}

impl<D: Dim> Traj<D> {
    pub fn constant(v: f64) -> Self {
        Traj {
            start: v,
            rate: 0.0,
            noise: 0.0,
            oscillate: None,
            steps: Vec::new(),
            reboot_to: None,
            null: false,
            min: None,
            max: None,
            decimals: None,
        }
    }
}

impl<'de, D: Dim> Deserialize<'de> for Traj<D> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        // Untagged enums hide the inner error; read a generic value first and report precisely.
        let value = toml::Value::deserialize(d)?;
        let repr: TrajRepr<D> = match &value {
            toml::Value::Table(_) => TrajRepr::Table(
                TrajTable::deserialize(value.clone())
                    .map_err(|e| de::Error::custom(e.message().to_string()))?,
            ),
            _ => TrajRepr::Constant(
                Q::<D>::deserialize(value.clone())
                    .map_err(|e| de::Error::custom(e.message().to_string()))?,
            ),
        };
        Ok(match repr {
            TrajRepr::Constant(q) => Traj::constant(q.0),
            TrajRepr::Table(t) => Traj {
                start: t.start.0,
                rate: t.rate.map(|r| r.0).unwrap_or(0.0),
                noise: t.noise.map(|n| n.0).unwrap_or(0.0),
                oscillate: t.oscillate,
                steps: t.steps,
                reboot_to: t.reboot_to.map(|q| q.0),
                null: t.null,
                min: t.min.map(|q| q.0),
                max: t.max.map(|q| q.0),
                decimals: t.decimals,
            },
        })
    }
}

pub type Bytes = Traj<BytesDim>;
pub type Plain = Traj<PlainDim>;

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
    #[serde(default)]
    pub restart_policy: Option<String>,
    #[serde(default)]
    pub mem_limit: Option<Q<BytesDim>>,
    pub mem: Bytes,
    #[serde(default)]
    pub cpu: Option<Plain>,
    #[serde(default)]
    pub size_rw: Option<Bytes>,
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

/// What one scenario may ask for: beyond these a typo (`count = 1000000000`) would try to
/// allocate the machine away instead of being refused.
pub const MAX_NODES: u64 = 10_000;
pub const MAX_EXTRA_CONTAINERS: u64 = 10_000;
pub const MAX_ROUNDS: f64 = 1_000_000.0;
pub const MAX_SNAPSHOTS: f64 = 20_000_000.0;

/// Checks what serde cannot: node names given twice and the scenario's size. Every problem is
/// returned with its line; nothing is expanded or allocated before the sizes are known to fit.
pub fn check(text: &str, s: &Scenario) -> Vec<crate::error::Problem> {
    use crate::tomlread::{Ctx, Fields};
    let mut ctx = Ctx::new(text);
    let Some(doc) = ctx.parse() else {
        return ctx.problems;
    };
    let mut top = Fields::new(doc.get_ref(), doc.span(), "the scenario");
    let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for (table, span) in top.tables(&mut ctx, "node") {
        let mut f = Fields::new(table, span.clone(), "[[node]]");
        if let Some(name) = f.string(&mut ctx, "name", false)
            && !seen.insert(name.get_ref().clone())
        {
            ctx.report(
                name.span(),
                format!("node `{}` is defined twice", name.get_ref()),
            );
        }
    }
    let mut nodes = s.node.len() as u64;
    for ((table, span), t) in top
        .tables(&mut ctx, "node_template")
        .into_iter()
        .zip(&s.node_template)
    {
        let mut f = Fields::new(table, span.clone(), "[[node_template]]");
        let count = f.number(&mut ctx, "count");
        let at = count.as_ref().map(|c| c.span()).unwrap_or(span.clone());
        nodes += u64::from(t.count);
        if u64::from(t.count) > MAX_NODES {
            ctx.report(
                at.clone(),
                format!(
                    "[[node_template]]: `count` is {}; at most {MAX_NODES}",
                    t.count
                ),
            );
        } else {
            let width = t.count.to_string().len().max(3);
            for i in 1..=t.count {
                let name = format!("{}{:0width$}", t.prefix, i);
                if !seen.insert(name.clone()) {
                    ctx.report(
                        at.clone(),
                        format!("[[node_template]]: node `{name}` is defined twice"),
                    );
                    break;
                }
            }
        }
        if u64::from(t.extra_containers) > MAX_EXTRA_CONTAINERS {
            let at = f
                .value("extra_containers")
                .map(|v| v.span())
                .unwrap_or(span.clone());
            ctx.report(
                at,
                format!(
                    "[[node_template]]: `extra_containers` is {}; at most {MAX_EXTRA_CONTAINERS}",
                    t.extra_containers
                ),
            );
        }
    }
    if nodes > MAX_NODES {
        ctx.report(
            doc.span().start..doc.span().start,
            format!("the scenario has {nodes} nodes; at most {MAX_NODES}"),
        );
    }
    let h = &s.scenario;
    let header_span = top
        .table(&mut ctx, "scenario", "[scenario]")
        .and_then(|mut f| f.value("interval").map(|v| v.span()))
        .unwrap_or(doc.span().start..doc.span().start);
    if h.interval.0 >= 1.0 {
        let epoch = DateTime::<Utc>::default();
        let start = h.start.resolve(h.timezone.0, epoch);
        let end = h.end.resolve(h.timezone.0, start);
        let rounds = ((end - start).num_seconds().max(0) as f64 / h.interval.0).floor()
            + 1.0
            + h.extra_captures.len() as f64;
        if rounds > MAX_ROUNDS {
            ctx.report(
                header_span.clone(),
                format!(
                    "[scenario]: from start to end every {} is {rounds} captures; at most {MAX_ROUNDS}",
                    units::fmt_duration(h.interval.0)
                ),
            );
        } else if rounds * nodes as f64 > MAX_SNAPSHOTS {
            ctx.report(
                header_span,
                format!(
                    "[scenario]: {rounds} captures of {nodes} nodes is {} snapshots; at most {MAX_SNAPSHOTS}",
                    rounds * nodes as f64
                ),
            );
        }
    }
    ctx.problems
}

#[cfg(test)]
mod tests {
    use crate::tomlread::arbitrary::tomlish;
    use proptest::prelude::*;

    const HEADER: &str = "[scenario]\nfleet = \"f\"\nstart = \"2026-03-01 00:00\"\nend = \"2026-03-01 01:00\"\ninterval = \"15m\"\n";

    fn problems(text: &str) -> String {
        match crate::simulate::parse(std::path::Path::new("s.toml"), text) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn duplicate_nodes_are_refused_with_their_lines() {
        let text = format!(
            "{HEADER}[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"\n[[node_template]]\nprefix = \"a\"\ncount = 2\n[node_template.node]\nname = \"x\"\n[[node_template]]\nprefix = \"a\"\ncount = 1\n[node_template.node]\nname = \"y\"\n"
        );
        let err = problems(&text);
        assert!(
            err.contains("s.toml:9:8: node `a` is defined twice"),
            "{err}"
        );
        assert!(
            err.contains("s.toml:17:9: [[node_template]]: node `a001` is defined twice"),
            "{err}"
        );
    }

    #[test]
    fn a_huge_scenario_is_refused_before_anything_is_allocated() {
        let nodes = format!(
            "{HEADER}[[node_template]]\nprefix = \"n\"\ncount = 1000000000\nextra_containers = 1000000000\n[node_template.node]\nname = \"x\"\n"
        );
        let err = problems(&nodes);
        assert!(
            err.contains("s.toml:8:9: [[node_template]]: `count` is 1000000000"),
            "{err}"
        );
        assert!(err.contains("s.toml:9:20"), "{err}");
        let captures = HEADER
            .replace("2026-03-01 01:00", "2090-01-01 00:00")
            .replace("15m", "1s");
        let err = problems(&format!("{captures}[[node]]\nname = \"a\"\n"));
        assert!(
            err.contains("s.toml:5:12") && err.contains("captures"),
            "{err}"
        );
        let far = HEADER.replace("2026-03-01 01:00", "+99999999999999d");
        assert!(problems(&far).contains("out of range"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn loading_any_scenario_text_returns(text in tomlish()) {
            let _ = crate::simulate::parse(std::path::Path::new("s.toml"), &text);
        }
    }
}
