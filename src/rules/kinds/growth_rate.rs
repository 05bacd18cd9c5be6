#![doc = include_str!("growth_rate.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh, least_squares};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{RatePer, fmt_change, fmt_duration, fmt_number, fmt_rate, fmt_value};

pub const SPEC: KindSpec = KindSpec {
    name: "growth-rate",
    doc: include_str!("growth_rate.md"),
    target: Target::Series,
    event: false,
    variables: &[
        "first", "last", "delta", "span", "rate", "r2", "samples", "limit", "eta", "eta_at",
    ],
    parse,
};

#[derive(Debug, Clone)]
pub enum ProjectTo {
    Value(f64),
    /// The container's own memory limit, when it has one.
    MemLimit,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub window_s: f64,
    pub min_span_s: f64,
    pub min_samples: usize,
    /// Units per second; negative to watch for decline.
    pub min_rate: f64,
    /// Units per second; a slope at or above this is left to a stronger rule.
    pub max_rate: Option<f64>,
    pub min_r2: f64,
    pub rate_per: RatePer,
    pub project_to: Option<ProjectTo>,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let window_s = p.duration(ctx, "window").unwrap_or(6.0 * 3600.0);
    let min_span_s = p.duration(ctx, "min_span").unwrap_or(1800.0);
    let min_samples = p.fields.count(ctx, "min_samples").unwrap_or(4).max(2);
    let min_rate = p.rate(ctx, "min_rate");
    let min_rate = p.required(ctx, "min_rate", min_rate)?;
    let max_rate = p.rate(ctx, "max_rate");
    let min_r2 = p.fields.number(ctx, "min_r2").map(|n| n.into_inner()).unwrap_or(0.6);
    let rate_per = p.choice(ctx, "rate_per", &["min", "h", "day"], "h");
    let project_to = match p.fields.value("project_to") {
        None => None,
        Some(v) if v.get_ref().as_str() == Some("mem_limit") => Some(ProjectTo::MemLimit),
        Some(_) => p.quantity(ctx, "project_to").map(ProjectTo::Value),
    };
    if min_span_s < 600.0 {
        // A trend needs time: the seed extrapolated 74 seconds and was refuted next report.
        if let Some(v) = p.fields.value("min_span") {
            ctx.report(
                v.span(),
                format!("{}: `min_span` must be at least 10m; shorter spans extrapolate noise", p.fields.what),
            );
        }
    }
    Some(Kind::GrowthRate(Params {
        window_s,
        min_span_s: min_span_s.max(600.0),
        min_samples,
        min_rate,
        max_rate,
        min_r2,
        rate_per: RatePer::parse(&rate_per).unwrap_or(RatePer::Hour),
        project_to,
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for (node, entity, series) in rule.select.series(ctx.window) {
        let Some(points) = fresh(node, series) else {
            continue;
        };
        let Some(last_at) = points.last().map(|pt| pt.at) else { continue };
        // Only the current run of the entity counts: after a reboot or a container restart the
        // value starts again from its base.
        let mut start = (last_at as f64 - p.window_s) as i64;
        start = start.max(node.segment_start());
        if let Some(restarts) = node.series(entity, "restart_count") {
            let pts = restarts.since(start);
            for pair in pts.windows(2) {
                if let (Some(a), Some(b)) = (pair[0].value, pair[1].value)
                    && b != a
                {
                    start = start.max(pair[1].at);
                }
            }
        }
        let samples: Vec<(i64, f64)> = points
            .iter()
            .filter(|pt| pt.at >= start)
            .filter_map(|pt| pt.value.map(|v| (pt.at, v)))
            .collect();
        if samples.len() < p.min_samples {
            continue;
        }
        let (t0, first) = samples[0];
        let (t1, last) = samples[samples.len() - 1];
        let span = (t1 - t0) as f64;
        if span < p.min_span_s {
            continue;
        }
        let Some(fit) = least_squares(&samples) else { continue };
        let fires = if p.min_rate >= 0.0 {
            fit.slope >= p.min_rate
        } else {
            fit.slope <= p.min_rate
        };
        let below_max = p.max_rate.is_none_or(|m| fit.slope < m);
        if !fires || !below_max || fit.r2 < p.min_r2 {
            continue;
        }
        let mut c = Candidate::new(node, entity, metric, t1);
        let change = fmt_change(first, last, dim, suffix);
        let rate = fmt_rate(fit.slope, dim, suffix, p.rate_per);
        c.value("first", Some(first), change.before.clone());
        c.value("last", Some(last), change.after.clone());
        c.value("delta", Some(change.shown_delta), change.delta.clone());
        c.value("span", Some(span), fmt_duration(span));
        c.value("rate", Some(fit.slope), rate.clone());
        c.value("r2", Some(fit.r2), fmt_number(fit.r2, 2));
        c.value("samples", Some(samples.len() as f64), samples.len().to_string());
        let mut evidence = format!(
            "{} {} went from {} at {} to {} at {} ({} over {}, {} captures); the least-squares trend is {} (r² {}).",
            entity_label(entity),
            metric_label(metric),
            change.before,
            ctx.time(t0),
            change.after,
            ctx.time(t1),
            change.delta,
            fmt_duration(span),
            samples.len(),
            rate,
            fmt_number(fit.r2, 2),
        );
        let limit = match &p.project_to {
            Some(ProjectTo::Value(v)) => Some(*v),
            Some(ProjectTo::MemLimit) => node
                .series(entity, "mem_limit_bytes")
                .and_then(|s| s.last())
                .and_then(|pt| pt.value),
            None => None,
        };
        let (mut limit_s, mut eta_s, mut eta_at_s) = ("-".to_string(), "-".to_string(), "-".to_string());
        if let Some(limit) = limit
            && fit.slope > 0.0
            && last < limit
        {
            let eta = (limit - last) / fit.slope;
            limit_s = fmt_value(limit, dim, suffix);
            eta_s = fmt_duration(eta);
            eta_at_s = ctx.time(t1 + eta as i64);
            c.value("eta", Some(eta), eta_s.clone());
            evidence.push_str(&format!(
                " At this rate it reaches {limit_s} in about {eta_s} (around {eta_at_s})."
            ));
        }
        c.value("limit", limit, limit_s);
        if !c.values.contains_key("eta") {
            c.value("eta", None, eta_s);
        }
        c.value("eta_at", None, eta_at_s);
        c.evidence = evidence;
        out.push(c);
    }
}
