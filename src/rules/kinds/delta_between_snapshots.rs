#![doc = include_str!("delta_between_snapshots.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{fmt_change, fmt_duration, fmt_number, fmt_value, ratio_scale};

pub const SPEC: KindSpec = KindSpec {
    name: "delta-between-snapshots",
    doc: include_str!("delta_between_snapshots.md"),
    target: Target::Series,
    event: true,
    variables: &[
        "before",
        "after",
        "delta",
        "delta_pct",
        "interval",
        "direction",
        "ratio",
        "typical_step",
        "noise_bar",
    ],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub min_abs: f64,
    pub min_rel_pct: Option<f64>,
    /// "drop", "rise" or "any".
    pub direction: String,
    pub max_gap_s: f64,
    pub across_reboot: bool,
    /// Stay quiet when a change of the same direction and similar size (half to double) already
    /// happened within this long before: a sawtooth or a steady leak is one finding, not one
    /// per capture.
    pub quiet_if_repeated_s: f64,
    /// How far back the series' own step-to-step variation is read, before the last pair.
    pub noise_window_s: f64,
    /// How many typical steps a change must measure to stand out of that variation; 0 turns
    /// the check off.
    pub noise_k: f64,
    /// A metric of the same entity that measures its work: a change it made too (a job
    /// starting, traffic ending) is the work's, and stays quiet.
    pub load: Option<String>,
}

/// Fewer recent steps than this say too little about a series' variation: the fixed floor
/// alone then decides.
pub const MIN_NOISE_STEPS: usize = 8;

/// The series' recent variation, as the decision used it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variation {
    /// The upper quartile of the absolute steps: three in four recent steps were no bigger.
    pub typical_step: f64,
    /// How many steps it was read from.
    pub steps: usize,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let min_abs = p.quantity(ctx, "min_abs");
    let min_abs = p.required(ctx, "min_abs", min_abs)?;
    let min_rel_pct = p.fields.number(ctx, "min_rel_pct").map(|n| n.into_inner());
    let direction = p.choice(ctx, "direction", &["drop", "rise", "any"], "any");
    let max_gap_s = p.duration(ctx, "max_gap").unwrap_or(3600.0);
    let across_reboot = p.fields.boolean(ctx, "across_reboot").unwrap_or(false);
    let quiet_if_repeated_s = p.duration(ctx, "quiet_if_repeated").unwrap_or(0.0);
    let noise_window_s = p.duration(ctx, "noise_window").unwrap_or(6.0 * 3600.0);
    let noise_k = p.fields.number(ctx, "noise_k").map(|n| n.into_inner());
    if noise_k.is_some_and(|k| k < 0.0)
        && let Some(v) = p.fields.value("noise_k")
    {
        ctx.report(
            v.span(),
            format!(
                "{}: `noise_k` must not be negative (0 turns the noise check off)",
                p.fields.what
            ),
        );
    }
    Some(Kind::DeltaBetweenSnapshots(Params {
        min_abs: min_abs.abs(),
        min_rel_pct,
        direction,
        max_gap_s,
        across_reboot,
        quiet_if_repeated_s,
        noise_window_s,
        noise_k: noise_k.unwrap_or(3.0).max(0.0),
        load: crate::rules::load_follow::parse(p, ctx),
    }))
}

/// Whether an earlier pair of consecutive readings, within the quiet period before the last
/// pair, changed in the same direction by between half and double as much.
fn repeated(
    points: &[crate::history::Point],
    reboots: &[(i64, i64)],
    p: &Params,
    delta: f64,
) -> bool {
    let n = points.len();
    let Some(last_start) = points.get(n.wrapping_sub(2)).map(|pt| pt.at) else {
        return false;
    };
    let since = last_start as f64 - p.quiet_if_repeated_s;
    points[..n - 1].windows(2).any(|w| {
        let (Some(a), Some(b)) = (w[0].value, w[1].value) else {
            return false;
        };
        let d = b - a;
        // A change across a reboot has another cause and is no precedent.
        let across_reboot = reboots
            .iter()
            .any(|(at, _)| *at > w[0].at && *at <= w[1].at);
        !across_reboot
            && w[1].at as f64 >= since
            && (w[1].at - w[0].at) as f64 <= p.max_gap_s
            && d.signum() == delta.signum()
            && d.abs() >= delta.abs() / 2.0
            && d.abs() <= delta.abs() * 2.0
    })
}

/// Whether the step before the last already went the same way by at least a third as much: the
/// last is the steepest part of a gradual move (memory easing off after the evening peak), not
/// a sudden change.
fn continues_a_move(points: &[crate::history::Point], delta: f64) -> bool {
    let [.., a, b, _] = points else {
        return false;
    };
    match (a.value, b.value) {
        (Some(a), Some(b)) => (b - a).signum() == delta.signum() && (b - a).abs() >= delta.abs() / 3.0,
        _ => false,
    }
}

/// Whether the last change only takes the value back to where it was within the quiet period,
/// after a drift there in small steps: one turn of a cycle (a compaction, a cache that fills and
/// is flushed), not news. A value that jumped in one step and fell back is still reported.
fn undoes_gradual_drift(points: &[crate::history::Point], p: &Params, delta: f64) -> bool {
    let n = points.len();
    if n < 3 {
        return false;
    }
    let Some(after) = points[n - 1].value else {
        return false;
    };
    let since = points[n - 2].at as f64 - p.quiet_if_repeated_s;
    let tolerance = delta.abs() * 0.1;
    // The latest earlier reading at the level the value came back to.
    let Some(start) = points[..n - 1].iter().rposition(|pt| {
        pt.at as f64 >= since
            && pt.value.is_some_and(|v| {
                if delta < 0.0 {
                    v <= after + tolerance
                } else {
                    v >= after - tolerance
                }
            })
    }) else {
        return false;
    };
    let steps = &points[start..n - 1];
    steps.len() >= 3
        && steps.windows(2).all(|w| match (w[0].value, w[1].value) {
            (Some(a), Some(b)) => (b - a).abs() < delta.abs() / 3.0,
            _ => false,
        })
}

/// The step-to-step variation of the series within `noise_window` before its last pair and
/// since the node last booted: the steps between consecutive readings at most `max_gap` apart.
/// `None` when there are too few to judge.
pub fn recent_variation(
    points: &[crate::history::Point],
    reboots: &[(i64, i64)],
    p: &Params,
) -> Option<Variation> {
    let n = points.len();
    let last_start = points.get(n.checked_sub(2)?)?.at;
    // Only the current run: what a series did before its node rebooted (a leak the reboot
    // released) is not the variation of what it does since.
    let run_start = reboots
        .iter()
        .map(|(at, _)| *at)
        .filter(|at| *at <= last_start)
        .max()
        .unwrap_or(i64::MIN);
    let since = (last_start as f64 - p.noise_window_s).max(run_start as f64);
    // Sparse captures (hourly) hold fewer steps than a variation needs within `noise_window`:
    // the window then reaches back to the last MIN_NOISE_STEPS steps of the current run.
    let steps_in = |since: f64| -> Vec<f64> {
        points[..n - 1]
            .windows(2)
            .filter(|w| w[0].at as f64 >= since && (w[1].at - w[0].at) as f64 <= p.max_gap_s)
            .filter_map(|w| Some((w[1].value? - w[0].value?).abs()))
            .collect()
    };
    let mut steps = steps_in(since);
    if steps.len() < MIN_NOISE_STEPS {
        steps = steps_in(run_start as f64);
        let keep = steps.len().min(MIN_NOISE_STEPS);
        steps.drain(..steps.len() - keep);
    }
    if steps.len() < MIN_NOISE_STEPS {
        return None;
    }
    steps.sort_by(f64::total_cmp);
    // Nearest rank: the smallest step that at least three in four steps do not exceed. An upper
    // quartile rather than the median because bounded jitter reaches about 3.4 medians but only
    // 2 upper quartiles, so a factor of 3 keeps a margin; and a quarter of the steps may be real
    // changes before the estimate moves.
    let rank = (steps.len() * 3).div_ceil(4);
    Some(Variation {
        typical_step: steps[rank - 1],
        steps: steps.len(),
    })
}

/// Whether a change stands out of the series' recent variation (always, when that could not be
/// judged or the check is off).
pub fn stands_out(delta: f64, variation: Option<Variation>, k: f64) -> bool {
    variation.is_none_or(|v| delta.abs() >= k * v.typical_step)
}

/// A change of the last pair of readings that the rule reports, with what judged it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub before: f64,
    pub after: f64,
    pub delta: f64,
    pub variation: Option<Variation>,
}

/// Whether the last pair of readings is a change to report: close enough in time, on the chosen
/// side of a reboot, in the chosen direction, over the fixed floor, not a repeat or the turn of a
/// cycle, and standing out of the series' recent variation.
pub fn judge(points: &[crate::history::Point], reboots: &[(i64, i64)], p: &Params) -> Option<Change> {
    let [.., p0, p1] = points else { return None };
    let (before, after) = (p0.value?, p1.value?);
    if (p1.at - p0.at) as f64 > p.max_gap_s {
        return None;
    }
    let straddles = reboots.iter().any(|(at, _)| *at > p0.at && *at <= p1.at);
    if straddles != p.across_reboot {
        return None;
    }
    let delta = after - before;
    let direction_ok = match p.direction.as_str() {
        "drop" => delta < 0.0,
        "rise" => delta > 0.0,
        _ => delta != 0.0,
    };
    let rel_ok = match p.min_rel_pct {
        Some(min) => before != 0.0 && (delta / before.abs() * 100.0).abs() >= min,
        None => true,
    };
    if !direction_ok || delta.abs() < p.min_abs || !rel_ok {
        return None;
    }
    if p.quiet_if_repeated_s > 0.0
        && (repeated(points, reboots, p, delta)
            || undoes_gradual_drift(points, p, delta)
            || continues_a_move(points, delta))
    {
        return None;
    }
    let variation = if p.noise_k > 0.0 {
        recent_variation(points, reboots, p)
    } else {
        None
    };
    stands_out(delta, variation, p.noise_k).then_some(Change {
        before,
        after,
        delta,
        variation,
    })
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let Some(Change {
            before,
            after,
            delta,
            variation,
        }) = judge(points, node.reboots(), p)
        else {
            continue;
        };
        let [.., p0, p1] = points else { continue };
        if let Some(load) = p.load.as_deref().and_then(|m| node.series(entity, m))
            && crate::rules::load_follow::load_explains(&load.points, p0.at, p1.at, delta.signum())
        {
            continue;
        }
        let gap = (p1.at - p0.at) as f64;
        let change = fmt_change(before, after, dim, suffix);
        let mut c = Candidate::new(node, entity, metric, p1.at);
        c.event = true;
        c.event_id = Some(p1.at.to_string());
        c.value("before", Some(before), change.before.clone());
        c.value("after", Some(after), change.after.clone());
        c.value("delta", Some(change.shown_delta), change.delta.clone());
        // A percentage is printed only on a ratio scale (not of a temperature), and computed
        // from the printed values so that it is the printed change over the printed before.
        let shown_pct = (change.shown_before != 0.0 && ratio_scale(dim, suffix))
            .then(|| change.shown_delta / change.shown_before.abs() * 100.0);
        let rel_text = shown_pct
            .map(|r| format!("{}{}%", if r > 0.0 { "+" } else { "" }, fmt_number(r, 1)))
            .unwrap_or_default();
        c.value("delta_pct", shown_pct, rel_text.clone());
        let interval = fmt_duration(gap);
        c.value("interval", Some(gap), interval.clone());
        let (b, a) = (change.shown_before, change.shown_after);
        let ratio = if b.abs() > 0.0 && a.abs() > 0.0 && ratio_scale(dim, suffix) {
            let r = if a > b { a / b } else { b / a };
            Some(r)
        } else {
            None
        };
        c.value(
            "ratio",
            ratio,
            ratio
                .map(|r| format!("{}x", fmt_number(r, if r >= 10.0 { 0 } else { 1 })))
                .unwrap_or_else(|| "-".into()),
        );
        let noise_part = match variation {
            Some(v) => {
                let typical = fmt_value(v.typical_step, dim, suffix);
                c.value("typical_step", Some(v.typical_step), typical.clone());
                let bar = v.typical_step * p.noise_k;
                c.value("noise_bar", Some(bar), fmt_value(bar, dim, suffix));
                if v.typical_step > 0.0 {
                    format!(
                        " Three in four of its {} steps in the {} before were within ±{typical}.",
                        v.steps,
                        fmt_duration(p.noise_window_s)
                    )
                } else {
                    format!(
                        " Three in four of its {} steps in the {} before were flat.",
                        v.steps,
                        fmt_duration(p.noise_window_s)
                    )
                }
            }
            None => {
                c.value("typical_step", None, "-");
                c.value("noise_bar", None, "-");
                String::new()
            }
        };
        let word = if delta < 0.0 { "dropped" } else { "rose" };
        c.value("direction", None, word);
        let rel_part = if rel_text.is_empty() {
            String::new()
        } else {
            format!(", {rel_text}")
        };
        let reboot_part = if p.across_reboot {
            " across a reboot"
        } else {
            ""
        };
        c.evidence = format!(
            "{} {} {word} from {} to {} ({}{rel_part}) between the captures at {} and {} ({interval} apart{reboot_part}).{noise_part}",
            entity_label(entity),
            metric_label(metric),
            change.before,
            change.after,
            change.delta,
            ctx.time(p0.at),
            ctx.time(p1.at),
        );
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Point;
    use proptest::prelude::*;

    const STEP_S: i64 = 900;

    fn params(min_abs: f64) -> Params {
        Params {
            min_abs,
            min_rel_pct: None,
            direction: "any".into(),
            max_gap_s: 2400.0,
            across_reboot: false,
            quiet_if_repeated_s: 0.0,
            noise_window_s: 6.0 * 3600.0,
            noise_k: 3.0,
            load: None,
        }
    }

    fn series(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                at: i as i64 * STEP_S,
                value: Some(*v),
            })
            .collect()
    }

    /// Uniform jitter in [-amplitude, amplitude), reproducible from a seed (splitmix64, as the
    /// simulator's noise).
    fn jitter(seed: u64, n: usize, level: f64, amplitude: f64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_add(0x9e3779b97f4a7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
                z ^= z >> 31;
                let u = (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                level + amplitude * u
            })
            .collect()
    }

    #[test]
    fn a_jitter_sized_change_is_quiet_and_a_real_step_on_the_same_series_fires() {
        // ±3 °C of jitter whose last step happens to be 5.5 °C: the floor alone reported it.
        let mut temps: Vec<f64> = (0..25)
            .map(|i| 40.0 + [-2.0, 1.0, -1.0, 2.5, 0.0, -2.5][i % 6])
            .collect();
        temps.push(temps[24] + 5.5);
        let p = params(5.0);
        assert_eq!(judge(&series(&temps), &[], &p), None);
        let typical = recent_variation(&series(&temps), &[], &p).map(|v| v.typical_step);
        assert_eq!(typical, Some(3.0), "the upper quartile of the 24 steps before");
        // The same series jumping 15 °C.
        let last = temps.len() - 1;
        temps[last] = temps[last - 1] + 15.0;
        let c = judge(&series(&temps), &[], &p);
        assert_eq!(c.map(|c| c.delta), Some(15.0));
        assert_eq!(c.and_then(|c| c.variation).map(|v| v.steps), Some(24));
    }

    #[test]
    fn a_drop_on_a_flat_series_and_a_reboot_release_still_fire() {
        let mut mem = vec![414e6; 30];
        mem.push(315e6);
        let c = judge(&series(&mem), &[], &params(15e6));
        assert_eq!(c.and_then(|c| c.variation).map(|v| v.typical_step), Some(0.0));
        // Released by a reboot between the last two captures: the steps before it are the
        // variation, the release itself is not one of them.
        let mut p = params(50e6);
        p.across_reboot = true;
        let mut held: Vec<f64> = (0..30).map(|i| 4.0e9 + 1e6 * (i % 3) as f64).collect();
        held.push(78e6);
        let reboot = [(29 * STEP_S + 300, 0)];
        assert!(judge(&series(&held), &reboot, &p).is_some());
    }

    #[test]
    fn one_earlier_real_step_does_not_hide_the_next() {
        // A 60MB drop two hours ago is one step in 24: a quartile does not move for it.
        let mut mem: Vec<f64> = (0..25).map(|i| 400e6 + 1e6 * (i % 2) as f64).collect();
        for v in &mut mem[17..] {
            *v -= 60e6;
        }
        mem.push(mem[24] - 40e6);
        let c = judge(&series(&mem), &[], &params(15e6));
        assert_eq!(c.and_then(|c| c.variation).map(|v| v.typical_step), Some(1e6));
    }

    #[test]
    fn the_variation_is_read_since_the_last_reboot() {
        // A leak of 200MB a capture until a reboot at 6 h, flat since: a jump of 500MB after
        // 8 h is news, however large the steps of the run the reboot ended.
        let mut mem: Vec<f64> = (0..25).map(|i| 80e6 + 200e6 * i as f64).collect();
        mem.extend((0..10).map(|i| 78e6 + 0.5e6 * (i % 2) as f64));
        mem.push(mem[34] + 500e6);
        let reboot = [(24 * STEP_S + 300, 0)];
        let c = judge(&series(&mem), &reboot, &params(40e6));
        assert_eq!(c.and_then(|c| c.variation).map(|v| v.steps), Some(9));
    }

    #[test]
    fn too_few_steps_leave_the_floor_alone_to_decide() {
        // Seven steps of ±3 then a 5.5 step: nothing to judge the variation by.
        let temps = [40.0, 43.0, 37.0, 43.0, 37.0, 43.0, 37.0, 40.0, 45.5];
        let c = judge(&series(&temps), &[], &params(5.0));
        assert_eq!(c.map(|c| c.variation), Some(None));
        // A noise window too short for enough steps (sparse captures) reaches back to the last
        // eight of the run, and no further.
        let mut p = params(5.0);
        p.noise_window_s = 3.0 * STEP_S as f64;
        let mut temps: Vec<f64> = (0..20).map(|i| 40.0 + 30.0 * (i % 2) as f64).collect();
        temps.extend((0..10).map(|i| 40.0 + 3.0 * (i % 2) as f64));
        assert_eq!(
            recent_variation(&series(&temps), &[], &p),
            Some(Variation {
                typical_step: 3.0,
                steps: MIN_NOISE_STEPS
            })
        );
        // noise_k = 0 turns the check off.
        let mut jittery: Vec<f64> = (0..30).map(|i| 40.0 + 3.0 * (i % 2) as f64).collect();
        jittery.push(jittery[29] - 5.0);
        assert!(judge(&series(&jittery), &[], &params(5.0)).is_none());
        let mut off = params(5.0);
        off.noise_k = 0.0;
        assert!(judge(&series(&jittery), &[], &off).is_some());
    }

    #[test]
    fn a_negative_noise_k_is_a_load_error() {
        let text = r#"
[[rule]]
id = "swing"
kind = "delta-between-snapshots"
severity = "info"
description = "d"
select = { entity = "gpu:*", metric = "temp_c" }
params = { min_abs = 5, noise_k = -1 }
title = "t"
recommendation = "r"
"#;
        let err = crate::rules::Library::from_sources(&[("rules/gpu.toml".into(), text.into())])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("rules/gpu.toml") && err.contains("`noise_k` must not be negative"),
            "{err}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Jitter alone never fires, whatever its size, even with a floor under its reach; a
        /// step of k typical steps (plus the jitter's reach, which it may lose to the jitter)
        /// always does. A day of captures makes the typical step a steady estimate.
        #[test]
        fn jitter_alone_never_fires_and_a_step_of_k_typical_steps_does(
            seed in any::<u64>(),
            amplitude in 0.01f64..1000.0,
            floor_share in 0.5f64..1.0,
        ) {
            let mut p = params(2.0 * amplitude * floor_share);
            p.noise_window_s = 24.0 * 3600.0;
            let values = jitter(seed, 97, 100.0 * amplitude, amplitude);
            let points = series(&values);
            prop_assert_eq!(judge(&points, &[], &p), None);
            let typical = recent_variation(&points, &[], &p).map(|v| v.typical_step);
            prop_assert!(typical.is_some());
            let step = p.noise_k * typical.unwrap_or(0.0) + 2.0 * amplitude;
            let mut stepped = values.clone();
            stepped[96] += step;
            prop_assert!(judge(&series(&stepped), &[], &p).is_some());
        }
    }
}
