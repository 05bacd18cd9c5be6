#![doc = include_str!("projection.md")]

use super::growth_rate::{self, ProjectTo};
use super::{
    Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, current_run, fresh_series,
};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{
    RatePer, fmt_duration, fmt_duration_shown, fmt_near, fmt_number, fmt_rate, fmt_value,
    rate_per_secs, shown_value,
};

pub const SPEC: KindSpec = KindSpec {
    name: "projection",
    doc: include_str!("projection.md"),
    target: Target::Series,
    event: false,
    variables: &[
        "value",
        "limit",
        "rate",
        "eta",
        "eta_at",
        "projection",
        "samples",
        "span",
    ],
    headline: &["rate"],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub fit: growth_rate::Params,
    pub to: Limit,
    pub within_s: f64,
}

#[derive(Debug, Clone)]
pub enum Limit {
    Fixed(ProjectTo),
    /// The entity's own `size_bytes` reading (a disk's size).
    Size,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let to = match p.fields.value("to") {
        None => {
            ctx.report(
                p.fields.span.clone(),
                format!(
                    "{} needs parameter `to` (a quantity, \"mem_limit\" or \"size\")",
                    p.fields.what
                ),
            );
            return None;
        }
        Some(v) if v.get_ref().as_str() == Some("mem_limit") => Limit::Fixed(ProjectTo::MemLimit),
        Some(v) if v.get_ref().as_str() == Some("size") => Limit::Size,
        Some(_) => Limit::Fixed(ProjectTo::Value(p.quantity(ctx, "to")?)),
    };
    let within_s = p.duration(ctx, "within");
    let within_s = p.required(ctx, "within", within_s)?;
    let fit = growth_rate::Params {
        window_s: p.duration(ctx, "window").unwrap_or(6.0 * 3600.0),
        min_span_s: p.duration(ctx, "min_span").unwrap_or(1800.0).max(60.0),
        min_samples: p.fields.count(ctx, "min_samples").unwrap_or(4).max(3),
        min_rate: 0.0,
        max_rate: None,
        min_rate_pct: None,
        min_r2: super::number(p, ctx, "min_r2").unwrap_or(0.6),
        rate_per: RatePer::parse(&p.choice(ctx, "rate_per", &["min", "h", "day"], "h"))
            .unwrap_or(RatePer::Hour),
        project_to: None,
    };
    Some(Kind::Projection(Params { fit, to, within_s }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let limit = match &p.to {
            Limit::Fixed(ProjectTo::Value(v)) => Some(*v),
            Limit::Fixed(ProjectTo::MemLimit) => node
                .series(entity, "mem_limit_bytes")
                .and_then(|s| s.last())
                .and_then(|pt| pt.value),
            Limit::Size => node
                .series(entity, "size_bytes")
                .and_then(|s| s.last())
                .and_then(|pt| pt.value),
        };
        let Some(limit) = limit else { continue };
        let samples = current_run(node, entity, points, p.fit.window_s);
        if !super::covers(node, p.fit.min_span_s) {
            // After a capture gap, fewer readings than a trend needs: no verdict either way.
            out.push(Candidate::undecided_at_end(node, entity, metric, points));
            continue;
        }
        let run = match growth_rate::longest_run(&samples, &p.fit, |slope, _| slope > 0.0) {
            Err(()) => {
                out.push(Candidate::undecided_at_end(node, entity, metric, points));
                continue;
            }
            Ok(None) => {
                // Already past its limit: the rise stopped, the level did not come back.
                if samples.last().is_some_and(|(_, now)| *now >= limit) {
                    let at = points.last().map(|pt| pt.at).unwrap_or_default();
                    out.push(Candidate::holding(node, entity, metric, at));
                }
                continue;
            }
            Ok(Some(run)) => run,
        };
        let used = &samples[run.start..];
        let (t0, _) = used[0];
        let (t1, last) = used[used.len() - 1];
        let rate_s = fmt_rate(run.slope, dim, suffix, p.fit.rate_per);
        // The last value is printed with enough digits that the distance to the limit keeps
        // two significant digits, and the ETA is computed from the printed value, limit and
        // rate: "15.85GB, rising +120MB/h: 16GB in about 75 min" is what a reader recomputes.
        let limit_s = fmt_value(limit, dim, suffix);
        let shown_limit = shown_value(&limit_s, dim).unwrap_or(limit);
        let value_s = fmt_near(last, shown_limit, dim, suffix);
        let shown_last = shown_value(&value_s, dim).unwrap_or(last);
        let shown_rate = shown_value(rate_s.split('/').next().unwrap_or(""), dim)
            .map(|v| v / rate_per_secs(p.fit.rate_per))
            .unwrap_or(run.slope);
        let past = shown_last >= shown_limit;
        let (eta_s, eta) = if past || shown_rate <= 0.0 {
            ("0 s".to_string(), 0.0)
        } else {
            fmt_duration_shown((shown_limit - shown_last) / shown_rate)
        };
        if eta > p.within_s {
            continue;
        }
        let mut c = Candidate::new(node, entity, metric, t1);
        let eta_at = ctx.time(t1 + eta.round() as i64);
        let projection = if past {
            format!("already past {limit_s}")
        } else {
            format!("{limit_s} around {eta_at}")
        };
        c.value("value", Some(shown_last), value_s.clone());
        c.value("limit", Some(limit), limit_s.clone());
        c.value("rate", Some(shown_rate), rate_s.clone());
        c.value("eta", Some(eta), eta_s.clone());
        c.value("eta_at", None, if past { "now".to_string() } else { eta_at.clone() });
        c.value("projection", None, projection);
        c.value("samples", Some(used.len() as f64), used.len().to_string());
        c.value(
            "span",
            Some((t1 - t0) as f64),
            fmt_duration((t1 - t0) as f64),
        );
        let reach = if past {
            format!("it is already past {limit_s}")
        } else {
            format!("at {rate_s} it reaches {limit_s} in about {eta_s} (around {eta_at})")
        };
        c.evidence = format!(
            "{} {} is {value_s} at {} and has been rising {rate_s} over {} ({} captures, r² {}); {reach}.",
            entity_label(entity),
            metric_label(metric),
            ctx.time(t1),
            fmt_duration((t1 - t0) as f64),
            used.len(),
            fmt_number(run.r2, 2)
        );
        out.push(c);
    }
}
