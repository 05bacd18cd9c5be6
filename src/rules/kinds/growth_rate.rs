#![doc = include_str!("growth_rate.md")]

mod warm_up;

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
        "from",
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
    /// A metric of the same entity that measures its work (a container's `cpu_cores`): a
    /// straight climb that rises with it is the work's memory, undecided until the load falls.
    pub load: Option<String>,
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
    let load = crate::rules::load_follow::parse(p, ctx);
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
        load,
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

/// What the readings before a climb say about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Cycle {
    /// Nothing before the climb fell back by a comparable amount: the climb is growth.
    None,
    /// The series fell by at least half of the climb before it, from where its history begins:
    /// a cycle's previous peak lies before the history, so the climb cannot be judged yet.
    Unknown,
    /// The series fell back from a peak before this climb by at least half of it, so the climb
    /// is a phase of a cycle: it is growth only as far as it goes past that peak. `trough` is
    /// the low the climb started from.
    After {
        peak_at: i64,
        peak: f64,
        trough: f64,
    },
}

/// Whether the climb `readings[start..]` (values signed so that growth is positive) repeats a
/// cycle: before it, the series came down from a peak by at least half of the climb.
pub(super) fn cycle(readings: &[(i64, f64)], start: usize) -> Cycle {
    let (Some(&(_, last)), Some(&(_, first))) = (readings.last(), readings.get(start)) else {
        return Cycle::None;
    };
    let Some((peak_i, &(peak_at, peak))) = readings[..start]
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
    else {
        return Cycle::None;
    };
    let trough = readings[peak_i..=start]
        .iter()
        .map(|r| r.1)
        .fold(first, f64::min);
    let climb = last - first;
    if climb <= 0.0 {
        return Cycle::None;
    }
    let rose_to_peak = peak
        - readings[..=peak_i]
            .iter()
            .map(|r| r.1)
            .fold(peak, f64::min);
    if rose_to_peak
        <= 2.0
            * crate::rules::load_follow::typical_step(
                &readings[..=start].iter().map(|r| r.1).collect::<Vec<_>>(),
            ) && peak - trough >= climb / 4.0 {
        // Nothing climbed to the highest reading before the climb by more than the series'
        // jitter: it is the history's start (or a reading of noise just after it), the series
        // was already falling when the history began, so that is no peak, and the fall seen is
        // only a part of the cycle's. A climb back up is neither growth nor proof of a cycle
        // yet.
        return Cycle::Unknown;
    }
    if peak - trough < climb / 2.0 {
        return Cycle::None;
    }
    Cycle::After {
        peak_at,
        peak,
        trough,
    }
}

/// Whether an open growth finding still holds at the reading `now`: the level has not come back
/// to where the growth started (its `first` value; for a cycle whose peaks climb, the low the
/// cycle started from). A leak that pauses is not fixed until then.
pub fn still_holds(f: &crate::model::Finding, now: f64) -> bool {
    let value = |k: &str| f.values.get(k).and_then(|v| v.value);
    let start = value("from").or(value("first"));
    match (start, value("delta")) {
        (Some(first), Some(delta)) if delta > 0.0 => now > first,
        (Some(first), Some(delta)) if delta < 0.0 => now < first,
        _ => false,
    }
}

/// The trend a finding reports: a straight run of readings, or the level of a cycle against
/// the same phase one period earlier.
struct Trend {
    t0: i64,
    first: f64,
    t1: i64,
    last: f64,
    samples: usize,
    /// Least-squares slope and r² of a straight run; `None` for a cycle's peaks.
    fit: Option<(f64, f64)>,
    /// For a cycle whose peaks climb, the low this cycle started from: where the growth that
    /// must be undone started.
    cycle_from: Option<f64>,
}

/// Whether the growth over `readings` happened only while the node's `line` state was idle:
/// readings taken in production (at least one) moved it by under a tenth of what the idle ones
/// added.
fn grows_only_while_idle(ctx: &EvalContext, node: &crate::history::NodeHistory, readings: &[(i64, f64)], sign: f64) -> bool {
    let Some(line) = ctx.state_defs.iter().find(|d| d.id == IDLE_STATE.0) else {
        return false;
    };
    let (mut idle, mut busy, mut busy_steps) = (0.0, 0.0, 0);
    for w in readings.windows(2) {
        let step = (w[1].1 - w[0].1) * sign;
        match crate::rules::gate_window::state_at(line, ctx.window, node, w[1].0).as_deref() {
            Some(v) if v == IDLE_STATE.1 => idle += step.max(0.0),
            Some(_) => {
                busy += step;
                busy_steps += 1;
            }
            None => return false,
        }
    }
    busy_steps > 0 && idle > 0.0 && busy.abs() < idle / 10.0
}

/// The state and value in which growth is "while idle" (`rules/states.toml`).
const IDLE_STATE: (&str, &str) = ("line", "idle");

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let sign = if p.min_rate >= 0.0 { 1.0 } else { -1.0 };
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
                // growth that led there is not undone by a fit that no longer holds. A restart
                // or a reboot is no fix either, but it is no verdict: the readings since it
                // (`samples` starts there) are judged once they are enough for a trend
                // (`Err` above until then), and only growth seen in them holds the finding.
                let passed = matches!((limit, samples.last()), (Some(limit), Some((_, now))) if *now >= limit);
                if passed {
                    out.push(Candidate::holding(node, entity, metric, last_at));
                }
                continue;
            }
            Ok(Some(run)) => run,
        };
        // A counter's growth is how fast it counts now: a job that wrote 500GB overnight and
        // stopped is not writing, whatever the line through the night says.
        if crate::history::catalogue::COUNTERS.contains(&metric)
            && !counting_now(node, entity, p, &samples, &accept)
        {
            continue;
        }
        let used = &samples[run.start..];
        let (t0, first) = used[0];
        let (t1, last) = used[used.len() - 1];
        if one_step(used, run.slope) {
            // A level that moved in one capture is a jump (the jump and drop rules say it),
            // not a rate: a training job's evaluation hour is no leak.
            continue;
        }
        if warm_up::warming_back(node, entity, metric, &samples, run.slope, limit) {
            // Back from a restart toward the plateau it held before: a cache or a heap warming
            // up, undecided until it passes that level (a leak) or settles there.
            out.push(Candidate::undecided(node, entity, metric, last_at));
            continue;
        }
        // A climb that repeats a cycle (memory rising through the day and falling back every
        // night) is judged by its level against the same phase one period earlier.
        let whole: Vec<(i64, f64)> =
            super::current_run(node, entity, points, ctx.window.span_s() as f64)
                .into_iter()
                .map(|(t, v)| (t, v * sign))
                .collect();
        let start = whole.partition_point(|r| r.0 < t0);
        let trend = match cycle(&whole, start) {
            Cycle::Unknown => {
                out.push(Candidate::undecided(node, entity, metric, last_at));
                continue;
            }
            Cycle::None
                if !urgent(limit, last, run.slope, (t1 - t0) as f64)
                    && p.load.as_deref().is_some_and(|load| {
                    node.series(entity, load).is_some_and(|s| {
                        crate::rules::load_follow::load_up(&s.points, last_at)
                            || crate::rules::load_follow::tracks_load(&s.points, used, p.min_samples, false)
                    })
                }) =>
            {
                // Climbing while its own load is up: the memory its work needs, until the load
                // is back down and shows whether the memory came back with it.
                out.push(Candidate::undecided(node, entity, metric, last_at));
                continue;
            }
            Cycle::None => Trend {
                t0,
                first,
                t1,
                last,
                samples: used.len(),
                fit: Some((run.slope, run.r2)),
                cycle_from: None,
            },
            Cycle::After {
                peak_at,
                peak,
                trough,
            } => {
                // Growth is how far the level has gone past the previous cycle's peak; a cycle
                // that returns to its level never passes it by more than noise.
                let (peak, trough) = (peak * sign, trough * sign);
                if t1 <= peak_at || !accept((last - peak) / (t1 - peak_at) as f64, peak) {
                    continue;
                }
                Trend {
                    t0: peak_at,
                    first: peak,
                    t1,
                    last,
                    samples: 2,
                    fit: None,
                    cycle_from: Some(trough),
                }
            }
        };
        let idle_only = grows_only_while_idle(ctx, node, &samples, sign);
        out.push(candidate(p, ctx, node, entity, metric, &trend, limit, idle_only));
    }
}

/// Whether one step between consecutive readings made more than half of the run's fitted
/// change: the run is a level that moved once, with readings on either side, and its slope
/// only says how far apart the captures were.
fn one_step(run: &[(i64, f64)], slope: f64) -> bool {
    let (Some(&(t0, _)), Some(&(t1, _))) = (run.first(), run.last()) else {
        return false;
    };
    let fitted = slope.abs() * (t1 - t0) as f64;
    let largest = run
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) * slope.signum())
        .fold(0.0, f64::max);
    fitted > 0.0 && largest > fitted / 2.0
}

/// Whether a climb is already at [`URGENT_SHARE`] of its limit and reaches it within as long
/// again as it has already climbed: then it is judged now, whatever its load, since waiting for
/// the work to end could mean waiting for an OOM kill.
fn urgent(limit: Option<f64>, last: f64, slope: f64, span_s: f64) -> bool {
    limit.is_some_and(|l| {
        l > 0.0 && last >= URGENT_SHARE * l && slope > 0.0 && (l - last) / slope <= span_s
    })
}

/// The share of its limit past which a climb that is getting there fast is not held for its
/// load: 80 %, the usual alerting line.
const URGENT_SHARE: f64 = 0.8;

/// Whether a counter still counts at a rate `accept`s over its latest step, one its load (when
/// the rule names one) did not make: the step from a capture taken while the load was up holds
/// the end of that work (a nightly job's last writes), not what the container does now.
fn counting_now(
    node: &crate::history::NodeHistory,
    entity: &str,
    p: &Params,
    samples: &[(i64, f64)],
    accept: &impl Fn(f64, f64) -> bool,
) -> bool {
    let [.., (t0, v0), (t1, v1)] = samples else {
        return false;
    };
    let working = p.load.as_deref().and_then(|m| node.series(entity, m)).is_some_and(|s| {
        crate::rules::load_follow::load_up(&s.points, *t0) || crate::rules::load_follow::load_up(&s.points, *t1)
    });
    !working && t1 > t0 && accept((v1 - v0) / (t1 - t0) as f64, *v0)
}

/// The finding for a trend, with its projection to `limit`.
#[allow(clippy::too_many_arguments)]
fn candidate(
    p: &Params,
    ctx: &EvalContext,
    node: &crate::history::NodeHistory,
    entity: &str,
    metric: &str,
    trend: &Trend,
    limit: Option<f64>,
    idle_only: bool,
) -> Candidate {
    let (dim, suffix) = metric_unit(metric);
    let Trend {
        t0,
        first,
        t1,
        last,
        ..
    } = *trend;
    let span = (t1 - t0) as f64;
    let mut c = Candidate::new(node, entity, metric, t1);
    let change = fmt_change(first, last, dim, suffix);
    // The rate printed beside "A → B in T" is (B - A) / T as printed: the least-squares
    // slope chose the run and vouches for its straightness, but a reader divides the
    // printed numbers, so those are what the rate and the ETA are computed from.
    let (span_s, shown_span) = fmt_duration_shown(span);
    let (rate, rate_value) = fmt_rate_of(change.shown_delta, shown_span, dim, suffix, p.rate_per);
    c.value("first", Some(first), change.before.clone());
    c.value("last", Some(last), change.after.clone());
    c.value("delta", Some(change.shown_delta), change.delta.clone());
    c.value("span", Some(shown_span), span_s.clone());
    c.value("rate", Some(rate_value), rate.clone());
    let r2 = trend.fit.map(|f| f.1);
    c.value("r2", r2, r2.map_or("-".to_string(), |r| fmt_number(r, 2)));
    c.value("samples", Some(trend.samples as f64), trend.samples.to_string());
    let mut evidence = match trend.fit {
        Some((slope, r2)) => format!(
            "{} {} went from {} at {} to {} at {} ({} over {span_s}, {}, {} captures); the least-squares trend is {} (r² {}).",
            entity_label(entity),
            metric_label(metric),
            change.before,
            ctx.time(t0),
            change.after,
            ctx.time(t1),
            change.delta,
            rate,
            trend.samples,
            fmt_rate(slope, dim, suffix, p.rate_per),
            fmt_number(r2, 2),
        ),
        None => format!(
            "{} {} rises and falls back in cycles, but its level climbs: it peaked at {} at {}, fell back to {}, and is now {} at {}, past that peak ({} over {span_s}, {}).",
            entity_label(entity),
            metric_label(metric),
            change.before,
            ctx.time(t0),
            fmt_value(trend.cycle_from.unwrap_or(first), dim, suffix),
            change.after,
            ctx.time(t1),
            change.delta,
            rate,
        ),
    };
    if let Some(low) = trend.cycle_from {
        c.value("from", Some(low), fmt_value(low, dim, suffix));
    }
    if idle_only {
        evidence.push_str(" It grows only while the line is idle; production holds it flat.");
    }
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
    c
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
            load: None,
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
