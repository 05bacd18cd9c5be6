#![doc = include_str!("stall.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::metrics::{entity_label, metric_label};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{fmt_duration, fmt_number};

pub const SPEC: KindSpec = KindSpec {
    name: "stall",
    doc: include_str!("stall.md"),
    target: Target::Series,
    event: false,
    variables: &["pending", "workers", "captures", "since", "duration"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub captures: usize,
    /// The metric counting workers, on the same entity.
    pub workers_metric: String,
    /// The least backlog that counts as stalled (a handful of messages nobody reads is not).
    pub min_pending: f64,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let workers_metric = p
        .fields
        .string(ctx, "workers_metric", false)
        .map(|s| s.into_inner())
        .unwrap_or_else(|| "processing_workers".into());
    let min_pending = super::number(p, ctx, "min_pending");
    if let Some(m) = min_pending
        && m < 1.0
    {
        ctx.report(
            p.fields.span.clone(),
            format!("{}: `min_pending` must be at least 1", p.fields.what),
        );
        return None;
    }
    Some(Kind::Stall(Params {
        captures: p.fields.count(ctx, "captures").unwrap_or(3).max(1),
        workers_metric,
        min_pending: min_pending.unwrap_or(1.0),
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let Some(workers) = node.series(entity, &p.workers_metric) else {
            continue;
        };
        // Count back the captures in a row with work pending and nobody working; any other
        // capture resets the count, as seed 003's monitor does.
        let mut streak = 0;
        let mut since = None;
        let mut undecided = false;
        for pt in points.iter().rev() {
            let w = workers
                .points
                .binary_search_by_key(&pt.at, |x| x.at)
                .ok()
                .and_then(|i| workers.points[i].value);
            match (pt.value, w) {
                (Some(pending), Some(w)) if pending >= p.min_pending && w == 0.0 => {
                    streak += 1;
                    since = Some(pt.at);
                }
                (None, _) | (_, None) if streak == 0 => {
                    undecided = true;
                    break;
                }
                _ => break,
            }
        }
        let last = &points[points.len() - 1];
        if undecided {
            out.push(Candidate::undecided(node, entity, metric, last.at));
            continue;
        }
        let Some(since) = since.filter(|_| streak >= p.captures) else {
            continue;
        };
        let pending = last.value.unwrap_or(0.0);
        let duration = (last.at - since) as f64;
        let mut c = Candidate::new(node, entity, metric, last.at);
        c.value("pending", Some(pending), fmt_number(pending, 0));
        c.value("workers", Some(0.0), "0");
        c.value("captures", Some(streak as f64), streak.to_string());
        c.value("since", None, ctx.time(since));
        c.value("duration", Some(duration), fmt_duration(duration));
        c.evidence = if p.workers_metric == "processing_workers" {
            format!(
                "{} has had work pending and 0 workers processing in {streak} captures in a row since {} ({}); {} items are pending now.",
                entity_label(entity),
                ctx.time(since),
                fmt_duration(duration),
                fmt_number(pending, 0)
            )
        } else {
            // A broker's queue: say it in its own words ("messages ready", "consumers").
            format!(
                "{} has had {} or more {} and 0 {} in {streak} captures in a row since {} ({}); {} {} now.",
                entity_label(entity),
                fmt_number(p.min_pending, 0),
                metric_label(metric),
                metric_label(&p.workers_metric),
                ctx.time(since),
                fmt_duration(duration),
                fmt_number(pending, 0),
                metric_label(metric)
            )
        };
        out.push(c);
    }
}
