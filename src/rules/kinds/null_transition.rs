#![doc = include_str!("null_transition.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{fmt_duration, fmt_value};

pub const SPEC: KindSpec = KindSpec {
    name: "null-transition",
    doc: include_str!("null_transition.md"),
    target: Target::Series,
    event: false,
    variables: &[
        "last_value",
        "last_value_at",
        "null_captures",
        "null_since",
        "null_for",
        "still_reporting",
    ],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    /// Consecutive null captures needed (1 = the first null; 2+ = sustained).
    pub min_captures: usize,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let min_captures = p.fields.count(ctx, "min_captures").unwrap_or(1).max(1);
    Some(Kind::NullTransition(Params { min_captures }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let nulls = points
            .iter()
            .rev()
            .take_while(|pt| pt.value.is_none())
            .count();
        if nulls < p.min_captures {
            continue;
        }
        let Some(last_good) = points[..points.len() - nulls]
            .iter()
            .rev()
            .find_map(|pt| pt.value.map(|v| (pt.at, v)))
        else {
            // Null for longer than the window holds: the last value has left it, the blackout
            // has not. An open finding stays open until a value comes back.
            if let Some(last) = points.last() {
                out.push(Candidate::holding(node, entity, metric, last.at));
            }
            continue;
        };
        let first_null = points[points.len() - nulls].at;
        let Some(last) = points.last() else { continue };
        let null_for = (last.at - first_null) as f64;
        let mut c = Candidate::new(node, entity, metric, last.at).in_any_state();
        let last_value = fmt_value(last_good.1, dim, suffix);
        c.value("last_value", Some(last_good.1), last_value.clone());
        c.value("last_value_at", None, ctx.time(last_good.0));
        c.value("null_captures", Some(nulls as f64), nulls.to_string());
        c.value("null_since", None, ctx.time(first_null));
        c.value("null_for", Some(null_for), fmt_duration(null_for));
        let siblings: Vec<String> = node
            .siblings_reporting(entity, metric)
            .into_iter()
            .map(|(m, v)| {
                let (d, s) = metric_unit(m);
                format!("{} {}", metric_label(m), fmt_value(v, d, s))
            })
            .collect();
        c.value("still_reporting", None, siblings.join(", "));
        let duration = if nulls > 1 {
            format!(", {} captures over {}", nulls, fmt_duration(null_for))
        } else {
            String::new()
        };
        let mut evidence = format!(
            "{} {} was {last_value} at {} and has been null since {}{duration}, while the source still answers.",
            entity_label(entity),
            metric_label(metric),
            ctx.time(last_good.0),
            ctx.time(first_null),
        );
        let null_siblings: Vec<String> = node
            .siblings_null(entity, metric)
            .into_iter()
            .map(|m| metric_label(m).to_string())
            .collect();
        if !null_siblings.is_empty() {
            evidence.push_str(&format!(" Also null: {}.", null_siblings.join(", ")));
        }
        if !siblings.is_empty() {
            evidence.push_str(&format!(" Still reporting: {}.", siblings.join(", ")));
        }
        c.evidence = evidence;
        out.push(c);
    }
}
