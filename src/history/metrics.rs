//! Which numbers a snapshot holds, under which entity and metric name. Rules select series by
//! these names, so this is the vocabulary of rules/*.toml; the names, units and labels live in
//! [`super::catalogue`], and `docs/snapshot-format.md` lists them.

use super::catalogue;
use crate::model::{ContainerState, Health, Snapshot};
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
        push(&mut out, "host", "uptime_s", u(h.uptime_s));
        push(&mut out, "host", "mem_total_bytes", u(h.mem_total_bytes));
        push(
            &mut out,
            "host",
            "mem_available_bytes",
            u(h.mem_available_bytes),
        );
        push(&mut out, "host", "mem_free_bytes", u(h.mem_free_bytes));
        push(&mut out, "host", "swap_used_bytes", u(h.swap_used_bytes));
        push(
            &mut out,
            "host",
            "swap_cached_bytes",
            u(h.swap_cached_bytes),
        );
        push(&mut out, "host", "cpu_steal_pct", h.cpu_steal_pct);
        push(&mut out, "host", "load1", h.load1);
        if h.clock_offset_ms.is_some() {
            push(&mut out, "host", "clock_offset_ms", h.clock_offset_ms);
        }
        for d in &h.disks {
            let e = format!("disk:{}", d.mount);
            push(&mut out, &e, "used_pct", d.used_pct);
            push(&mut out, &e, "used_bytes", u(d.used_bytes));
            push(&mut out, &e, "size_bytes", u(d.size_bytes));
        }
    }
    for g in s.gpus.iter().flatten() {
        let e = format!("gpu:{}", g.index);
        push(&mut out, &e, "util_pct", g.util_pct);
        push(&mut out, &e, "mem_used_pct", g.mem_used_pct);
        push(&mut out, &e, "mem_used_bytes", u(g.mem_used_bytes));
        push(&mut out, &e, "temp_c", g.temp_c);
        if g.fan_pct.is_some() {
            push(&mut out, &e, "fan_pct", g.fan_pct);
        }
    }
    if let Some(containers) = &s.containers {
        let running = containers
            .iter()
            .filter(|c| matches!(c.state, ContainerState::Running))
            .count();
        push(
            &mut out,
            "docker",
            "containers_running",
            Some(running as f64),
        );
    }
    for c in s.containers.iter().flatten() {
        let e = format!("container:{}", c.name);
        let running = matches!(c.state, ContainerState::Running);
        push(
            &mut out,
            &e,
            "running",
            Some(if running { 1.0 } else { 0.0 }),
        );
        push(&mut out, &e, "mem_usage_bytes", u(c.mem_usage_bytes));
        push(&mut out, &e, "cpu_cores", c.cpu_cores);
        push(
            &mut out,
            &e,
            "restart_count",
            c.restart_count.map(f64::from),
        );
        push(&mut out, &e, "size_rw_bytes", u(c.size_rw_bytes));
        push(&mut out, &e, "size_root_fs_bytes", u(c.size_root_fs_bytes));
        if c.mem_limit_bytes.is_some() {
            push(&mut out, &e, "mem_limit_bytes", u(c.mem_limit_bytes));
        }
        // Only containers with a health check have a health reading.
        match c.health {
            Health::Healthy => push(&mut out, &e, "healthy", Some(1.0)),
            Health::Unhealthy => push(&mut out, &e, "healthy", Some(0.0)),
            Health::None | Health::Starting => {}
        }
        if let Some(streak) = c.failing_streak {
            push(&mut out, &e, "failing_streak", Some(f64::from(streak)));
        }
        if let Some(oom) = c.oom_killed {
            push(
                &mut out,
                &e,
                "oom_killed",
                Some(if oom { 1.0 } else { 0.0 }),
            );
        }
        if c.blkio_write_bytes.is_some() {
            push(&mut out, &e, "blkio_write_bytes", u(c.blkio_write_bytes));
        }
    }
    for p in &s.postgres {
        let e = format!("postgres:{}", p.name);
        push(&mut out, &e, "active_connections", u(p.active_connections));
        push(
            &mut out,
            &e,
            "rows_inserted_total",
            u(p.rows_inserted_total),
        );
        for db in &p.databases {
            push(
                &mut out,
                &format!("postgres:{}/{}", p.name, db.name),
                "db_size_bytes",
                u(db.size_bytes),
            );
        }
    }
    for r in &s.redis {
        let e = format!("redis:{}", r.name);
        push(&mut out, &e, "used_memory_bytes", u(r.used_memory_bytes));
        for db in &r.dbs {
            push(
                &mut out,
                &format!("redis:{}/db{}", r.name, db.index),
                "keys",
                u(db.keys),
            );
        }
    }
    for m in &s.rabbitmq {
        for q in &m.queues {
            let e = format!("queue:{}/{}", m.name, q.name);
            push(&mut out, &e, "messages_ready", u(q.messages_ready));
            push(&mut out, &e, "messages_unacked", u(q.messages_unacked));
            push(&mut out, &e, "consumers", u(q.consumers));
            push(&mut out, &e, "publish_rate", q.publish_rate);
            push(&mut out, &e, "deliver_rate", q.deliver_rate);
            push(&mut out, &e, "redeliver_rate", q.redeliver_rate);
            push(&mut out, &e, "publish_total", u(q.publish_total));
            push(&mut out, &e, "deliver_total", u(q.deliver_total));
        }
    }
    for ep in &s.endpoints {
        let e = format!("endpoint:{}", ep.name);
        push(&mut out, &e, "status", Some(f64::from(ep.status)));
        push(&mut out, &e, "latency_ms", ep.latency_ms);
    }
    for q in &s.work_queues {
        let e = format!("workqueue:{}", q.name);
        push(&mut out, &e, "pending", u(q.pending));
        push(&mut out, &e, "processing_workers", u(q.processing_workers));
        push(&mut out, &e, "completed", u(q.completed));
        push(&mut out, &e, "failed", u(q.failed));
    }
    for q in &s.queries {
        let entity = if q.labels.is_empty() {
            format!("query:{}", q.name)
        } else {
            let labels: Vec<String> = q.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("query:{}/{}", q.name, labels.join(","))
        };
        push(&mut out, &entity, "value", q.value);
    }
    for l in &s.logs {
        push(
            &mut out,
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
        push(
            &mut out,
            &format!("log:{}", l.source),
            "unread_s",
            Some(unread),
        );
        // Each template's count since the previous capture, so rules can select log lines by
        // source, level and text: `logtpl:postgres:db|FATAL|*does not exist*`.
        for t in &l.templates {
            let level = t.level.as_deref().unwrap_or("-");
            let entity = format!("logtpl:{}|{}|{}", l.source, level, t.template);
            if let Some(max) = t.pids.iter().max() {
                push(&mut out, &entity, "pid_max", Some(f64::from(*max)));
            }
            push(&mut out, &entity, "count", Some(t.count as f64));
        }
    }
    out
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
