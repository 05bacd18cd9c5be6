#![doc = include_str!("churn.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::metrics::{entity_label, metric_label};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{RatePer, fmt_duration_shown, fmt_number};

pub const SPEC: KindSpec = KindSpec {
    name: "churn",
    doc: include_str!("churn.md"),
    target: Target::Series,
    event: false,
    variables: &["before", "after", "advance", "rate", "interval"],
    headline: &["rate"],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    /// Counter units per second.
    pub min_rate: f64,
    pub rate_per: RatePer,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let min_rate = p.rate(ctx, "min_rate");
    let min_rate = p.required(ctx, "min_rate", min_rate)?;
    let rate_per = RatePer::parse(&p.choice(ctx, "rate_per", &["min", "h", "day"], "min"))
        .unwrap_or(RatePer::Minute);
    Some(Kind::Churn(Params { min_rate, rate_per }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let [.., p0, p1] = points else {
            out.push(Candidate::undecided_at_end(node, entity, metric, points));
            continue;
        };
        let (Some(before), Some(after)) = (p0.value, p1.value) else {
            continue;
        };
        let gap = (p1.at - p0.at) as f64;
        // A counter that went down was reset (restart, wrap): no rate across it.
        if gap <= 0.0 || after < before {
            continue;
        }
        let rate = (after - before) / gap;
        if rate < p.min_rate {
            continue;
        }
        let (per_s, per_label) = match p.rate_per {
            RatePer::Minute => (60.0, "min"),
            RatePer::Hour => (3600.0, "h"),
            RatePer::Day => (86400.0, "day"),
        };
        // The printed rate is the printed advance over the printed interval, so a reader who
        // divides gets the same figure ("1290 in 15.3 min, ~84/min").
        let (interval_s, shown_gap) = fmt_duration_shown(gap);
        let shown_rate = (after - before) / shown_gap;
        let rate_s = format!("~{}/{per_label}", fmt_number(shown_rate * per_s, 0));
        let mut c = Candidate::new(node, entity, metric, p1.at);
        c.value("before", Some(before), fmt_number(before, 0));
        c.value("after", Some(after), fmt_number(after, 0));
        c.value(
            "advance",
            Some(after - before),
            fmt_number(after - before, 0),
        );
        c.value("rate", Some(shown_rate), rate_s.clone());
        c.value("interval", Some(shown_gap), interval_s.clone());
        c.evidence = format!(
            "{} {} advanced from {} ({}) to {} ({}): {} in {interval_s}, {rate_s}.",
            entity_label(entity),
            metric_label(metric),
            fmt_number(before, 0),
            ctx.time(p0.at),
            fmt_number(after, 0),
            ctx.time(p1.at),
            fmt_number(after - before, 0),
        );
        out.push(c);
    }
}
