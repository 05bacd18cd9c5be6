#![doc = include_str!("growth_rate.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{
    RatePer, fmt_change, fmt_duration_shown, fmt_number, fmt_rate, fmt_rate_of, fmt_value,
    rate_per_secs, shown_value,
};

pub const SPEC: KindSpec = KindSpec {
    name: "growth-rate",
    doc: include_str!("growth_rate.md"),
    target: Target::Series,
    event: false,
    variables: &[
        "first",
        "last",
        "delta",
        "span",
        "rate",
        "r2",
        "samples",
        "limit",
        "eta",
        "eta_at",
        "projection",
    ],
    headline: &["rate"],
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
    /// Percent per hour of the run's first value; small absolute growth of a big value is not
    /// worth a line.
    pub min_rate_pct: Option<f64>,
    pub min_r2: f64,
    pub rate_per: RatePer,
    pub project_to: Option<ProjectTo>,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let window_s = p.duration(ctx, "window").unwrap_or(6.0 * 3600.0);
    let min_span_s = p.duration(ctx, "min_span").unwrap_or(1800.0);
    let min_samples = p.fields.count(ctx, "min_samples").unwrap_or(4);
    let min_rate = p.rate(ctx, "min_rate");
    let min_rate = p.required(ctx, "min_rate", min_rate)?;
    let max_rate = p.rate(ctx, "max_rate");
    let min_rate_pct = p.fields.number(ctx, "min_rate_pct").map(|n| n.into_inner());
    let min_r2 = p
        .fields
        .number(ctx, "min_r2")
        .map(|n| n.into_inner())
        .unwrap_or(0.6);
    let rate_per = p.choice(ctx, "rate_per", &["min", "h", "day"], "h");
    let project_to = match p.fields.value("project_to") {
        None => None,
        Some(v) if v.get_ref().as_str() == Some("mem_limit") => Some(ProjectTo::MemLimit),
        Some(_) => p.quantity(ctx, "project_to").map(ProjectTo::Value),
    };
    // A trend needs time and readings: the seed extrapolated two readings 74 s apart, and the
    // next report refuted it.
    if min_span_s < 60.0
        && let Some(v) = p.fields.value("min_span")
    {
        ctx.report(
            v.span(),
            format!(
                "{}: `min_span` must be at least 1m; shorter spans extrapolate noise",
                p.fields.what
            ),
        );
    }
    if min_samples < 3
        && let Some(v) = p.fields.value("min_samples")
    {
        ctx.report(
            v.span(),
            format!("{}: `min_samples` must be at least 3", p.fields.what),
        );
    }
    Some(Kind::GrowthRate(Params {
        window_s,
        min_span_s: min_span_s.max(60.0),
        min_samples: min_samples.max(3),
        min_rate,
        max_rate,
        min_rate_pct,
        min_r2,
        rate_per: RatePer::parse(&rate_per).unwrap_or(RatePer::Hour),
        project_to,
    }))
}

/// The fit of the longest recent run of readings that is a good straight line.
pub(super) struct RunFit {
    pub start: usize,
    pub slope: f64,
    pub r2: f64,
}

/// How much worse than the best fit a longer run may be and still be preferred.
const R2_SLACK: f64 = 0.01;

/// Fits every suffix of `samples` in one backward pass (running sums). Among the suffixes with
/// enough readings and span, a slope `accept`s and a fit of at least `min_r2`, it returns the
/// longest whose fit is within [`R2_SLACK`] of the best: long enough to be a trend, but not
/// stretched back over readings from before the trend began.
/// `Err(())` when no suffix even has enough readings and span: the rule cannot decide.
pub(super) fn longest_run(
    samples: &[(i64, f64)],
    p: &Params,
    accept: impl Fn(f64, f64) -> bool,
) -> Result<Option<RunFit>, ()> {
    let n = samples.len();
    let Some(&(t_last, v_last)) = samples.last() else {
        return Err(());
    };
    let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut enough = false;
    let mut good: Vec<RunFit> = Vec::new();
    for k in (0..n).rev() {
        let (t, v) = samples[k];
        let x = (t - t_last) as f64;
        let y = v - v_last;
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
        let m = (n - k) as f64;
        if n - k < p.min_samples || ((t_last - t) as f64) < p.min_span_s {
            continue;
        }
        enough = true;
        let vxx = sxx - sx * sx / m;
        let vyy = syy - sy * sy / m;
        let vxy = sxy - sx * sy / m;
        if vxx <= 0.0 {
            continue;
        }
        let slope = vxy / vxx;
        let r2 = if vyy <= 0.0 {
            1.0
        } else {
            (vxy * vxy / (vxx * vyy)).min(1.0)
        };
        if r2 >= p.min_r2 && accept(slope, v) {
            good.push(RunFit {
                start: k,
                slope,
                r2,
            });
        }
    }
    if !enough {
        return Err(());
    }
    let best = good.iter().map(|f| f.r2).fold(f64::NEG_INFINITY, f64::max);
    Ok(good
        .into_iter()
        .filter(|f| f.r2 >= best - R2_SLACK)
        .min_by_key(|f| f.start))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let Some(last_at) = points.last().map(|pt| pt.at) else {
            continue;
        };
        let samples = super::current_run(node, entity, points, p.window_s);
        if !super::covers(node, p.min_span_s) {
            // After a capture gap, fewer readings than a trend needs: no verdict either way.
            out.push(Candidate::undecided(node, entity, metric, last_at));
            continue;
        }
        let limit = match &p.project_to {
            Some(ProjectTo::Value(v)) => Some(*v),
            Some(ProjectTo::MemLimit) => node
                .series(entity, "mem_limit_bytes")
                .and_then(|s| s.last())
                .and_then(|pt| pt.value),
            None => None,
        };
        let accept = |slope: f64, first: f64| {
            let fast_enough = if p.min_rate >= 0.0 {
                slope >= p.min_rate
            } else {
                slope <= p.min_rate
            };
            let below_max = p.max_rate.is_none_or(|m| slope < m);
            let relative = p.min_rate_pct.is_none_or(|pct| {
                first != 0.0 && (slope * 3600.0 / first.abs() * 100.0).abs() >= pct
            });
            fast_enough && below_max && relative
        };
        let run = match longest_run(&samples, p, accept) {
            Err(()) => {
                // Too few readings since the last reset: an open finding can't be confirmed gone.
                out.push(Candidate::undecided(node, entity, metric, last_at));
                continue;
            }
            Ok(None) => {
                // A projected level already passed stays passed while the trend wavers: the
                // growth that led there is not undone by a fit that no longer holds.
                if let (Some(limit), Some((_, now))) = (limit, samples.last())
                    && *now >= limit
                {
                    out.push(Candidate::holding(node, entity, metric, last_at));
                }
                continue;
            }
            Ok(Some(run)) => run,
        };
        let used = &samples[run.start..];
        let (t0, first) = used[0];
        let (t1, last) = used[used.len() - 1];
        let span = (t1 - t0) as f64;
        let mut c = Candidate::new(node, entity, metric, t1);
        let change = fmt_change(first, last, dim, suffix);
        // The rate printed beside "A → B in T" is (B - A) / T as printed: the least-squares
        // slope chose the run and vouches for its straightness, but a reader divides the
        // printed numbers, so those are what the rate and the ETA are computed from.
        let (span_s, shown_span) = fmt_duration_shown(span);
        let (rate, rate_value) =
            fmt_rate_of(change.shown_delta, shown_span, dim, suffix, p.rate_per);
        let fit = fmt_rate(run.slope, dim, suffix, p.rate_per);
        c.value("first", Some(first), change.before.clone());
        c.value("last", Some(last), change.after.clone());
        c.value("delta", Some(change.shown_delta), change.delta.clone());
        c.value("span", Some(shown_span), span_s.clone());
        c.value("rate", Some(rate_value), rate.clone());
        c.value("r2", Some(run.r2), fmt_number(run.r2, 2));
        c.value("samples", Some(used.len() as f64), used.len().to_string());
        let mut evidence = format!(
            "{} {} went from {} at {} to {} at {} ({} over {span_s}, {}, {} captures); the least-squares trend is {fit} (r² {}).",
            entity_label(entity),
            metric_label(metric),
            change.before,
            ctx.time(t0),
            change.after,
            ctx.time(t1),
            change.delta,
            rate,
            used.len(),
            fmt_number(run.r2, 2),
        );
        let (mut limit_s, mut eta_s, mut eta_at_s, mut projection) = (
            "-".to_string(),
            "-".to_string(),
            "-".to_string(),
            "no limit to project to".to_string(),
        );
        let mut eta_value = None;
        if let Some(limit) = limit {
            limit_s = fmt_value(limit, dim, suffix);
            let shown_limit = shown_value(&limit_s, dim).unwrap_or(limit);
            let shown_last = change.shown_after;
            let shown_rate = shown_value(rate.split('/').next().unwrap_or(""), dim)
                .map(|v| v / rate_per_secs(p.rate_per));
            if shown_last >= shown_limit {
                projection = format!("already past {limit_s}");
                evidence.push_str(&format!(" It is already past {limit_s}."));
            } else if let Some(r) = shown_rate.filter(|r| *r > 0.0) {
                // From the printed last value, limit and rate: what a reader would compute.
                let (text, eta) = fmt_duration_shown((shown_limit - shown_last) / r);
                eta_value = Some(eta);
                eta_s = text;
                eta_at_s = ctx.time(t1 + eta.round() as i64);
                projection = format!("{limit_s} around {eta_at_s}");
                evidence.push_str(&format!(
                    " At {rate} it reaches {limit_s} in about {eta_s} (around {eta_at_s})."
                ));
            }
        }
        c.value("limit", limit, limit_s);
        c.value("eta", eta_value, eta_s);
        c.value("eta_at", None, eta_at_s);
        c.value("projection", None, projection);
        c.evidence = evidence;
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            window_s: 6.0 * 3600.0,
            min_span_s: 1800.0,
            min_samples: 4,
            min_rate: 0.0,
            max_rate: None,
            min_rate_pct: None,
            min_r2: 0.9,
            rate_per: RatePer::Hour,
            project_to: None,
        }
    }

    #[test]
    fn finds_the_recent_run_not_the_diluted_whole() {
        // Flat for 3 h, then +2MB per 15 min for 1.5 h.
        let mut samples: Vec<(i64, f64)> = (0..12).map(|i| (i * 900, 100e6)).collect();
        samples.extend((1..=6).map(|i| ((11 + i) * 900, 100e6 + 2e6 * i as f64)));
        let run = longest_run(&samples, &params(), |s, _| s > 0.0)
            .unwrap()
            .unwrap();
        assert!(
            (run.slope * 3600.0 - 8e6).abs() < 1e3,
            "slope {}",
            run.slope * 3600.0
        );
        assert!(
            run.start >= 10 && run.start <= 11,
            "starts where the climb starts: {}",
            run.start
        );
        assert!(run.r2 > 0.99);
    }

    #[test]
    fn too_few_readings_cannot_decide() {
        let samples = vec![(0, 1.0), (74, 2.0)];
        assert!(longest_run(&samples, &params(), |_, _| true).is_err());
    }
}
