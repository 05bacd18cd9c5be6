#![doc = include_str!("oscillation.md")]

use super::{
    Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, current_run, fresh_series,
};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::history::{NodeHistory, Point};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{fmt_change, fmt_duration, fmt_value};

pub const SPEC: KindSpec = KindSpec {
    name: "oscillation",
    doc: include_str!("oscillation.md"),
    target: Target::Series,
    event: false,
    variables: &["range", "low", "high", "swings", "span", "peers"],
    headline: &["range"],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub window_s: f64,
    pub min_range: f64,
    /// Percent of the band's low: a band narrower than this share of the level is the jitter
    /// of a large value (±150MB on a 38GB trainer), not a cycle worth naming.
    pub min_range_pct: Option<f64>,
    /// A leg (a run of moves in one direction) counts as a swing when it moves at least this.
    pub min_move: f64,
    /// [`MIN_SWINGS`] unless the rule says otherwise.
    pub min_swings: usize,
    /// A metric of the same entity that measures its work: swings it makes too (a nightly job,
    /// the day's traffic) are the work's, and stay quiet.
    pub load: Option<String>,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let min_range = p.quantity(ctx, "min_range");
    let min_range = p.required(ctx, "min_range", min_range)?;
    let min_move = p.quantity(ctx, "min_move").unwrap_or(min_range / 2.0);
    Some(Kind::Oscillation(Params {
        window_s: p.duration(ctx, "window").unwrap_or(3600.0),
        min_range,
        min_range_pct: p.fields.number(ctx, "min_range_pct").map(|n| n.into_inner()),
        min_move,
        min_swings: p
            .fields
            .count(ctx, "min_swings")
            .unwrap_or(MIN_SWINGS)
            .max(1),
        load: crate::rules::load_follow::parse(p, ctx),
    }))
}

/// The capture times around the largest fall between two consecutive readings, if any fell.
fn biggest_fall(samples: &[(i64, f64)]) -> Option<(i64, i64)> {
    samples
        .windows(2)
        .filter(|w| w[1].1 < w[0].1)
        .max_by(|a, b| (a[0].1 - a[1].1).total_cmp(&(b[0].1 - b[1].1)))
        .map(|w| (w[0].0, w[1].0))
}

/// Whether the band is the work's: the series swings with its `load`, or its fall is the load
/// ending (a nightly job done).
fn load_makes(p: &Params, node: &NodeHistory, entity: &str, samples: &[(i64, f64)]) -> bool {
    let Some(load) = p.load.as_deref().and_then(|m| node.series(entity, m)) else {
        return false;
    };
    crate::rules::load_follow::tracks_load(&load.points, samples, 3, true)
        || biggest_fall(samples).is_some_and(|(before, after)| {
            crate::rules::load_follow::load_explains(&load.points, before, after, -1.0)
        })
}

/// The readings the series' jitter is read from: the window's `in_window` newest of the current
/// run, or more when they hold fewer than MIN_NOISE_STEPS steps (as delta-between-snapshots
/// reaches back for its noise).
fn jitter_run(
    node: &NodeHistory,
    entity: &str,
    points: &[Point],
    in_window: usize,
) -> Vec<(i64, f64)> {
    let run = current_run(node, entity, points, f64::INFINITY);
    let wanted = in_window.max(super::delta_between_snapshots::MIN_NOISE_STEPS + 1);
    run[run.len().saturating_sub(wanted)..].to_vec()
}

/// Whether some leg of `samples` moves sharply: between two consecutive readings by half the
/// band `range`, and by three of the series' typical steps (the upper quartile of the sizes of
/// the steps of `jitter`, at least MIN_NOISE_STEPS of them, as delta-between-snapshots reads its
/// noise). A compaction or a worker recycle gives back the band in a capture; a daily cycle
/// turns smoothly, its steps no bigger than its jitter. `None` with too few steps to tell.
fn sharp_leg(samples: &[(i64, f64)], jitter: &[(i64, f64)], range: f64) -> Option<bool> {
    let sharpest = samples
        .windows(2)
        .map(|w| (w[1].1 - w[0].1).abs())
        .fold(0.0, f64::max);
    let mut steps: Vec<f64> = jitter.windows(2).map(|w| (w[1].1 - w[0].1).abs()).collect();
    if steps.len() < super::delta_between_snapshots::MIN_NOISE_STEPS {
        return None;
    }
    steps.sort_by(f64::total_cmp);
    let typical = steps[(steps.len() * 3).div_ceil(4) - 1];
    Some(sharpest >= range / 2.0 && sharpest >= 3.0 * typical)
}

/// Whether the band `low`–`high` is under `min_range`, or under `min_range_pct` of its low.
fn too_narrow(p: &Params, low: f64, high: f64) -> bool {
    high - low < p.min_range
        || p.min_range_pct
            .is_some_and(|pct| high - low < pct / 100.0 * low.abs())
}

/// Fewest swings that make a band unless a rule asks otherwise: two full cycles, up and back
/// down twice. One reading up and back (a blip) is a single cycle, and says nothing about a band.
pub const MIN_SWINGS: usize = 4;

/// Peak-to-trough over the samples: (low, high, swings). The range is max − min, never a sum
/// of moves (the seed added a 6 °C drop and a 9 °C rise into a "15 °C" swing). A swing is a leg
/// between two turns, and a turn counts only once the value has come back at least `min_move`
/// from the leg's extreme: two climbs separated by a dip far smaller than `min_move` are one
/// climb, not two swings.
fn measure(samples: &[(i64, f64)], min_move: f64) -> (f64, f64, usize) {
    let low = samples.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let high = samples
        .iter()
        .map(|s| s.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let Some(&(_, first)) = samples.first() else {
        return (low, high, 0);
    };
    let mut swings = 0;
    // Direction of the leg in progress (0 before the first leg is known), where it started and
    // its extreme so far; before the first leg, the lowest and highest readings yet.
    let (mut dir, mut anchor, mut extreme) = (0.0_f64, first, first);
    let (mut lo, mut hi) = (first, first);
    for &(_, v) in &samples[1..] {
        if dir == 0.0 {
            lo = lo.min(v);
            hi = hi.max(v);
            if v - lo >= min_move {
                (dir, anchor, extreme) = (1.0, lo, v);
            } else if hi - v >= min_move {
                (dir, anchor, extreme) = (-1.0, hi, v);
            }
            continue;
        }
        if (v - extreme) * dir > 0.0 {
            extreme = v;
        } else if (extreme - v) * dir >= min_move {
            swings += 1;
            (dir, anchor, extreme) = (-dir, extreme, v);
        }
    }
    if dir != 0.0 && (extreme - anchor).abs() >= min_move {
        swings += 1;
    }
    (low, high, swings)
}

/// The samples without lone blips: a single reading that leaves a steady level by at least
/// `min_move` and is followed by one back near where it left (closer than half the excursion),
/// with steady readings on either side. One reading up and back is not a band; a reading
/// that swings through to the other side (24, 18, 27 °C) is kept, and so is every reading of a
/// value that alternates capture after capture.
fn without_blips(samples: &[(i64, f64)], min_move: f64) -> Vec<(i64, f64)> {
    let v = |i: usize| samples[i].1;
    let steady = |a: usize, b: usize| (v(a) - v(b)).abs() < min_move;
    let n = samples.len();
    (0..n)
        .filter(|&i| {
            if i == 0 || i + 1 >= n {
                return true;
            }
            let out = v(i) - v(i - 1);
            let blip = out.abs() >= min_move
                && (v(i + 1) - v(i - 1)).abs() < out.abs() / 2.0
                && (i < 2 || steady(i - 1, i - 2))
                && (i + 2 >= n || steady(i + 1, i + 2));
            !blip
        })
        .map(|i| samples[i])
        .collect()
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    let selected = fresh_series(rule, ctx.window);
    // Same entity on other nodes, for the peer contrast, found through an index rather than a
    // scan of every selected series.
    let mut by_entity: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, (_, entity, _)) in selected.iter().enumerate() {
        by_entity.entry(*entity).or_default().push(i);
    }
    for (node, entity, points) in &selected {
        // Most series never move by `min_range`: a pass over the window's readings, without
        // allocating, settles them.
        // Only when the readings cover the window: a short run is undecided, not quiet.
        let last_at = points[points.len() - 1].at;
        let since = last_at - p.window_s as i64;
        let in_window = &points[points.partition_point(|pt| pt.at < since)..];
        let covered = in_window.len() >= 3
            && in_window
                .first()
                .is_some_and(|f| ((last_at - f.at) as f64) >= p.window_s * 0.9);
        let (lo, hi) = in_window
            .iter()
            .filter_map(|pt| pt.value)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
        if covered && hi - lo < p.min_range && node.segment_start() <= in_window[0].at {
            continue;
        }
        let samples = current_run(node, entity, points, p.window_s);
        if samples.len() < 3 {
            out.push(Candidate::undecided_at_end(node, entity, metric, points));
            continue;
        }
        let (low, high, swings) = measure(&without_blips(&samples, p.min_move), p.min_move);
        let (t0, t1) = (samples[0].0, samples[samples.len() - 1].0);
        if too_narrow(p, low, high) || swings < p.min_swings {
            // A run shorter than the window (since a reboot, after a gap) cannot show a cycle
            // gone: it is undecided, not quiet.
            if ((t1 - t0) as f64) < p.window_s * 0.9 || !super::covers(node, p.window_s * 0.9) {
                out.push(Candidate::undecided(node, entity, metric, t1));
            }
            continue;
        }
        // A smooth turn (the top of a daily cycle) is no band; too few readings cannot tell.
        match sharp_leg(&samples, &jitter_run(node, entity, points, samples.len()), high - low) {
            Some(true) => {}
            Some(false) => continue,
            None => {
                out.push(Candidate::undecided(node, entity, metric, t1));
                continue;
            }
        }
        if load_makes(p, node, entity, &samples) {
            continue;
        }
        let span = (t1 - t0) as f64;
        // Peers with the same entity over the same stretch of time, for contrast: the first
        // three by name are measured, the rest only counted, so a thousand peers cost three.
        let mut peer_lines = Vec::new();
        let mut peer_count = 0;
        for &i in by_entity.get(entity).map(Vec::as_slice).unwrap_or_default() {
            let (other, other_entity, other_points) = &selected[i];
            if other.node == node.node || other.role != node.role {
                continue;
            }
            peer_count += 1;
            if peer_lines.len() >= 3 {
                continue;
            }
            let theirs: Vec<(i64, f64)> =
                current_run(other, other_entity, other_points, p.window_s)
                    .into_iter()
                    .filter(|(at, _)| *at >= t0)
                    .collect();
            if theirs.len() < 2 {
                continue;
            }
            let (l, h, _) = measure(&theirs, p.min_move);
            // The range printed is the difference of the band's printed ends.
            let band = fmt_change(l, h, dim, suffix);
            peer_lines.push(format!(
                "{} moved {}{} ({}-{})",
                other.node,
                if h - l < p.min_range { "only " } else { "" },
                band.delta.trim_start_matches('+'),
                band.before,
                band.after
            ));
        }
        if peer_count > peer_lines.len() && !peer_lines.is_empty() {
            peer_lines.push(format!(
                "{} other peers not shown",
                peer_count - peer_lines.len()
            ));
        }
        let mut c = Candidate::new(node, entity, metric, t1);
        let band = fmt_change(low, high, dim, suffix);
        let range_s = band.delta.trim_start_matches('+').to_string();
        let (low_s, high_s) = (band.before.clone(), band.after.clone());
        c.value("range", Some(band.shown_delta), range_s.clone());
        c.value("low", Some(low), low_s.clone());
        c.value("high", Some(high), high_s.clone());
        c.value("swings", Some(swings as f64), swings.to_string());
        c.value("span", Some(span), fmt_duration(span));
        let peers = peer_lines.join("; ");
        c.value("peers", None, peers.clone());
        let values: Vec<String> = samples
            .iter()
            .map(|(_, v)| fmt_value(*v, dim, suffix))
            .collect();
        let shown = if values.len() <= 8 {
            format!(" (readings {})", values.join(", "))
        } else {
            String::new()
        };
        c.evidence = format!(
            "{} {} swung between {} and {} over {}: a peak-to-trough range of {range_s} in {swings} swings{shown}.{}",
            entity_label(entity),
            metric_label(metric),
            low_s,
            high_s,
            fmt_duration(span),
            if peers.is_empty() {
                String::new()
            } else {
                format!(" Over the same time {peers}.")
            }
        );
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::measure;
    use proptest::prelude::*;

    fn at(values: &[f64]) -> Vec<(i64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * 900, *v))
            .collect()
    }

    #[test]
    fn range_is_peak_to_trough_not_a_sum_of_moves() {
        let s = [(0, 24.0), (900, 18.0), (1800, 27.0)];
        let (low, high, swings) = measure(&s, 4.5);
        assert_eq!(high - low, 9.0);
        assert_eq!(swings, 2);
    }

    #[test]
    fn a_lone_blip_is_dropped_but_a_swing_through_or_an_alternation_is_kept() {
        let blip = at(&[600.0, 600.0, 800.0, 600.0, 600.0]);
        assert_eq!(super::without_blips(&blip, 100.0).len(), 4);
        let through = at(&[23.0, 24.0, 18.0, 27.0]);
        assert_eq!(super::without_blips(&through, 4.0).len(), 4);
        let alternating = at(&[23.0, 32.0, 23.0, 32.0, 23.0]);
        assert_eq!(super::without_blips(&alternating, 4.0).len(), 5);
    }

    #[test]
    fn a_dip_smaller_than_min_move_does_not_split_a_climb() {
        let (_, _, swings) = measure(&at(&[600.0, 700.0, 690.0, 800.0]), 100.0);
        assert_eq!(swings, 1);
    }

    #[test]
    fn a_blip_is_one_cycle_and_two_cycles_are_four_swings() {
        let (_, _, blip) = measure(&at(&[30.0, 30.0, 40.0, 30.0, 30.0]), 4.0);
        assert_eq!(blip, 2);
        let (_, _, two) = measure(&at(&[30.0, 40.0, 30.0, 40.0, 30.0]), 4.0);
        assert_eq!(two, 4);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Noise smaller than `min_move` added to a steady climb never makes a swing beyond the
        /// climb itself.
        #[test]
        fn noise_under_min_move_on_a_climb_is_one_swing(
            noise in proptest::collection::vec(-0.45f64..0.45, 4..40)
        ) {
            let values: Vec<f64> = noise
                .iter()
                .enumerate()
                .map(|(i, n)| i as f64 * 0.5 + n)
                .collect();
            let (_, _, swings) = measure(&at(&values), 1.0);
            prop_assert!(swings <= 1, "{swings} swings");
        }
    }
}
