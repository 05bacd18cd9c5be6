#![doc = include_str!("delta_between_snapshots.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{fmt_change, fmt_duration, fmt_number, ratio_scale};

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
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let min_abs = p.quantity(ctx, "min_abs");
    let min_abs = p.required(ctx, "min_abs", min_abs)?;
    let min_rel_pct = p.fields.number(ctx, "min_rel_pct").map(|n| n.into_inner());
    let direction = p.choice(ctx, "direction", &["drop", "rise", "any"], "any");
    let max_gap_s = p.duration(ctx, "max_gap").unwrap_or(3600.0);
    let across_reboot = p.fields.boolean(ctx, "across_reboot").unwrap_or(false);
    let quiet_if_repeated_s = p.duration(ctx, "quiet_if_repeated").unwrap_or(0.0);
    Some(Kind::DeltaBetweenSnapshots(Params {
        min_abs: min_abs.abs(),
        min_rel_pct,
        direction,
        max_gap_s,
        across_reboot,
        quiet_if_repeated_s,
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

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let [.., p0, p1] = points else { continue };
        let (Some(before), Some(after)) = (p0.value, p1.value) else {
            continue;
        };
        let gap = (p1.at - p0.at) as f64;
        if gap > p.max_gap_s {
            continue;
        }
        let reboots = node.reboots();
        let straddles = reboots.iter().any(|(at, _)| *at > p0.at && *at <= p1.at);
        if straddles != p.across_reboot {
            continue;
        }
        let delta = after - before;
        let direction_ok = match p.direction.as_str() {
            "drop" => delta < 0.0,
            "rise" => delta > 0.0,
            _ => delta != 0.0,
        };
        let rel_pct = if before != 0.0 {
            Some(delta / before.abs() * 100.0)
        } else {
            None
        };
        let rel_ok = match p.min_rel_pct {
            Some(min) => rel_pct.is_some_and(|r| r.abs() >= min),
            None => true,
        };
        if !direction_ok || delta.abs() < p.min_abs || !rel_ok {
            continue;
        }
        if p.quiet_if_repeated_s > 0.0
            && (repeated(points, reboots, p, delta) || undoes_gradual_drift(points, p, delta))
        {
            continue;
        }
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
            "{} {} {word} from {} to {} ({}{rel_part}) between the captures at {} and {} ({interval} apart{reboot_part}).",
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
