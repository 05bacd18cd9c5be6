#![doc = include_str!("projection.md")]

mod cycle;
mod confidence;

use super::growth_rate::{self, ProjectTo};
use cycle::{
    Cleanup, PHASE_MARGIN, TURNOVER_MARGIN, cleanup, net_spread, phase_uncertainty, span, whole_fit,
};
use super::{
    Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, current_run, fresh_series,
};
use crate::history::metrics::{KNOWN_METRICS, entity_label, metric_label, metric_unit};
use crate::history::NodeHistory;
use crate::rules::Rule;
use crate::rules::select::glob_match;
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
        "limit_pct",
        "value_pct",
        "rate",
        "eta",
        "eta_at",
        "eta_day",
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
    /// The share of `to` projected to, in percent (100: `to` itself).
    pub limit_pct: f64,
    /// Per-subject shares, first match wins: (glob over the subject's name or entity, percent).
    pub subjects: Vec<(String, f64)>,
    /// The period of the series' own refills and cleanups (a daily log rotation), when set.
    pub cycle_s: Option<f64>,
    /// How many times the span of the readings used a projection may reach ahead, when set.
    pub reach: Option<f64>,
    /// Whether a reboot starts the series again (memory does; a disk's used space does not).
    pub reboot_resets: bool,
    /// Whether the series accumulates (a disk's used space): a straight climb that is all the
    /// history holds has no known start and may project past `reach`. A volatile series
    /// (connections) rises and falls with its load and never does.
    pub accumulates: bool,
}

#[derive(Debug, Clone)]
pub enum Limit {
    Fixed(ProjectTo),
    /// The newest reading of another metric of the same entity (a disk's `size_bytes`, a
    /// server's `max_connections`).
    Metric(String),
}

/// A share of the limit: `"90%"` or `90`, more than 0 and at most 100.
fn percent(p: &mut ParamReader, ctx: &mut Ctx, key: &str) -> Option<f64> {
    let v = p.fields.value(key)?;
    let text = match v.get_ref() {
        toml::de::DeValue::String(s) => s.to_string(),
        toml::de::DeValue::Integer(i) => i.as_str().to_string(),
        toml::de::DeValue::Float(f) => f.as_str().to_string(),
        other => {
            let msg = format!(
                "{}: `{key}` must be a percentage (\"90%\"), not {}",
                p.fields.what,
                other.type_str()
            );
            ctx.report(v.span(), msg);
            return None;
        }
    };
    match text.trim().trim_end_matches('%').trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 100.0 => Some(x),
        _ => {
            let msg = format!(
                "{}: `{key}` = `{text}` must be a percentage above 0 and at most 100 (\"90%\")",
                p.fields.what
            );
            ctx.report(v.span(), msg);
            None
        }
    }
}

/// `mounts = { "/data" = "95%", "/boot" = "80%" }`: a share per subject.
fn subjects(p: &mut ParamReader, ctx: &mut Ctx) -> Vec<(String, f64)> {
    let what = format!("{} mounts", p.fields.what);
    let Some(t) = p.fields.table(ctx, "mounts", &what) else {
        return Vec::new();
    };
    let dimension = p.dimension;
    let suffix = p.suffix;
    let mut out = Vec::new();
    let mut reader = ParamReader {
        fields: t,
        dimension,
        suffix,
        lookback_s: 0.0,
    };
    for key in reader.fields.keys() {
        if let Some(pct) = percent(&mut reader, ctx, &key) {
            out.push((key, pct));
        }
    }
    out
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let to = match p.fields.value("to") {
        None => {
            ctx.report(
                p.fields.span.clone(),
                format!(
                    "{} needs parameter `to` (a quantity, \"mem_limit\", \"size\" or a metric of the same entity)",
                    p.fields.what
                ),
            );
            return None;
        }
        Some(v) if v.get_ref().as_str() == Some("mem_limit") => Limit::Fixed(ProjectTo::MemLimit),
        Some(v) if v.get_ref().as_str() == Some("size") => Limit::Metric("size_bytes".into()),
        Some(v) if v.get_ref().as_str().is_some_and(|s| KNOWN_METRICS.contains(&s)) => {
            Limit::Metric(v.get_ref().as_str().unwrap_or_default().to_string())
        }
        Some(_) => Limit::Fixed(ProjectTo::Value(p.quantity(ctx, "to")?)),
    };
    let within_s = p.duration(ctx, "within");
    let within_s = p.required(ctx, "within", within_s)?;
    let limit_pct = percent(p, ctx, "limit").unwrap_or(100.0);
    let subjects = subjects(p, ctx);
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
        load: None,
    };
    let cycle_s = p.duration(ctx, "cycle").filter(|c| *c > 0.0);
    if let Some(c) = cycle_s
        && c > fit.window_s
        && let Some(v) = p.fields.value("cycle")
    {
        ctx.report(
            v.span(),
            format!(
                "{}: `cycle` ({}) must not be longer than `window` ({}): the fit must see a whole cycle",
                p.fields.what,
                fmt_duration(c),
                fmt_duration(fit.window_s)
            ),
        );
        return None;
    }
    let reach = super::number(p, ctx, "reach");
    if let Some(r) = reach
        && r <= 0.0
    {
        ctx.report(
            p.fields.span.clone(),
            format!("{}: `reach` must be above 0", p.fields.what),
        );
        return None;
    }
    let reboot_resets = p.fields.boolean(ctx, "reboot_resets").unwrap_or(true);
    let accumulates = p.fields.boolean(ctx, "accumulates").unwrap_or(false);
    Some(Kind::Projection(Params {
        fit,
        to,
        within_s,
        limit_pct,
        subjects,
        cycle_s,
        reach,
        reboot_resets,
        accumulates,
    }))
}

/// How the rate was measured.
enum How {
    /// A straight line fitted to the recent run.
    Fit { r2: f64 },
    /// The net change over the last cycle, across a fall (a cleanup, a rotation) of this much
    /// at this time: the rise since the fall is a refill, not a trend. The net could be off by
    /// `doubt` (out of phase by a capture, a cycle turning over more than the last).
    Net { fall: f64, fall_at: i64, doubt: f64 },
}

struct Trend {
    /// Index of the first reading used.
    start: usize,
    slope: f64,
    how: How,
}

enum Verdict {
    Trend(Trend),
    /// No rise to project.
    Flat,
    /// Too few readings to judge either way.
    Undecided,
}

fn trend(p: &Params, samples: &[(i64, f64)]) -> Verdict {
    if let Some(cycle_s) = p.cycle_s
        && let Some(Cleanup {
            from,
            fall,
            fall_at,
        }) = cleanup(samples, cycle_s)
    {
        let (t0, v0) = samples[from];
        let Some(&(t1, v1)) = samples.last() else {
            return Verdict::Undecided;
        };
        // Only a whole cycle cancels the refill; a shorter history cannot tell a trend from it,
        // unless the cleanup gave back (nearly) all that the history added.
        if ((t1 - t0) as f64) < 0.97 * cycle_s || samples.len() - from < p.fit.min_samples {
            if v1 - samples[0].1 <= TURNOVER_MARGIN * fall {
                return Verdict::Flat;
            }
            return Verdict::Undecided;
        }
        // The last cleanup came just before the cycle's start: this cycle's is due, a little
        // later than the last one was, and the refill since is no trend yet.
        let Some(fall_at) = fall_at else {
            return Verdict::Undecided;
        };
        let slope = (v1 - v0) / (t1 - t0) as f64;
        if slope <= 0.0 {
            return Verdict::Flat;
        }
        let phase = phase_uncertainty(samples, from).max(net_spread(samples, cycle_s));
        let doubt = PHASE_MARGIN * phase + TURNOVER_MARGIN * fall;
        return Verdict::Trend(Trend {
            start: from,
            slope,
            how: How::Net {
                fall,
                fall_at,
                doubt,
            },
        });
    }
    let run = growth_rate::longest_run(samples, &p.fit, |slope, _| slope > 0.0);
    // A series with a daily pattern and no cleanup (a disk filled by day only) is measured over
    // a whole cycle when one straight line holds it, unless its recent run climbs faster (the
    // day's work, a new writer): the night's flat readings alone would read as the fill
    // stopping, and "resolve" it every night.
    let whole = p
        .cycle_s
        .filter(|c| samples.len() >= p.fit.min_samples && span(samples) >= 0.9 * c)
        .and_then(|_| whole_fit(samples))
        .filter(|(slope, r2)| *slope > 0.0 && *r2 >= p.fit.min_r2);
    match (run, whole) {
        (Ok(Some(run)), Some((slope, _))) if run.slope >= slope => Verdict::Trend(Trend {
            start: run.start,
            slope: run.slope,
            how: How::Fit { r2: run.r2 },
        }),
        (_, Some((slope, r2))) => Verdict::Trend(Trend {
            start: 0,
            slope,
            how: How::Fit { r2 },
        }),
        (Err(()), None) => Verdict::Undecided,
        (Ok(None), None) => Verdict::Flat,
        (Ok(Some(run)), None) => Verdict::Trend(Trend {
            start: run.start,
            slope: run.slope,
            how: How::Fit { r2: run.r2 },
        }),
    }
}


/// What 100 % of the limit is for this subject: the fixed value, or the entity's own reading.
fn reference(p: &Params, node: &NodeHistory, entity: &str) -> Option<f64> {
    let metric = match &p.to {
        Limit::Fixed(ProjectTo::Value(v)) => return Some(*v),
        Limit::Fixed(ProjectTo::MemLimit) => "mem_limit_bytes",
        Limit::Metric(m) => m.as_str(),
    };
    node.series(entity, metric)
        .and_then(|s| s.last())
        .and_then(|pt| pt.value)
        .filter(|v| *v > 0.0)
}

/// The share of the limit for this subject: the first `mounts` key matching its name (a disk's
/// mount) or its entity, else `limit`.
fn share_for(p: &Params, entity: &str) -> f64 {
    let name = entity.split_once(':').map_or(entity, |(_, n)| n);
    p.subjects
        .iter()
        .find(|(g, _)| glob_match(g, name) || glob_match(g, entity))
        .map_or(p.limit_pct, |(_, pct)| *pct)
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let Some(reference) = reference(p, node, entity) else {
            continue;
        };
        let pct = share_for(p, entity);
        let limit = reference * pct / 100.0;
        let samples = if p.reboot_resets {
            current_run(node, entity, points, p.fit.window_s)
        } else {
            // What survives a reboot (a disk's contents) is one run across it.
            let from = points.last().map_or(0, |pt| pt.at) - p.fit.window_s as i64;
            points
                .iter()
                .filter(|pt| pt.at >= from)
                .filter_map(|pt| pt.value.map(|v| (pt.at, v)))
                .collect()
        };
        if !super::covers(node, p.fit.min_span_s) {
            // After a capture gap, fewer readings than a trend needs: no verdict either way.
            out.push(Candidate::undecided_at_end(node, entity, metric, points));
            continue;
        }
        let trend = match trend(p, &samples) {
            Verdict::Undecided => {
                out.push(Candidate::undecided_at_end(node, entity, metric, points));
                continue;
            }
            Verdict::Flat => {
                // Already past its limit: the rise stopped, the level did not come back.
                if samples.last().is_some_and(|(_, now)| *now >= limit) {
                    let at = points.last().map(|pt| pt.at).unwrap_or_default();
                    out.push(Candidate::holding(node, entity, metric, at));
                }
                continue;
            }
            Verdict::Trend(t) => t,
        };
        let limits = Limits {
            limit,
            reference,
            pct,
        };
        match candidate(p, ctx, (node, entity, metric), &samples, &trend, &limits) {
            Ok(Some(c)) => out.push(c),
            Ok(None) => {}
            Err(()) => out.push(Candidate::undecided_at_end(node, entity, metric, points)),
        }
    }
}

/// A date for prose in the fleet's time zone: "Mar 2".
fn day(ctx: &EvalContext, unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.with_timezone(&ctx.tz).format("%b %-d").to_string())
        .unwrap_or_else(|| unix.to_string())
}

struct Limits {
    limit: f64,
    reference: f64,
    pct: f64,
}

fn candidate(
    p: &Params,
    ctx: &EvalContext,
    (node, entity, metric): (&NodeHistory, &str, &str),
    samples: &[(i64, f64)],
    trend: &Trend,
    l: &Limits,
) -> Result<Option<Candidate>, ()> {
    let (dim, suffix) = metric_unit(metric);
    let used = &samples[trend.start..];
    let (Some(&(t0, _)), Some(&(t1, last))) = (used.first(), used.last()) else {
        return Err(());
    };
    let rate_s = fmt_rate(trend.slope, dim, suffix, p.fit.rate_per);
    // The last value is printed with enough digits that the distance to the limit keeps
    // two significant digits, and the ETA is computed from the printed value, limit and
    // rate: "15.85GB, rising +120MB/h: 16GB in about 75 min" is what a reader recomputes.
    let limit_s = fmt_value(l.limit, dim, suffix);
    let shown_limit = shown_value(&limit_s, dim).unwrap_or(l.limit);
    let value_s = fmt_near(last, shown_limit, dim, suffix);
    let shown_last = shown_value(&value_s, dim).unwrap_or(last);
    let shown_rate = shown_value(rate_s.split('/').next().unwrap_or(""), dim)
        .map(|v| v / rate_per_secs(p.fit.rate_per))
        .unwrap_or(trend.slope);
    let past = shown_last >= shown_limit;
    let (eta_s, eta) = if past || shown_rate <= 0.0 {
        ("0 s".to_string(), 0.0)
    } else {
        fmt_duration_shown((shown_limit - shown_last) / shown_rate)
    };
    if eta > p.within_s {
        return Ok(None);
    }
    // A net change within its doubt would get there in time, but it may be no change at all.
    if let How::Net { doubt, .. } = trend.how
        && !past
        && trend.slope * (t1 - t0) as f64 <= doubt
    {
        return Err(());
    }
    // Three hours of readings say little about three weeks: a projection further ahead than
    // `reach` times its readings' span waits for more history (undecided, not healthy). A climb
    // that began within the history (a backup, a batch job) is judged by how long it has run.
    // One of a series that accumulates that is all the history holds has no known start, so its
    // straightness is the evidence: it is said when even its slowest plausible slope gets there
    // in time.
    let unknown_start = p.accumulates && trend.start == 0;
    if let Some(reach) = p.reach
        && !past
        && eta > reach * (t1 - t0) as f64
        && !(unknown_start
            && matches!(trend.how, How::Fit { r2 } if confidence::surely_within(
                trend.slope,
                r2,
                used,
                (shown_limit - shown_last).max(0.0),
                p.within_s
            )))
    {
        return Err(());
    }
    let mut c = Candidate::new(node, entity, metric, t1);
    let eta_at = ctx.time(t1 + eta.round() as i64);
    let pct_s = format!("{}%", fmt_number(l.pct, 1));
    let projection = if past {
        format!("already past {limit_s}")
    } else {
        format!("{limit_s} around {eta_at}")
    };
    let value_pct = last / l.reference * 100.0;
    c.value("value", Some(shown_last), value_s.clone());
    c.value("limit", Some(l.limit), limit_s.clone());
    c.value("limit_pct", Some(l.pct), pct_s);
    c.value(
        "value_pct",
        Some(value_pct),
        format!("{}%", fmt_number(value_pct, 1)),
    );
    c.value("rate", Some(shown_rate), rate_s.clone());
    c.value("eta", Some(eta), eta_s.clone());
    c.value("eta_at", None, if past { "now".to_string() } else { eta_at.clone() });
    // Days away, the minute is noise that moves with every capture's rounding: the day is what
    // a title needs, and it stays put while nothing changes.
    let eta_day = if past {
        "now".to_string()
    } else if eta >= 2.0 * 86_400.0 {
        day(ctx, t1 + eta.round() as i64)
    } else {
        eta_at.clone()
    };
    c.value("eta_day", None, eta_day);
    c.value("projection", None, projection);
    c.value("samples", Some(used.len() as f64), used.len().to_string());
    c.value("span", Some((t1 - t0) as f64), fmt_duration((t1 - t0) as f64));
    let reach = if past {
        format!("it is already past {limit_s}")
    } else {
        format!("at {rate_s} it reaches {limit_s} in about {eta_s} (around {eta_at})")
    };
    let measured = match trend.how {
        How::Fit { r2 } => format!(
            "rising over {} ({} captures, r² {})",
            fmt_duration((t1 - t0) as f64),
            used.len(),
            fmt_number(r2, 2)
        ),
        How::Net { fall, fall_at, .. } => format!(
            "rising net over the last {} ({} captures) through a fall of {} at {} (a cleanup or rotation)",
            fmt_duration((t1 - t0) as f64),
            used.len(),
            fmt_value(fall, dim, suffix),
            ctx.time(fall_at)
        ),
    };
    c.evidence = format!(
        "{} {} is {value_s} at {}, {measured}; {reach}.",
        entity_label(entity),
        metric_label(metric),
        ctx.time(t1),
    );
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn params(subjects: Vec<(String, f64)>) -> Params {
        Params {
            fit: growth_rate::Params {
                window_s: 86_400.0,
                min_span_s: 3.0 * 3600.0,
                min_samples: 8,
                min_rate: 0.0,
                max_rate: None,
                min_rate_pct: None,
                min_r2: 0.8,
                rate_per: RatePer::Hour,
                project_to: None,
                load: None,
            },
            to: Limit::Metric("size_bytes".into()),
            within_s: 30.0 * 86_400.0,
            limit_pct: 90.0,
            subjects,
            cycle_s: Some(86_400.0),
            reach: Some(30.0),
            reboot_resets: false,
            accumulates: false,
        }
    }

    /// The last 26 hours (the disk rule's window) of a day and a half of 15-minute readings of
    /// `f(hours)`.
    fn series(f: impl Fn(f64) -> f64) -> Vec<(i64, f64)> {
        (40..=144).map(|i| (i * H / 4, f(i as f64 / 4.0))).collect()
    }

    #[test]
    fn a_steady_fill_has_no_cleanup_and_is_fitted() {
        let s = series(|h| 70.0 + h / 24.0);
        assert!(cleanup(&s, 86_400.0).is_none());
        let Verdict::Trend(t) = trend(&params(vec![]), &s) else {
            panic!("a steady fill is a trend");
        };
        assert!(matches!(t.how, How::Fit { .. }));
        assert!((t.slope * 86_400.0 - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_rotation_that_only_refills_is_flat() {
        // Logs add 2 a day and the rotation at hour 25 gives them back.
        let s = series(|h| 80.0 + 2.0 * ((h - 1.0).rem_euclid(24.0)) / 24.0);
        assert!(cleanup(&s, 86_400.0).is_some());
        assert!(matches!(trend(&params(vec![]), &s), Verdict::Flat));
    }

    #[test]
    fn a_fill_under_a_rotation_is_measured_net_over_the_day() {
        let s = series(|h| 70.0 + h / 24.0 + ((h - 1.0).rem_euclid(24.0)) / 24.0);
        let Verdict::Trend(t) = trend(&params(vec![]), &s) else {
            panic!("a net fill is a trend");
        };
        assert!(matches!(t.how, How::Net { .. }));
        assert!((t.slope * 86_400.0 - 1.0).abs() < 0.02, "{}", t.slope * 86_400.0);
    }

#[test]
    fn a_fall_seen_before_a_whole_cycle_is_held_is_undecided() {
        let s: Vec<(i64, f64)> = (0..40)
            .map(|i| {
                let h = i as f64 / 4.0;
                (i * H / 4, 80.0 + h / 4.0 + ((h - 1.0).rem_euclid(24.0)) / 12.0)
            })
            .collect();
        assert!(matches!(trend(&params(vec![]), &s), Verdict::Undecided));
        // A cleanup that gave back all the short history added leaves nothing to project.
        let s: Vec<(i64, f64)> = (0..40)
            .map(|i| (i * H / 4, nightly(i as f64 / 4.0 + 20.0, &[(100.0, 5.0)])))
            .collect();
        assert!(matches!(trend(&params(vec![]), &s), Verdict::Flat));
    }

    /// A nightly job: 40 at rest; each night from hour 1 it writes its `(rate, end)` an hour,
    /// and at `end` o'clock the wipe gives it all back.
    fn nightly(h: f64, nights: &[(f64, f64)]) -> f64 {
        let (day, hour) = ((h / 24.0).floor() as usize, h.rem_euclid(24.0));
        let (rate, end) = nights[day.min(nights.len() - 1)];
        if hour >= 1.0 && hour < end {
            40.0 + rate * (hour - 1.0)
        } else {
            40.0
        }
    }

    /// The last 26 hours of 15-minute readings up to `to_h`, the newest `late_s` late.
    fn readings_to(to_h: f64, late_s: i64, f: impl Fn(f64) -> f64) -> Vec<(i64, f64)> {
        let last = (to_h * 4.0) as i64;
        (last - 104..=last)
            .map(|i| {
                let t = i * H / 4 + if i == last { late_s } else { 0 };
                (t, f(t as f64 / H as f64))
            })
            .collect()
    }

    /// Whether the net change over the day is within its doubt: no finding opens on it.
    fn doubtful(v: &Verdict) -> bool {
        match v {
            Verdict::Trend(Trend {
                slope,
                how: How::Net { doubt, .. },
                ..
            }) => slope * 86_400.0 <= *doubt,
            _ => false,
        }
    }

    #[test]
    fn a_bigger_nightly_fill_than_yesterday_is_in_doubt_mid_climb() {
        // Tonight's job writes 10 % more than last night's; at hour 28.5 it is mid-climb.
        let nights = [(100.0, 5.0), (110.0, 5.0)];
        let v = trend(&params(vec![]), &readings_to(28.5, 0, |h| nightly(h, &nights)));
        assert!(doubtful(&v), "a day's difference in a refill is no trend");
        // Back at rest after the wipe, the day's net is nothing.
        let v = trend(&params(vec![]), &readings_to(32.0, 0, |h| nightly(h, &nights)));
        assert!(matches!(v, Verdict::Flat));
    }

    #[test]
    fn a_net_fill_across_a_cleanup_is_a_trend() {
        // The wipe leaves 100 more behind each night than it found, a quarter of its turnover.
        let v = trend(&params(vec![]), &readings_to(32.0, 0, |h| {
            nightly(h, &[(100.0, 5.0)]) + 100.0 * ((h - 5.0) / 24.0).floor().max(-1.0)
        }));
        let Verdict::Trend(t) = v else {
            panic!("a net fill is a trend");
        };
        assert!((t.slope * 86_400.0 - 100.0).abs() < 1e-6, "{}", t.slope * 86_400.0);
        assert!(!doubtful(&Verdict::Trend(t)));
    }

    #[test]
    fn a_cleanup_just_after_yesterdays_capture_stays_in_view() {
        // Today's capture is 20 s late: yesterday's matching one is a little more than a day
        // back, and the wipe came right after it.
        let s = readings_to(28.75, 20, |h| nightly(h, &[(100.0, 5.0)]));
        let Some(Cleanup { from, .. }) = cleanup(&s, 86_400.0) else {
            panic!("the wipe is a cleanup");
        };
        assert_eq!(s[from].0, 19 * H / 4, "the cycle starts at yesterday's matching capture");
        assert!(doubtful(&trend(&params(vec![]), &s)));
    }

    #[test]
    fn a_cleanup_due_a_little_later_than_yesterdays_is_awaited() {
        // Last night's wipe came at 5:00, tonight's is due at 5:30; at 5:15 the refill is no
        // trend.
        let s = readings_to(29.25, 0, |h| nightly(h, &[(100.0, 5.0), (100.0, 5.5)]));
        assert!(matches!(trend(&params(vec![]), &s), Verdict::Undecided));
    }

    #[test]
    fn a_mount_share_overrides_the_limit() {
        let p = params(vec![("/data".into(), 95.0), ("disk:/boot*".into(), 80.0)]);
        assert_eq!(share_for(&p, "disk:/data"), 95.0);
        assert_eq!(share_for(&p, "disk:/boot"), 80.0);
        assert_eq!(share_for(&p, "disk:/"), 90.0);
        assert_eq!(share_for(&p, "disk:/data2"), 90.0);
    }
}
