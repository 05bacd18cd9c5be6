#![doc = include_str!("reboot_detected.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target};
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{Dimension, fmt_bytes, fmt_change, fmt_duration, fmt_uptime};

pub const SPEC: KindSpec = KindSpec {
    name: "reboot-detected",
    doc: include_str!("reboot_detected.md"),
    target: Target::Node,
    event: true,
    variables: &[
        "uptime",
        "previous_uptime",
        "booted",
        "released",
        "downtime",
    ],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    /// Also report a node whose first capture in the window shows it booted this recently.
    pub recent_s: Option<f64>,
    /// How many containers' memory changes to list.
    pub top: usize,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let recent_s = p.duration(ctx, "recent");
    let top = p.fields.count(ctx, "top").unwrap_or(3);
    Some(Kind::RebootDetected(Params { recent_s, top }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(latest) = node.latest() else {
            continue;
        };
        let at = latest.captured_at.timestamp();
        let Some(uptime) = latest.host.as_ref().and_then(|h| h.uptime_s) else {
            continue;
        };
        let reboots = node.reboots();
        let Some(boot) = node.current_boot() else {
            continue;
        };
        let booted = ctx.time(boot);
        let is_new_reboot = reboots.last().is_some_and(|(first_at, _)| *first_at == at);
        let mut c = Candidate::new(node, "host", "uptime_s", at);
        c.event = true;
        c.event_id = Some(boot.to_string());
        c.value("uptime", Some(uptime as f64), fmt_uptime(uptime));
        c.value("booted", Some(boot as f64), booted.clone());
        if is_new_reboot {
            // The last capture of the previous boot that had a reading.
            let before = node
                .recent()
                .rev()
                .skip(1)
                .find(|s| s.host.as_ref().is_some_and(|h| h.uptime_s.is_some()));
            // After a long outage the last snapshots held are the dark ones: the uptime series
            // still has the reading before it, which is all the reboot itself needs.
            let previous = match before {
                Some(b) => b
                    .host
                    .as_ref()
                    .and_then(|h| h.uptime_s)
                    .map(|u| (u, b.captured_at.timestamp())),
                None => node.series("host", "uptime_s").and_then(|s| {
                    s.points
                        .iter()
                        .rev()
                        .filter(|pt| pt.at < at)
                        .find_map(|pt| pt.value.map(|v| (v.max(0.0) as u64, pt.at)))
                }),
            };
            let Some((prev_uptime, prev_at)) = previous else {
                continue;
            };
            let downtime = (boot - (prev_at)).max(0) as f64;
            c.value(
                "previous_uptime",
                Some(prev_uptime as f64),
                fmt_uptime(prev_uptime),
            );
            c.value("downtime", Some(downtime), fmt_duration(downtime));
            let mut changes: Vec<(String, f64, f64)> = Vec::new();
            for cont in latest.containers.iter().flatten() {
                let (Some(now_mem), Some(old)) = (
                    cont.mem_usage_bytes,
                    before
                        .and_then(|b| b.container(&cont.name))
                        .and_then(|o| o.mem_usage_bytes),
                ) else {
                    continue;
                };
                changes.push((cont.name.clone(), old as f64, now_mem as f64));
            }
            let released: f64 = changes.iter().map(|(_, b, a)| (b - a).max(0.0)).sum();
            changes.sort_by(|x, y| {
                (y.1 - y.2)
                    .total_cmp(&(x.1 - x.2))
                    .then_with(|| x.0.cmp(&y.0))
            });
            c.value("released", Some(released), fmt_bytes(released));
            let mut evidence = format!(
                "Uptime went from {} at {} to {} at {}: the node booted at {booted}.",
                fmt_uptime(prev_uptime),
                ctx.time(prev_at),
                fmt_uptime(uptime),
                ctx.time(at),
            );
            let top: Vec<String> = changes
                .iter()
                .filter(|(_, b, a)| b > a)
                .take(p.top)
                .map(|(name, b, a)| {
                    let ch = fmt_change(*b, *a, Dimension::Bytes, "");
                    format!("{} {} → {}", code_span(name), ch.before, ch.after)
                })
                .collect();
            if !top.is_empty() {
                evidence.push_str(&format!(
                    " Containers held {} less memory after it than before ({}).",
                    fmt_bytes(released),
                    top.join(", ")
                ));
            }
            c.evidence = evidence;
            out.push(c);
        } else if let Some(recent) = p.recent_s
            && reboots.is_empty()
            && (uptime as f64) < recent
            && node.capture_count() == 1
        {
            c.value("previous_uptime", None, "-");
            c.value("downtime", None, "-");
            c.value("released", None, "-");
            c.evidence = format!(
                "Uptime is {} at {}: the node booted at {booted}, less than {} before patrol first saw it.",
                fmt_uptime(uptime),
                ctx.time(at),
                fmt_duration(recent),
            );
            out.push(c);
        }
    }
}
