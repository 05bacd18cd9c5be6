#![doc = include_str!("threshold.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::metrics::metric_unit;
use crate::rules::{Rule, phrase};
use crate::tomlread::Ctx;
use crate::units::fmt_value;

pub const SPEC: KindSpec = KindSpec {
    name: "threshold",
    doc: include_str!("threshold.md"),
    target: Target::Series,
    event: false,
    variables: &["value", "limit", "captures", "since", "reading", "streak"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub above: Option<f64>,
    pub below: Option<f64>,
    pub for_captures: usize,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let above = p.quantity(ctx, "above");
    let below = p.quantity(ctx, "below");
    let for_captures = p.fields.count(ctx, "for_captures").unwrap_or(1).max(1);
    if above.is_none() && below.is_none() && !p.fields.has("above") && !p.fields.has("below") {
        ctx.report(
            p.fields.span.clone(),
            format!("{} needs `above` or `below`", p.fields.what),
        );
        return None;
    }
    Some(Kind::Threshold(Params {
        above,
        below,
        for_captures,
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        if points.len() < p.for_captures {
            // Too few readings (a gap, a new entity) to decide: keep what is open.
            out.push(Candidate::undecided_at_end(node, entity, metric, points));
            continue;
        }
        let recent = &points[points.len() - p.for_captures..];
        let breach = |v: f64| -> Option<(f64, &'static str)> {
            match (p.above, p.below) {
                (Some(a), _) if v > a => Some((a, "above")),
                (_, Some(b)) if v < b => Some((b, "below")),
                _ => None,
            }
        };
        let all_breach = recent
            .iter()
            .all(|pt| pt.value.is_some_and(|v| breach(v).is_some()));
        let Some(last) = recent.last() else { continue };
        if !all_breach && last.value.is_some_and(|v| breach(v).is_some()) {
            // Past the threshold now, not yet for `for` captures: a breach starting (again)
            // is not a sign that it cleared.
            out.push(Candidate::undecided(node, entity, metric, last.at));
            continue;
        }
        let (Some(value), true) = (last.value, all_breach) else {
            continue;
        };
        let Some((limit, side)) = breach(value) else {
            continue;
        };
        let mut c = Candidate::new(node, entity, metric, last.at);
        let value_s = fmt_value(value, dim, suffix);
        let limit_s = fmt_value(limit, dim, suffix);
        c.value("value", Some(value), value_s.clone());
        c.value("limit", Some(limit), limit_s.clone());
        c.value(
            "captures",
            Some(recent.len() as f64),
            recent.len().to_string(),
        );
        let since = ctx.time(recent[0].at);
        c.value("since", None, since.clone());
        let reading = phrase::reading(entity, metric, value);
        c.value("reading", None, reading.clone());
        // "for 2 captures in a row since 12:00": only a rule that waits for a streak has one.
        let streak = if p.for_captures > 1 {
            format!("for {} captures in a row since {since}", recent.len())
        } else {
            String::new()
        };
        c.value("streak", None, streak.clone());
        let mut evidence = phrase::sentence(&reading);
        if !phrase::says_itself(metric, side, limit) {
            evidence.push_str(&format!(", {side} the limit of {limit_s}"));
        }
        if !streak.is_empty() {
            evidence.push_str(&format!(", {streak}"));
        }
        evidence.push('.');
        c.evidence = evidence;
        out.push(c);
    }
}
