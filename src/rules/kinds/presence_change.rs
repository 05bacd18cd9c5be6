#![doc = include_str!("presence_change.md")]

use std::collections::BTreeSet;

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, and_list};
use crate::history::NodeHistory;
use crate::history::metrics::entity_label;
use crate::markdown::code_span;
use crate::model::{Container, ContainerState, Snapshot};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::fmt_duration;

pub const SPEC: KindSpec = KindSpec {
    name: "presence-change",
    doc: include_str!("presence_change.md"),
    target: Target::Node,
    event: false,
    variables: &["change", "names", "count", "before", "since", "last_seen"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    /// "containers" or "templates".
    pub what: String,
    /// For containers: "removed", "added" or "both".
    pub direction: String,
    /// For templates: absent from this many consecutive captures in which the stream logged.
    pub absent_for: usize,
    /// For templates: seen in at least this many captures before.
    pub min_seen: usize,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let what = p.choice(ctx, "what", &["containers", "templates"], "containers");
    let direction = p.choice(ctx, "direction", &["removed", "added", "both"], "removed");
    Some(Kind::PresenceChange(Params {
        what,
        direction,
        absent_for: p.fields.count(ctx, "absent_for").unwrap_or(4).max(1),
        min_seen: p.fields.count(ctx, "min_seen").unwrap_or(3).max(1),
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        if p.what == "containers" {
            containers(p, rule, ctx, node, out);
        } else {
            templates(p, rule, ctx, node, out);
        }
    }
}

fn names(s: &Snapshot, rule: &Rule) -> Option<BTreeSet<String>> {
    Some(
        s.containers
            .as_ref()?
            .iter()
            .map(|c| format!("container:{}", c.name))
            .filter(|e| rule.select.entity_matches(e))
            .collect(),
    )
}

/// Exited with code 0: it ran to completion.
fn finished(c: &Container) -> bool {
    c.state == ContainerState::Exited && c.exit_code == Some(0)
}

/// Containers that appeared or disappeared between the two newest captures: an event each, and
/// one event when a node that ran containers runs none at all.
fn containers(
    p: &Params,
    rule: &Rule,
    ctx: &EvalContext,
    node: &NodeHistory,
    out: &mut Vec<Candidate>,
) {
    let (Some(prev), Some(last)) = (node.previous(), node.latest()) else {
        return;
    };
    let (Some(mut before), Some(now)) = (names(prev, rule), names(last, rule)) else {
        return;
    };
    // A container that had exited cleanly is a finished task: its removal is the clean-up of a
    // job, not news (a worker farm removes one every few minutes). One that ran, restarted or
    // failed when last seen is still told.
    before.retain(|e| {
        now.contains(e)
            || !prev
                .container(e.trim_start_matches("container:"))
                .is_some_and(finished)
    });
    let at = last.captured_at.timestamp();
    let mut push = |entity: &str, change: &str, names: Vec<String>, evidence: String| {
        let mut c = Candidate::new(node, entity, "presence", at);
        c.event = true;
        c.event_id = Some(at.to_string());
        c.value("change", None, change);
        c.value("count", Some(names.len() as f64), names.len().to_string());
        c.value("names", None, and_list(&names));
        c.value(
            "before",
            Some(before.len() as f64),
            before.len().to_string(),
        );
        c.value("since", None, ctx.time(prev.captured_at.timestamp()));
        c.value("last_seen", None, ctx.time(prev.captured_at.timestamp()));
        c.evidence = evidence;
        out.push(c);
    };
    if now.is_empty() && !before.is_empty() {
        push(
            "containers",
            "all gone",
            before
                .iter()
                .map(|e| code_span(e.trim_start_matches("container:")))
                .collect(),
            format!(
                "{} ran {} container{} at {} and runs none at {}, although it still answers.",
                node.node,
                before.len(),
                if before.len() == 1 { "" } else { "s" },
                ctx.time(prev.captured_at.timestamp()),
                ctx.time(at)
            ),
        );
        return;
    }
    if p.direction != "added" {
        for gone in before.difference(&now) {
            let state = prev
                .container(gone.trim_start_matches("container:"))
                .map(|c| {
                    let code = match (c.state, c.exit_code) {
                        (ContainerState::Exited, Some(code)) => format!("with code {code} and"),
                        _ => "with".to_string(),
                    };
                    format!(
                        " (it was {} {code} {} restarts)",
                        c.state.label(),
                        c.restart_count.unwrap_or(0)
                    )
                })
                .unwrap_or_default();
            push(
                gone,
                "removed",
                vec![entity_label(gone)],
                format!(
                    "{} was present at {}{state} and is gone from the container list at {}.",
                    entity_label(gone),
                    ctx.time(prev.captured_at.timestamp()),
                    ctx.time(at)
                ),
            );
        }
    }
    if p.direction != "removed" {
        for new in now.difference(&before) {
            push(
                new,
                "added",
                vec![entity_label(new)],
                format!(
                    "{} appeared between the captures at {} and {}.",
                    entity_label(new),
                    ctx.time(prev.captured_at.timestamp()),
                    ctx.time(at)
                ),
            );
        }
    }
}

/// Log templates that were part of a stream's vocabulary and have been absent for
/// `absent_for` captures in which the stream kept logging. A stream that went quiet, or a
/// capture whose log window is empty, is no evidence that one line stopped.
fn templates(
    p: &Params,
    rule: &Rule,
    ctx: &EvalContext,
    node: &NodeHistory,
    out: &mut Vec<Candidate>,
) {
    let Some(latest) = node.latest_at() else {
        return;
    };
    for (entity, series) in node.series_of("count") {
        let Some(rest) = entity.strip_prefix("logtpl:") else {
            continue;
        };
        let source = rest.split('|').next().unwrap_or_default();
        let stream = format!("log:{source}");
        if !rule.select.entity_matches(&stream) && !rule.select.entity_matches(entity) {
            continue;
        }
        let Some(lines) = node.series(&stream, "lines_total") else {
            continue;
        };
        let seen: Vec<i64> = series
            .points
            .iter()
            .filter(|pt| pt.value.is_some_and(|v| v > 0.0))
            .map(|pt| pt.at)
            .collect();
        let Some(&last_seen) = seen.last() else {
            continue;
        };
        if seen.len() < p.min_seen || last_seen == latest {
            continue;
        }
        let after: Vec<_> = lines.points.iter().filter(|pt| pt.at > last_seen).collect();
        let active = after
            .iter()
            .filter(|pt| pt.value.is_some_and(|v| v > 0.0))
            .count();
        if after.is_empty() || after.last().map(|pt| pt.at) != Some(latest) {
            continue;
        }
        if active < p.absent_for || active < after.len() {
            // Not enough captures yet, or the stream itself fell silent for a while.
            out.push(Candidate::undecided(node, entity, "vocabulary", latest));
            continue;
        }
        let mut c = Candidate::new(node, entity, "vocabulary", latest);
        let gone_for = (latest - last_seen) as f64;
        c.value("change", None, "gone");
        c.value("count", Some(seen.len() as f64), seen.len().to_string());
        c.value("names", None, entity_label(entity));
        c.value("before", Some(seen.len() as f64), seen.len().to_string());
        c.value("since", None, ctx.time(last_seen));
        c.value("last_seen", None, ctx.time(last_seen));
        c.evidence = format!(
            "{} was logged in {} captures, last at {}, and has been absent for {} ({} captures) while the stream kept logging.",
            entity_label(entity),
            seen.len(),
            ctx.time(last_seen),
            fmt_duration(gone_for),
            active
        );
        out.push(c);
    }
}
