#![doc = include_str!("silence.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, and_list};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::rules::Rule;
use crate::rules::states::{Condition, parse_conditions};
use crate::tomlread::Ctx;
use crate::units::{fmt_duration, fmt_value};

pub const SPEC: KindSpec = KindSpec {
    name: "silence",
    doc: include_str!("silence.md"),
    target: Target::Node,
    event: false,
    variables: &["silent_for", "last_lines_at", "activity"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub for_s: f64,
    pub activity: Vec<Condition>,
    /// Count lifecycle events of tracked entities (workers created, promoted, terminated) after
    /// the stream fell silent as activity.
    pub entities: bool,
    /// Count container churn on the node after the stream fell silent as activity: containers
    /// that appeared, exited (or went away) or restarted between consecutive captures.
    pub churn: bool,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let activity = parse_conditions(&mut p.fields, ctx, "activity");
    let entities = p.fields.boolean(ctx, "entities").unwrap_or(true);
    let churn = p.fields.boolean(ctx, "churn").unwrap_or(false);
    if activity.is_empty() && !entities && !churn {
        ctx.report(
            p.fields.span.clone(),
            format!(
                "{} needs evidence of activity: `activity` conditions, `entities = true` or `churn = true`; silence alone is not a finding",
                p.fields.what
            ),
        );
        return None;
    }
    Some(Kind::Silence(Params {
        for_s: p.duration(ctx, "for").unwrap_or(300.0),
        activity,
        entities,
        churn,
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        let latest = snap.captured_at.timestamp();
        for (stream, series) in node.series_of("lines_total") {
            if !rule.select.entity_matches(stream) {
                continue;
            }
            let Some(last) = series.last().filter(|pt| pt.at == latest) else {
                continue;
            };
            if last.value.is_none_or(|v| v > 0.0) {
                continue;
            }
            if stopped(snap, stream) {
                // A container that is not running writes nothing because it stopped, not
                // because its logging broke; its exit is told by other rules. An open finding
                // stays open: its log cannot be judged while it is down.
                out.push(Candidate::undecided(node, stream, "silence", latest));
                continue;
            }
            // The newest capture that still brought lines; the stream has been silent since.
            let Some(last_lines) = series
                .points
                .iter()
                .rev()
                .find(|pt| pt.value.is_some_and(|v| v > 0.0))
                .map(|pt| pt.at)
            else {
                // No line in the whole window: how long it has been silent is not known, so
                // an open finding neither resolves nor is said again.
                out.push(Candidate::undecided(node, stream, "silence", latest));
                continue;
            };
            let silent_for = (latest - last_lines) as f64;
            if silent_for < p.for_s {
                continue;
            }
            let mut evidence: Vec<String> = Vec::new();
            for cond in &p.activity {
                if let Some((entity, v)) = cond.passing(node)
                    && entity != stream
                {
                    let (dim, suffix) = metric_unit(&cond.metric);
                    evidence.push(format!(
                        "{} {} is {}",
                        entity_label(&entity),
                        metric_label(&cond.metric),
                        fmt_value(v, dim, suffix)
                    ));
                }
            }
            if p.entities {
                let mut events = 0;
                for e in &snap.entities {
                    for t in [Some(e.created_at), e.promoted_at, e.terminated_at]
                        .into_iter()
                        .flatten()
                    {
                        if t.timestamp() > last_lines {
                            events += 1;
                        }
                    }
                }
                if events > 0 {
                    evidence.push(format!(
                        "{events} lifecycle events of tracked {} (created, promoted, terminated) happened since",
                        snap.entities
                            .first()
                            .map(|e| format!("{}s", e.kind))
                            .unwrap_or_else(|| "entities".into())
                    ));
                }
            }
            if p.churn
                && let Some(said) = churn_since(node, last_lines)
            {
                evidence.push(said);
            }
            if evidence.is_empty() {
                // Still silent, but nothing shows the component working: an idle component has
                // nothing to say, and that is no sign its logging came back either. An open
                // finding stays open until lines arrive.
                out.push(Candidate::undecided(node, stream, "silence", latest));
                continue;
            }
            // Only lines arriving resolve it, and they prove the logging works in any state:
            // the finding need not wait for the work it was raised under.
            let mut c = Candidate::new(node, stream, "silence", latest).in_any_state();
            c.value("silent_for", Some(silent_for), fmt_duration(silent_for));
            c.value("last_lines_at", None, ctx.time(last_lines));
            c.value("activity", None, and_list(&evidence));
            c.evidence = format!(
                "{} has written no line since the capture at {} ({}), yet {}: the component works but its log does not arrive.",
                entity_label(stream),
                ctx.time(last_lines),
                fmt_duration(silent_for),
                and_list(&evidence)
            );
            out.push(c);
        }
    }
}

/// The stream is a container's log and the container is not running at the capture: exited,
/// restarting, paused, or gone from a container list that was read.
fn stopped(snap: &crate::model::Snapshot, stream: &str) -> bool {
    let Some(name) = stream.strip_prefix("log:container:") else {
        return false;
    };
    let Some(containers) = &snap.containers else {
        return false;
    };
    containers
        .iter()
        .find(|c| c.name == name)
        .is_none_or(|c| c.state != crate::model::ContainerState::Running)
}

/// Container churn on the node in the captures after `since`, read from consecutive snapshots:
/// containers that appeared, that exited or went away, and restarts Docker counted. A worker
/// farm that spawns a container per job is working even when its queue is not visible.
fn churn_since(node: &crate::history::NodeHistory, since: i64) -> Option<String> {
    use crate::model::ContainerState;
    let snaps: Vec<&crate::model::Snapshot> = node.recent().collect();
    let (mut created, mut exited, mut restarted) = (0u64, 0u64, 0u64);
    for pair in snaps.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        if after.captured_at.timestamp() <= since {
            continue;
        }
        // A capture whose Docker source failed has no container list: not an exit of all.
        let (Some(was), Some(now)) = (&before.containers, &after.containers) else {
            continue;
        };
        let running = |c: &crate::model::Container| c.state == ContainerState::Running;
        for c in now {
            match was.iter().find(|b| b.name == c.name) {
                None => created += 1,
                Some(b) => {
                    if running(b) && !running(c) {
                        exited += 1;
                    }
                    let (rb, ra) = (b.restart_count.unwrap_or(0), c.restart_count.unwrap_or(0));
                    restarted += u64::from(ra.saturating_sub(rb));
                }
            }
        }
        exited += was
            .iter()
            .filter(|b| running(b) && !now.iter().any(|c| c.name == b.name))
            .count() as u64;
    }
    let mut parts = Vec::new();
    if created > 0 {
        parts.push(crate::units::plural(created as usize, "container") + " created");
    }
    if exited > 0 {
        parts.push(format!("{exited} exited"));
    }
    if restarted > 0 {
        parts.push(crate::units::plural(restarted as usize, "restart"));
    }
    (!parts.is_empty()).then(|| format!("{} on the node since", and_list(&parts)))
}
