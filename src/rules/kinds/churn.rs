#![doc = include_str!("churn.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, covers, fresh_series};
use crate::history::Point;
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
    /// Counter units per second (0 when only `min_advance` is set).
    pub min_rate: f64,
    /// Advance over the window at or above which it fires (0 when only `min_rate` is set).
    pub min_advance: f64,
    /// Seconds of readings the advance is counted over; `None`: the last two readings.
    pub window_s: Option<f64>,
    pub rate_per: RatePer,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let min_rate = p.rate(ctx, "min_rate");
    let min_advance = p.fields.number(ctx, "min_advance").map(|n| n.into_inner());
    if min_rate.is_none() && min_advance.is_none() {
        p.required(ctx, "min_rate", min_rate)?;
    }
    if let Some(v) = p.fields.value("min_advance")
        && min_advance.is_some_and(|a| a <= 0.0)
    {
        ctx.report(
            v.span(),
            format!("{}: `min_advance` must be above 0", p.fields.what),
        );
    }
    let window_s = p.duration(ctx, "window");
    let rate_per = RatePer::parse(&p.choice(ctx, "rate_per", &["min", "h", "day"], "min"))
        .unwrap_or(RatePer::Minute);
    Some(Kind::Churn(Params {
        min_rate: min_rate.unwrap_or(0.0),
        min_advance: min_advance.unwrap_or(0.0),
        window_s,
        rate_per,
    }))
}

/// The readings the advance is counted over: the last two, or from the newest reading about a
/// window back (within 5 % of it, so that capture jitter does not drop a whole interval; the
/// oldest one when none is that old) to the newest. Captures sparser than the window still give
/// a pair to compare.
fn span<'p>(p: &Params, points: &'p [Point]) -> &'p [Point] {
    let Some(last) = points.last() else {
        return points;
    };
    match p.window_s {
        Some(w) => {
            let from = points
                .iter()
                .rposition(|pt| (last.at - pt.at) as f64 >= w * 0.95)
                .unwrap_or(0);
            &points[from..]
        }
        None => &points[points.len().saturating_sub(2)..],
    }
}

/// The counter's advance over consecutive readings: a step down is a reset (a recreated
/// container, a wrap) and counts nothing, and a step with a null on either side is skipped.
fn advance(points: &[Point]) -> f64 {
    points
        .windows(2)
        .filter_map(|w| Some(w[1].value? - w[0].value?))
        .filter(|d| *d > 0.0)
        .sum()
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let span = span(p, points);
        let [p0, .., p1] = span else {
            out.push(Candidate::undecided_at_end(node, entity, metric, points));
            continue;
        };
        let (Some(before), Some(after)) = (p0.value, p1.value) else {
            continue;
        };
        let gap = (p1.at - p0.at) as f64;
        let advanced = advance(span);
        // Without a window, a counter that went down was reset (restart, wrap): no rate
        // across it.
        if gap <= 0.0 || (p.window_s.is_none() && after < before) {
            continue;
        }
        let rate = advanced / gap;
        if rate < p.min_rate || advanced < p.min_advance {
            // Quiet only when the window was all there: readings missing in a capture gap
            // may have held the advance.
            if let Some(w) = p.window_s
                && !covers(node, w)
            {
                out.push(Candidate::undecided(node, entity, metric, p1.at));
            }
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
        let shown_rate = advanced / shown_gap;
        let rate_s = format!("~{}/{per_label}", fmt_number(shown_rate * per_s, 0));
        let mut c = Candidate::new(node, entity, metric, p1.at);
        c.value("before", Some(before), fmt_number(before, 0));
        c.value("after", Some(after), fmt_number(after, 0));
        c.value("advance", Some(advanced), fmt_number(advanced, 0));
        c.value("rate", Some(shown_rate), rate_s.clone());
        c.value("interval", Some(shown_gap), interval_s.clone());
        let reset = if advanced == after - before {
            ""
        } else {
            " (step by step: it was reset in between)"
        };
        c.evidence = format!(
            "{} {} advanced from {} ({}) to {} ({}): {} in {interval_s}{reset}, {rate_s}.",
            entity_label(entity),
            metric_label(metric),
            fmt_number(before, 0),
            ctx.time(p0.at),
            fmt_number(after, 0),
            ctx.time(p1.at),
            fmt_number(advanced, 0),
        );
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(readings: &[(i64, f64)]) -> Vec<Point> {
        readings
            .iter()
            .map(|&(at, v)| Point { at, value: Some(v) })
            .collect()
    }

    fn params(window_s: Option<f64>) -> Params {
        Params {
            min_rate: 0.0,
            min_advance: 3.0,
            window_s,
            rate_per: RatePer::Hour,
        }
    }

    #[test]
    fn a_window_reaches_the_reading_about_a_window_back_despite_jitter() {
        // 15-minute captures with ±30 s of jitter: the reading 59.5 min back still opens the
        // hour, the one 75 min back does not.
        let points = pts(&[(-900, 0.0), (30, 1.0), (900, 2.0), (1810, 3.0), (3600, 4.0)]);
        let span = span(&params(Some(3600.0)), &points);
        assert_eq!(span.first().map(|p| p.at), Some(30));
        // Captures sparser than the window still give a pair.
        let sparse = pts(&[(0, 1.0), (7200, 5.0)]);
        assert_eq!(span_len(&params(Some(3600.0)), &sparse), 2);
        // Without a window: the last two readings.
        assert_eq!(span_len(&params(None), &points), 2);
    }

    fn span_len(p: &Params, points: &[Point]) -> usize {
        span(p, points).len()
    }

    #[test]
    fn a_step_down_is_a_reset_and_counts_nothing() {
        // A container recreated between 8 and 2 restarts: 3 before, 2 after.
        assert_eq!(advance(&pts(&[(0, 5.0), (1, 8.0), (2, 2.0), (3, 4.0)])), 5.0);
        let mut gap = pts(&[(0, 1.0), (1, 2.0), (2, 6.0)]);
        gap[1].value = None;
        assert_eq!(advance(&gap), 0.0);
    }
}
