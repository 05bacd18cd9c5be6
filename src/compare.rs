//! Comparing two snapshots: "what changed on vk01 between Tuesday night and now?", "how do vk01
//! and vk02 differ right now?". The differences come out ordered by importance (a reboot before
//! a container restart before a memory change), each with its numbers, and changes below a noise
//! floor are left out so the page reads in a minute.

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;
use serde::Serialize;

use crate::markdown::{code_span, escape_inline};
use crate::model::{Container, Host, LogStream, LogTemplate, Snapshot};
use crate::units::{Dimension, fmt_bytes, fmt_change, fmt_number};

/// One difference, with how much it matters (higher first).
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub section: &'static str,
    pub weight: f64,
    pub text: String,
}

/// Below these a change is noise.
const MEM_FLOOR_BYTES: f64 = 20e6;
const MEM_FLOOR_PCT: f64 = 10.0;
const CPU_FLOOR: f64 = 0.1;
const SIZE_FLOOR_BYTES: f64 = 50e6;

/// Sections in the order they are printed.
pub const SECTIONS: &[&str] = &[
    "host",
    "containers",
    "versions",
    "health",
    "memory and CPU",
    "disk",
    "GPU",
    "services",
    "logs",
];

fn label(s: &Snapshot, tz: Tz) -> String {
    format!(
        "{}@{}",
        s.node,
        s.captured_at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
    )
}

fn boot(s: &Snapshot) -> Option<i64> {
    let h = s.host.as_ref()?;
    h.boot_time
        .map(|b| b.timestamp())
        .or_else(|| h.uptime_s.map(|u| s.captured_at.timestamp() - u as i64))
}

fn containers_of(s: &Snapshot) -> BTreeMap<&str, &Container> {
    s.containers
        .iter()
        .flatten()
        .map(|c| (c.name.as_str(), c))
        .collect()
}

/// The two snapshots compared, and what every section needs to know about them.
struct Pair<'a> {
    a: &'a Snapshot,
    b: &'a Snapshot,
    tz: Tz,
    /// `b` is a later capture of the same node: a restart or a reboot is then an event.
    same_node: bool,
    rebooted: bool,
}

impl Pair<'_> {
    fn when(&self, t: chrono::DateTime<chrono::Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }
}

fn push(out: &mut Vec<Difference>, section: &'static str, weight: f64, text: String) {
    out.push(Difference {
        section,
        weight,
        text,
    });
}

/// The differences from `a` to `b`, most important first. `same_node` says whether `b` is a
/// later capture of the same node (then a restart or a reboot is an event) or a peer.
pub fn diff(a: &Snapshot, b: &Snapshot, tz: Tz) -> Vec<Difference> {
    let same_node = a.node == b.node;
    let rebooted = same_node && matches!((boot(a), boot(b)), (Some(x), Some(y)) if y - x > 120);
    let p = Pair {
        a,
        b,
        tz,
        same_node,
        rebooted,
    };
    let mut out = Vec::new();
    reboot(&p, &mut out);
    if let (Some(ha), Some(hb)) = (&a.host, &b.host) {
        host(ha, hb, &mut out);
        compose(a, b, &mut out);
        disks(ha, hb, &mut out);
    }
    container_set(&p, &mut out);
    containers(&p, &mut out);
    gpus(a, b, &mut out);
    redis(a, b, &mut out);
    rabbitmq(a, b, &mut out);
    postgres(a, b, &mut out);
    logs(a, b, &mut out);
    out.sort_by(|x, y| {
        y.weight
            .total_cmp(&x.weight)
            .then_with(|| x.text.cmp(&y.text))
    });
    out
}

/// A reboot in between, with how many containers came back with it.
fn reboot(p: &Pair, out: &mut Vec<Difference>) {
    if p.rebooted
        && let Some(y) = boot(p.b)
    {
        let booted = chrono::DateTime::from_timestamp(y, 0)
            .map(|t| p.when(t))
            .unwrap_or_default();
        let restarted = containers_of(p.b)
            .values()
            .filter(|c| c.started_at.is_some_and(|t| t.timestamp() >= y - 120))
            .count();
        push(
            out,
            "host",
            100.0,
            format!(
                "{} rebooted in between (booted at {booted}); {restarted} containers started again with it.",
                p.b.node
            ),
        );
    }
}

/// Host memory, swap, steal and clock synchronisation.
fn host(ha: &Host, hb: &Host, out: &mut Vec<Difference>) {
    for (name, va, vb, floor) in [
        (
            "available memory",
            ha.mem_available_bytes,
            hb.mem_available_bytes,
            1e9,
        ),
        ("swap in use", ha.swap_used_bytes, hb.swap_used_bytes, 200e6),
    ] {
        if let (Some(x), Some(y)) = (va, vb) {
            let (x, y) = (x as f64, y as f64);
            if (y - x).abs() >= floor {
                let c = fmt_change(x, y, Dimension::Bytes, "");
                push(
                    out,
                    "host",
                    40.0 + (y - x).abs() / 1e9,
                    format!("Host {name} {} → {} ({}).", c.before, c.after, c.delta),
                );
            }
        }
    }
    if let (Some(x), Some(y)) = (ha.cpu_steal_pct, hb.cpu_steal_pct)
        && (y - x).abs() >= 2.0
    {
        push(
            out,
            "host",
            45.0,
            format!("CPU steal {}% → {}%.", fmt_number(x, 1), fmt_number(y, 1)),
        );
    }
    if ha.ntp_synced != hb.ntp_synced
        && let (Some(x), Some(y)) = (ha.ntp_synced, hb.ntp_synced)
    {
        push(out, "host", 35.0, format!("NTP synchronised: {x} → {y}."));
    }
}

/// The Docker Compose version (read only when both hosts answered, as the host section is).
fn compose(a: &Snapshot, b: &Snapshot, out: &mut Vec<Difference>) {
    if let (Some(x), Some(y)) = (&a.docker, &b.docker)
        && x.compose_version != y.compose_version
    {
        push(
            out,
            "versions",
            30.0,
            format!(
                "Docker Compose {} → {}.",
                x.compose_version.as_deref().unwrap_or("-"),
                y.compose_version.as_deref().unwrap_or("-")
            ),
        );
    }
}

/// Disks whose use moved by a point or more.
fn disks(ha: &Host, hb: &Host, out: &mut Vec<Difference>) {
    for da in &ha.disks {
        if let Some(db) = hb.disks.iter().find(|d| d.mount == da.mount)
            && let (Some(x), Some(y)) = (da.used_pct, db.used_pct)
            && (y - x).abs() >= 1.0
        {
            push(
                out,
                "disk",
                20.0 + (y - x).abs().min(30.0),
                format!(
                    "Disk {} {}% → {}% used.",
                    code_span(&da.mount),
                    fmt_number(x, 1),
                    fmt_number(y, 1)
                ),
            );
        }
    }
}

/// Containers added or removed (same node), or found on only one of two peers.
fn container_set(p: &Pair, out: &mut Vec<Difference>) {
    let (a, b, tz) = (p.a, p.b, p.tz);
    if a.containers.is_none() || b.containers.is_none() {
        return;
    }
    let names_a: BTreeSet<&str> = containers_of(a).keys().copied().collect();
    let names_b: BTreeSet<&str> = containers_of(b).keys().copied().collect();
    for gone in names_a.difference(&names_b) {
        let text = if p.same_node {
            format!("{} removed (present at {}).", code_span(gone), label(a, tz))
        } else {
            format!("{} only on {}.", code_span(gone), a.node)
        };
        push(out, "containers", 80.0, text);
    }
    for new in names_b.difference(&names_a) {
        let text = if p.same_node {
            format!("{} added (present at {}).", code_span(new), label(b, tz))
        } else {
            format!("{} only on {}.", code_span(new), b.node)
        };
        push(out, "containers", 80.0, text);
    }
}

/// Each container on both sides: its events and versions first, then its memory, CPU and
/// writable layer.
fn containers(p: &Pair, out: &mut Vec<Difference>) {
    let (ca, cb) = (containers_of(p.a), containers_of(p.b));
    let mut usage: Vec<Difference> = Vec::new();
    for (name, x) in &ca {
        let Some(y) = cb.get(name) else { continue };
        let n = code_span(name);
        if p.same_node {
            restarts(p, &n, x, y, out);
        }
        container_changes(&n, x, y, out);
        container_usage(p, &n, x, y, &mut usage);
    }
    out.extend(usage);
}

/// Restarts counted by the engine, or a container started again without one (recreated).
fn restarts(p: &Pair, n: &str, x: &Container, y: &Container, out: &mut Vec<Difference>) {
    let restarts = y
        .restart_count
        .unwrap_or(0)
        .saturating_sub(x.restart_count.unwrap_or(0));
    let recreated =
        x.started_at.is_some() && y.started_at.is_some() && x.started_at != y.started_at;
    if restarts > 0 {
        push(
            out,
            "containers",
            70.0,
            format!(
                "{n} restarted {restarts} time{}.",
                if restarts == 1 { "" } else { "s" }
            ),
        );
    } else if recreated && !p.rebooted {
        push(
            out,
            "containers",
            65.0,
            format!(
                "{n} was started again (started at {}).",
                y.started_at.map(|t| p.when(t)).unwrap_or_default()
            ),
        );
    }
}

/// Image or revision, state and health.
fn container_changes(n: &str, x: &Container, y: &Container, out: &mut Vec<Difference>) {
    if x.image_ref() != y.image_ref() || x.revision != y.revision {
        let rev = |c: &Container| {
            c.revision
                .as_deref()
                .map(|r| format!(" ({})", code_span(r)))
                .unwrap_or_default()
        };
        push(
            out,
            "versions",
            60.0,
            format!(
                "{n} image {}{} → {}{}.",
                code_span(&x.image_ref()),
                rev(x),
                code_span(&y.image_ref()),
                rev(y)
            ),
        );
    }
    if x.state != y.state {
        push(
            out,
            "health",
            75.0,
            format!("{n} {} → {}.", x.state.label(), y.state.label()),
        );
    }
    if x.health != y.health {
        push(
            out,
            "health",
            72.0,
            format!("{n} health {:?} → {:?}.", x.health, y.health).to_lowercase(),
        );
    }
}

/// Memory, CPU and writable layer above their noise floors.
fn container_usage(p: &Pair, n: &str, x: &Container, y: &Container, out: &mut Vec<Difference>) {
    if let (Some(ma), Some(mb)) = (x.mem_usage_bytes, y.mem_usage_bytes) {
        let (ma, mb) = (ma as f64, mb as f64);
        let d = mb - ma;
        let pct = if ma > 0.0 { d / ma * 100.0 } else { 100.0 };
        if d.abs() >= MEM_FLOOR_BYTES && pct.abs() >= MEM_FLOOR_PCT {
            let c = fmt_change(ma, mb, Dimension::Bytes, "");
            // After a reboot the memory each container gave back is what matters most.
            push(
                out,
                "memory and CPU",
                if p.rebooted { 90.0 } else { 10.0 } + d.abs() / 1e12,
                format!(
                    "{n} memory {} → {} ({}, {}{}%).",
                    c.before,
                    c.after,
                    c.delta,
                    if pct > 0.0 { "+" } else { "" },
                    fmt_number(pct, 0)
                ),
            );
        }
    }
    if let (Some(pa), Some(pb)) = (x.cpu_cores, y.cpu_cores)
        && (pb - pa).abs() >= CPU_FLOOR
    {
        push(
            out,
            "memory and CPU",
            10.0 + (pb - pa).abs(),
            format!(
                "{n} CPU {} → {} cores.",
                fmt_number(pa, 2),
                fmt_number(pb, 2)
            ),
        );
    }
    if let (Some(sa), Some(sb)) = (x.size_rw_bytes, y.size_rw_bytes)
        && (sb as f64 - sa as f64).abs() >= SIZE_FLOOR_BYTES
    {
        push(
            out,
            "disk",
            15.0,
            format!(
                "{n} writable layer {} → {}.",
                fmt_bytes(sa as f64),
                fmt_bytes(sb as f64)
            ),
        );
    }
}

/// GPU telemetry going null or coming back, temperature and utilisation.
fn gpus(a: &Snapshot, b: &Snapshot, out: &mut Vec<Difference>) {
    for ga in a.gpus.iter().flatten() {
        let Some(gb) = b.gpus.iter().flatten().find(|g| g.index == ga.index) else {
            continue;
        };
        let g = format!("GPU {}", ga.index);
        match (ga.temp_c, gb.temp_c) {
            (Some(_), None) => push(out, "GPU", 78.0, format!("{g} telemetry went null.")),
            (None, Some(t)) => push(
                out,
                "GPU",
                50.0,
                format!("{g} telemetry back ({}°C).", fmt_number(t, 0)),
            ),
            (Some(x), Some(y)) if (y - x).abs() >= 5.0 => push(
                out,
                "GPU",
                25.0,
                format!(
                    "{g} temperature {}°C → {}°C.",
                    fmt_number(x, 0),
                    fmt_number(y, 0)
                ),
            ),
            _ => {}
        }
        if let (Some(x), Some(y)) = (ga.util_pct, gb.util_pct)
            && (y - x).abs() >= 10.0
        {
            push(
                out,
                "GPU",
                24.0,
                format!(
                    "{g} utilisation {}% → {}%.",
                    fmt_number(x, 0),
                    fmt_number(y, 0)
                ),
            );
        }
    }
}

/// Key counts that halved, doubled or hit zero, and fields a watched key lost.
fn redis(a: &Snapshot, b: &Snapshot, out: &mut Vec<Difference>) {
    for ra in &a.redis {
        let Some(rb) = b.redis.iter().find(|r| r.name == ra.name) else {
            continue;
        };
        for da in &ra.dbs {
            if let Some(db) = rb.dbs.iter().find(|d| d.index == da.index)
                && da.keys != db.keys
                && let (Some(x), Some(y)) = (da.keys, db.keys)
                && (x == 0 || y == 0 || (y as f64 - x as f64).abs() / (x as f64) >= 0.5)
            {
                push(
                    out,
                    "services",
                    20.0,
                    format!(
                        "Redis {} DB{} keys {x} → {y}.",
                        code_span(&ra.name),
                        da.index
                    ),
                );
            }
        }
        for wb in &rb.watched {
            let before = ra.watched.iter().find(|w| w.key == wb.key);
            let missing_now: BTreeSet<&String> = wb.fields_missing.iter().collect();
            let missing_before: BTreeSet<&String> = before
                .map(|w| w.fields_missing.iter().collect())
                .unwrap_or_default();
            for f in missing_now.difference(&missing_before) {
                push(
                    out,
                    "services",
                    55.0,
                    format!(
                        "Redis key {} lost field {}.",
                        code_span(&wb.key),
                        code_span(f)
                    ),
                );
            }
        }
    }
}

/// Queue consumers changed, and ready depth moved by a hundred or more.
fn rabbitmq(a: &Snapshot, b: &Snapshot, out: &mut Vec<Difference>) {
    let count = |c: Option<u64>| c.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
    for ma in &a.rabbitmq {
        let Some(mb) = b.rabbitmq.iter().find(|m| m.name == ma.name) else {
            continue;
        };
        for qa in &ma.queues {
            let Some(qb) = mb.queues.iter().find(|q| q.name == qa.name) else {
                continue;
            };
            if qa.consumers != qb.consumers {
                push(
                    out,
                    "services",
                    45.0,
                    format!(
                        "Queue {} consumers {} → {}.",
                        code_span(&qa.name),
                        count(qa.consumers),
                        count(qb.consumers)
                    ),
                );
            }
            if let (Some(x), Some(y)) = (qa.messages_ready, qb.messages_ready)
                && y.abs_diff(x) >= 100
            {
                push(
                    out,
                    "services",
                    40.0,
                    format!("Queue {} ready {x} → {y}.", code_span(&qa.name)),
                );
            }
        }
    }
}

/// PostgreSQL settings changed.
fn postgres(a: &Snapshot, b: &Snapshot, out: &mut Vec<Difference>) {
    for pa in &a.postgres {
        let Some(pb) = b.postgres.iter().find(|p| p.name == pa.name) else {
            continue;
        };
        for (k, v) in &pb.settings {
            if let Some(old) = pa.settings.get(k)
                && old != v
            {
                push(
                    out,
                    "services",
                    35.0,
                    format!(
                        "PostgreSQL {} {k} {} → {}.",
                        code_span(&pa.name),
                        code_span(old),
                        code_span(v)
                    ),
                );
            }
        }
    }
}

/// A log template's identity across captures: its level and text.
fn template_key(t: &LogTemplate) -> (String, String) {
    (t.level.clone().unwrap_or_default(), t.template.clone())
}

/// How many minutes a stream's window covers (at least one).
fn minutes(l: &LogStream) -> f64 {
    ((l.window_end - l.window_start).num_seconds() as f64 / 60.0).max(1.0)
}

/// Logs: templates new, gone, or changed in rate (lines per minute of their windows).
fn logs(a: &Snapshot, b: &Snapshot, out: &mut Vec<Difference>) {
    for lb in &b.logs {
        let la = a.logs.iter().find(|l| l.source == lb.source);
        log_rates(la, lb, out);
        if let Some(la) = la {
            let now: BTreeSet<(String, String)> = lb.templates.iter().map(template_key).collect();
            for t in &la.templates {
                if !now.contains(&template_key(t)) && lb.lines_total > 0 {
                    push(
                        out,
                        "logs",
                        11.0,
                        format!(
                            "Gone from log {}: {} {}.",
                            code_span(&lb.source),
                            t.level.as_deref().unwrap_or("-"),
                            code_span(&t.template)
                        ),
                    );
                }
            }
        }
    }
}

/// Templates of `lb` that are new since `la`, or whose rate tripled or fell to a third; an
/// error-like level weighs more.
fn log_rates(la: Option<&LogStream>, lb: &LogStream, out: &mut Vec<Difference>) {
    let before: BTreeMap<(String, String), f64> = la
        .map(|l| {
            l.templates
                .iter()
                .map(|t| (template_key(t), t.count as f64 / minutes(l)))
                .collect()
        })
        .unwrap_or_default();
    for t in &lb.templates {
        let rate = t.count as f64 / minutes(lb);
        let lvl = t.level.as_deref().unwrap_or("-");
        let serious = matches!(lvl, "ERROR" | "FATAL" | "CRITICAL" | "PANIC");
        match before.get(&template_key(t)) {
            None if la.is_some() => push(
                out,
                "logs",
                if serious { 58.0 } else { 12.0 },
                format!(
                    "New in log {}: {lvl} {} ({}/min).",
                    code_span(&lb.source),
                    code_span(&t.template),
                    fmt_number(rate, 1)
                ),
            ),
            Some(old)
                if *old > 0.0
                    && (rate / old >= 3.0 || rate / old <= 1.0 / 3.0)
                    && (rate - old).abs() >= 1.0 =>
            {
                push(
                    out,
                    "logs",
                    if serious { 40.0 } else { 10.0 },
                    format!(
                        "Log {} {lvl} {}: {}/min → {}/min.",
                        code_span(&lb.source),
                        code_span(&t.template),
                        fmt_number(*old, 1),
                        fmt_number(rate, 1)
                    ),
                )
            }
            _ => {}
        }
    }
}

/// The comparison as markdown: a title, then the differences by section, most important first.
pub fn markdown(
    a: &Snapshot,
    b: &Snapshot,
    tz: Tz,
    diffs: &[Difference],
    notes: &[String],
) -> String {
    let mut out = format!(
        "# Compare {} with {}\n\n",
        escape_inline(&label(a, tz)),
        escape_inline(&label(b, tz))
    );
    for n in notes {
        out.push_str(&format!("{}\n\n", escape_inline(n)));
    }
    if diffs.is_empty() {
        out.push_str("No difference above the noise floor.\n");
        return out;
    }
    // Sections in the order of their most important difference.
    let mut order: Vec<&str> = Vec::new();
    for d in diffs {
        if !order.contains(&d.section) {
            order.push(d.section);
        }
    }
    for section in order {
        out.push_str(&format!("## {}\n\n", capitalise(section)));
        for d in diffs.iter().filter(|d| d.section == section) {
            out.push_str(&format!("- {}\n", d.text));
        }
        out.push('\n');
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
