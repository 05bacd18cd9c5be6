//! Which numbers a snapshot holds, under which entity and metric name. Rules select series by
//! these names, so this is the vocabulary of rules/*.toml; the names, units and labels live in
//! [`super::catalogue`], and `docs/snapshot-format.md` lists them.

use super::catalogue;
use crate::model::{Container, ContainerState, Health, Host, Snapshot};
use crate::units::Dimension;

/// One reading: `None` is a null the source reported; absence (no reading at all) means the
/// source or entity was not there.
pub struct Reading {
    pub entity: String,
    pub metric: &'static str,
    pub value: Option<f64>,
}

fn push(out: &mut Vec<Reading>, entity: &str, metric: &'static str, value: Option<f64>) {
    out.push(Reading {
        entity: entity.to_string(),
        metric,
        value,
    });
}

fn u(v: Option<u64>) -> Option<f64> {
    v.map(|x| x as f64)
}

/// Every numeric reading in a snapshot.
pub fn readings(s: &Snapshot) -> Vec<Reading> {
    let mut out = Vec::with_capacity(64);
    if let Some(h) = &s.host {
        host(&mut out, h);
    }
    gpus(&mut out, s);
    containers(&mut out, s);
    postgres(&mut out, s);
    redis(&mut out, s);
    rabbitmq(&mut out, s);
    endpoints(&mut out, s);
    work_queues(&mut out, s);
    queries(&mut out, s);
    logs(&mut out, s);
    out
}

/// Memory, swap, steal, load and clock of the host, and each disk.
fn host(out: &mut Vec<Reading>, h: &Host) {
    push(out, "host", "uptime_s", u(h.uptime_s));
    push(out, "host", "mem_total_bytes", u(h.mem_total_bytes));
    push(out, "host", "mem_available_bytes", u(h.mem_available_bytes));
    push(out, "host", "mem_free_bytes", u(h.mem_free_bytes));
    push(out, "host", "swap_used_bytes", u(h.swap_used_bytes));
    push(out, "host", "swap_cached_bytes", u(h.swap_cached_bytes));
    push(out, "host", "cpu_steal_pct", h.cpu_steal_pct);
    push(out, "host", "load1", h.load1);
    if h.clock_offset_ms.is_some() {
        push(out, "host", "clock_offset_ms", h.clock_offset_ms);
    }
    for d in &h.disks {
        let e = format!("disk:{}", d.mount);
        push(out, &e, "used_pct", d.used_pct);
        push(out, &e, "used_bytes", u(d.used_bytes));
        push(out, &e, "size_bytes", u(d.size_bytes));
    }
}

fn gpus(out: &mut Vec<Reading>, s: &Snapshot) {
    for g in s.gpus.iter().flatten() {
        let e = format!("gpu:{}", g.index);
        push(out, &e, "util_pct", g.util_pct);
        push(out, &e, "mem_used_pct", g.mem_used_pct);
        push(out, &e, "mem_used_bytes", u(g.mem_used_bytes));
        push(out, &e, "temp_c", g.temp_c);
        if g.fan_pct.is_some() {
            push(out, &e, "fan_pct", g.fan_pct);
        }
    }
}

/// How many containers run, then each container's state, usage and health.
fn containers(out: &mut Vec<Reading>, s: &Snapshot) {
    if let Some(containers) = &s.containers {
        let running = containers
            .iter()
            .filter(|c| matches!(c.state, ContainerState::Running))
            .count();
        push(out, "docker", "containers_running", Some(running as f64));
    }
    for c in s.containers.iter().flatten() {
        container(out, c);
    }
}

fn container(out: &mut Vec<Reading>, c: &Container) {
    let e = format!("container:{}", c.name);
    let running = matches!(c.state, ContainerState::Running);
    push(out, &e, "running", Some(if running { 1.0 } else { 0.0 }));
    push(out, &e, "mem_usage_bytes", u(c.mem_usage_bytes));
    push(out, &e, "cpu_cores", c.cpu_cores);
    push(out, &e, "restart_count", c.restart_count.map(f64::from));
    push(out, &e, "size_rw_bytes", u(c.size_rw_bytes));
    push(out, &e, "size_root_fs_bytes", u(c.size_root_fs_bytes));
    if c.mem_limit_bytes.is_some() {
        push(out, &e, "mem_limit_bytes", u(c.mem_limit_bytes));
    }
    // Only containers with a health check have a health reading.
    match c.health {
        Health::Healthy => push(out, &e, "healthy", Some(1.0)),
        Health::Unhealthy => push(out, &e, "healthy", Some(0.0)),
        Health::None | Health::Starting => {}
    }
    if let Some(streak) = c.failing_streak {
        push(out, &e, "failing_streak", Some(f64::from(streak)));
    }
    if let Some(oom) = c.oom_killed {
        push(out, &e, "oom_killed", Some(if oom { 1.0 } else { 0.0 }));
    }
    // From the engine's events since the previous capture: what a restart hides from the flag
    // and the exit code above.
    if let Some(n) = c.oom_kills {
        push(out, &e, "oom_kills", Some(f64::from(n)));
    }
    if let Some(n) = c.exits {
        push(out, &e, "exits", Some(f64::from(n)));
    }
    if let Some(code) = c.last_exit_code {
        push(out, &e, "last_exit_code", Some(code as f64));
    }
    if c.blkio_write_bytes.is_some() {
        push(out, &e, "blkio_write_bytes", u(c.blkio_write_bytes));
    }
}

fn postgres(out: &mut Vec<Reading>, s: &Snapshot) {
    for p in &s.postgres {
        let e = format!("postgres:{}", p.name);
        push(out, &e, "active_connections", u(p.active_connections));
        // The server's own ceiling, so connection rules can read their limit beside the count.
        if let Some(max) = p.settings.get("max_connections") {
            push(out, &e, "max_connections", max.trim().parse::<f64>().ok());
        }
        push(out, &e, "rows_inserted_total", u(p.rows_inserted_total));
        for db in &p.databases {
            push(
                out,
                &format!("postgres:{}/{}", p.name, db.name),
                "db_size_bytes",
                u(db.size_bytes),
            );
        }
    }
}

fn redis(out: &mut Vec<Reading>, s: &Snapshot) {
    for r in &s.redis {
        let e = format!("redis:{}", r.name);
        push(out, &e, "used_memory_bytes", u(r.used_memory_bytes));
        for db in &r.dbs {
            push(
                out,
                &format!("redis:{}/db{}", r.name, db.index),
                "keys",
                u(db.keys),
            );
        }
    }
}

fn rabbitmq(out: &mut Vec<Reading>, s: &Snapshot) {
    for m in &s.rabbitmq {
        for q in &m.queues {
            let e = format!("queue:{}/{}", m.name, q.name);
            push(out, &e, "messages_ready", u(q.messages_ready));
            push(out, &e, "messages_unacked", u(q.messages_unacked));
            push(out, &e, "consumers", u(q.consumers));
            push(out, &e, "publish_rate", q.publish_rate);
            push(out, &e, "deliver_rate", q.deliver_rate);
            push(out, &e, "redeliver_rate", q.redeliver_rate);
            push(out, &e, "publish_total", u(q.publish_total));
            push(out, &e, "deliver_total", u(q.deliver_total));
        }
    }
}

fn endpoints(out: &mut Vec<Reading>, s: &Snapshot) {
    for ep in &s.endpoints {
        let e = format!("endpoint:{}", ep.name);
        push(out, &e, "status", Some(f64::from(ep.status)));
        push(out, &e, "latency_ms", ep.latency_ms);
    }
}

fn work_queues(out: &mut Vec<Reading>, s: &Snapshot) {
    for q in &s.work_queues {
        let e = format!("workqueue:{}", q.name);
        push(out, &e, "pending", u(q.pending));
        push(out, &e, "processing_workers", u(q.processing_workers));
        push(out, &e, "completed", u(q.completed));
        push(out, &e, "failed", u(q.failed));
    }
}

/// Custom queries, one entity per label set.
fn queries(out: &mut Vec<Reading>, s: &Snapshot) {
    for q in &s.queries {
        let entity = if q.labels.is_empty() {
            format!("query:{}", q.name)
        } else {
            let labels: Vec<String> = q.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("query:{}/{}", q.name, labels.join(","))
        };
        push(out, &entity, "value", q.value);
    }
}

/// Each log stream's volume and unread stretch, and each template's count.
fn logs(out: &mut Vec<Reading>, s: &Snapshot) {
    for l in &s.logs {
        push(
            out,
            &format!("log:{}", l.source),
            "lines_total",
            Some(l.lines_total as f64),
        );
        // How much of the window was not read because a read bound cut the stream (0 when it
        // was read to the end), so a rule can say that lines, errors included, went unseen.
        let unread = match &l.truncated {
            None => 0.0,
            Some(t) => {
                let from = t.after.unwrap_or(l.window_start).max(l.window_start);
                (l.window_end - from).num_milliseconds().max(0) as f64 / 1000.0
            }
        };
        push(out, &format!("log:{}", l.source), "unread_s", Some(unread));
        // Each template's count since the previous capture, so rules can select log lines by
        // source, level and text: `logtpl:postgres:db|FATAL|*does not exist*`.
        for t in &l.templates {
            let level = t.level.as_deref().unwrap_or("-");
            let entity = format!("logtpl:{}|{}|{}", l.source, level, t.template);
            if let Some(max) = t.pids.iter().max() {
                push(out, &entity, "pid_max", Some(f64::from(*max)));
            }
            push(out, &entity, "count", Some(t.count as f64));
        }
    }
}

/// How a metric is measured and printed: its dimension and the suffix of plain numbers. A name
/// outside the catalogue (an attribute, a rule without a metric) is a plain number.
pub fn metric_unit(metric: &str) -> (Dimension, &'static str) {
    match catalogue::lookup(metric) {
        Some(d) => (d.dimension, d.suffix),
        None => (Dimension::Plain, ""),
    }
}

/// Every metric name [`readings`] can produce, for validating rule selections.
pub const KNOWN_METRICS: &[&str] = catalogue::NAMES;

/// Text attributes (not series) that fleet rules compare across nodes.
pub const KNOWN_ATTRIBUTES: &[&str] = &[
    "image",
    "tag",
    "revision",
    "image_ref",
    "compose_version",
    "engine_version",
];

/// The value of a text attribute of an entity in one snapshot.
pub fn attribute(s: &Snapshot, entity: &str, attribute: &str) -> Option<String> {
    if entity == "docker" {
        let d = s.docker.as_ref()?;
        return match attribute {
            "compose_version" => d.compose_version.clone(),
            "engine_version" => d.engine_version.clone(),
            _ => None,
        };
    }
    let name = entity.strip_prefix("container:")?;
    let c = s.container(name)?;
    match attribute {
        "image" => Some(c.image.clone()),
        "tag" => c.tag.clone(),
        "revision" => c.revision.clone(),
        "image_ref" => Some(c.image_ref()),
        _ => None,
    }
}

/// Entities that carry text attributes in a snapshot.
pub fn attribute_entities(s: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if s.docker.is_some() {
        out.push("docker".to_string());
    }
    for c in s.containers.iter().flatten() {
        out.push(format!("container:{}", c.name));
    }
    out
}

/// How an entity reads in a sentence: "`visionking-visualizer`", "GPU 0", "disk `/`".
pub fn entity_label(entity: &str) -> String {
    use crate::markdown::code_span;
    match entity.split_once(':') {
        Some(("container", name)) => code_span(name),
        Some(("gpu", index)) => format!("GPU {index}"),
        Some(("disk", mount)) => format!("disk {}", code_span(mount)),
        Some(("postgres", name)) => format!("PostgreSQL {}", code_span(name)),
        Some(("redis", name)) => format!("Redis {}", code_span(name)),
        Some(("queue", name)) => format!("queue {}", code_span(name)),
        Some(("endpoint", name)) => format!("endpoint {}", code_span(name)),
        Some(("log", name)) => format!("log {}", code_span(name)),
        Some(("workqueue", name)) => format!("work queue {}", code_span(name)),
        Some(("job", name)) => format!("job {}", code_span(name)),
        Some(("logtpl", rest)) => {
            let mut parts = rest.splitn(3, '|');
            let (source, level, template) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            format!(
                "{} line {} in log {}",
                level,
                code_span(template),
                code_span(source)
            )
        }
        _ => entity.to_string(),
    }
}

/// How a metric reads in a sentence; a name outside the catalogue reads as itself.
pub fn metric_label(metric: &str) -> &str {
    match catalogue::lookup(metric) {
        Some(d) => d.label,
        None => metric,
    }
}
