#![doc = include_str!("oscillation.md")]

use super::{
    Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, current_run, fresh_series,
};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
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
    /// A leg (a run of moves in one direction) counts as a swing when it moves at least this.
    pub min_move: f64,
    pub min_swings: usize,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let min_range = p.quantity(ctx, "min_range");
    let min_range = p.required(ctx, "min_range", min_range)?;
    let min_move = p.quantity(ctx, "min_move").unwrap_or(min_range / 2.0);
    Some(Kind::Oscillation(Params {
        window_s: p.duration(ctx, "window").unwrap_or(3600.0),
        min_range,
        min_move,
        min_swings: p.fields.count(ctx, "min_swings").unwrap_or(2).max(1),
    }))
}

/// Peak-to-trough over the samples: (low, high, swings). The range is max − min, never a sum
/// of moves (the seed added a 6 °C drop and a 9 °C rise into a "15 °C" swing).
fn measure(samples: &[(i64, f64)], min_move: f64) -> (f64, f64, usize) {
    let low = samples.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let high = samples
        .iter()
        .map(|s| s.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut swings = 0;
    let mut leg = 0.0_f64;
    for w in samples.windows(2) {
        let d = w[1].1 - w[0].1;
        if d == 0.0 {
            continue;
        }
        if leg != 0.0 && d.signum() != leg.signum() {
            if leg.abs() >= min_move {
                swings += 1;
            }
            leg = 0.0;
        }
        leg += d;
    }
    if leg.abs() >= min_move {
        swings += 1;
    }
    (low, high, swings)
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
        let (low, high, swings) = measure(&samples, p.min_move);
        let (t0, t1) = (samples[0].0, samples[samples.len() - 1].0);
        if high - low < p.min_range || swings < p.min_swings {
            // A run shorter than the window (since a reboot, after a gap) cannot show a cycle
            // gone: it is undecided, not quiet.
            if ((t1 - t0) as f64) < p.window_s * 0.9 || !super::covers(node, p.window_s * 0.9) {
                out.push(Candidate::undecided(node, entity, metric, t1));
            }
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

    #[test]
    fn range_is_peak_to_trough_not_a_sum_of_moves() {
        let s = [(0, 24.0), (900, 18.0), (1800, 27.0)];
        let (low, high, swings) = measure(&s, 4.5);
        assert_eq!(high - low, 9.0);
        assert_eq!(swings, 2);
    }
}
