#![doc = include_str!("cross_node_ratio.md")]

use std::collections::BTreeMap;

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh, peer_groups};
use crate::history::NodeHistory;
use crate::rules::gate_window;
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{fmt_duration, fmt_number, fmt_value};

pub const SPEC: KindSpec = KindSpec {
    name: "cross-node-ratio",
    doc: include_str!("cross_node_ratio.md"),
    target: Target::Series,
    event: false,
    variables: &["high", "low", "ratio", "other", "over"],
    headline: &["ratio"],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub min_ratio: f64,
    /// The higher of the two means must be at least this (in the metric's unit).
    pub min_value: f64,
    pub over_s: f64,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let min_ratio = super::number(p, ctx, "min_ratio");
    let min_ratio = p.required(ctx, "min_ratio", min_ratio)?;
    Some(Kind::CrossNodeRatio(Params {
        min_ratio,
        min_value: p.quantity(ctx, "min_value").unwrap_or(0.0),
        over_s: p.duration(ctx, "over").unwrap_or(3600.0),
    }))
}

/// The readings of a fresh series from `since` on, as (capture time, value).
fn readings_since(node: &NodeHistory, entity: &str, metric: &str, since: i64) -> Vec<(i64, f64)> {
    let Some(points) = node.series(entity, metric).and_then(|s| fresh(node, s)) else {
        return Vec::new();
    };
    let from = points.partition_point(|p| p.at < since);
    points[from..]
        .iter()
        .filter_map(|p| p.value.map(|v| (p.at, v)))
        .collect()
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for (group, nodes) in peer_groups(rule, ctx.window, false) {
        // canonical entity -> (node, entity as named there, mean, newest reading)
        let mut by_entity: BTreeMap<String, Vec<(&NodeHistory, String, f64, f64)>> =
            BTreeMap::new();
        // Entities left out on some node because its gate did not hold over the whole window:
        // the comparison could not be made in full.
        let mut left_out: BTreeMap<String, Vec<(&NodeHistory, String)>> = BTreeMap::new();
        for node in &nodes {
            // Each node's window ends at its own newest capture: nodes are captured at
            // different moments, and a window shared from the fleet's newest capture would take
            // one reading more or less from each depending on jitter.
            let Some(latest) = node.latest_at() else {
                continue;
            };
            let since = latest - p.over_s as i64;
            let series: Vec<(&str, Vec<(i64, f64)>)> = node
                .series_of(metric)
                .into_iter()
                .filter(|(entity, _)| rule.select.entity_matches(entity))
                .map(|(entity, _)| (entity, readings_since(node, entity, metric, since)))
                .filter(|(_, r)| !r.is_empty())
                .collect();
            // The gate must hold at every reading averaged, not only at the newest capture.
            let mut times: Vec<i64> = series
                .iter()
                .flat_map(|(_, r)| r.iter().map(|(at, _)| *at))
                .collect();
            times.sort_unstable();
            times.dedup();
            let held =
                gate_window::held_since(&rule.when, ctx.state_defs, ctx.window, node, &times);
            for (entity, readings) in series {
                let canonical = ctx.aliases.canonical(entity);
                if held.is_none_or(|from| from > readings[0].0) {
                    left_out
                        .entry(canonical)
                        .or_default()
                        .push((node, entity.to_string()));
                    continue;
                }
                let mean = readings.iter().map(|r| r.1).sum::<f64>() / readings.len() as f64;
                let newest = readings[readings.len() - 1].1;
                by_entity
                    .entry(canonical)
                    .or_default()
                    .push((node, entity.to_string(), mean, newest));
            }
        }
        let mut fired = std::collections::BTreeSet::new();
        for (canonical, list) in &by_entity {
            if list.len() < 2 {
                continue;
            }
            let Some(hi) = list.iter().max_by(|a, b| a.2.total_cmp(&b.2)) else {
                continue;
            };
            // The high node is compared with its typical peer (the lower median of the others),
            // not the lowest: among four benches where one instrument is dead, the three that
            // work are alike, and only the dead one stands apart.
            let mut others: Vec<_> = list
                .iter()
                .filter(|e| !std::ptr::eq(*e, hi))
                .collect();
            others.sort_by(|a, b| a.2.total_cmp(&b.2).then_with(|| a.0.node.cmp(&b.0.node)));
            let Some(lo) = others.get(others.len().saturating_sub(1) / 2).copied() else {
                continue;
            };
            if lo.2 <= 0.0 || hi.2 < p.min_value {
                continue;
            }
            let ratio = hi.2 / lo.2;
            // The mean keeps one busy capture from firing; the newest reading keeps an hour
            // that ended busy (the day's work stopping at 18:00) from reading as idle burn.
            let still = hi.3 >= p.min_value && hi.3 >= p.min_ratio * lo.2;
            if ratio < p.min_ratio {
                continue;
            }
            if !still {
                // The mean says it, the newest reading does not: undecided, so an open finding
                // stays open (a burn in a duty cycle is not fixed each time it pauses) and
                // nothing new opens on an hour that ended with the work.
                let at = hi.0.latest_at().unwrap_or_default();
                let mut c = Candidate::undecided(hi.0, &hi.1, metric, at);
                c.scope = Some(format!("{group}:{}", hi.0.node));
                out.push(c);
                fired.insert(canonical.as_str());
                continue;
            }
            let Some(at) = hi.0.latest_at() else { continue };
            let mut c = Candidate::new(hi.0, &hi.1, metric, at);
            c.scope = Some(format!("{group}:{}", hi.0.node));
            let (hi_s, lo_s) = (fmt_value(hi.2, dim, suffix), fmt_value(lo.2, dim, suffix));
            let ratio_s = format!("{}x", fmt_number(ratio, if ratio >= 10.0 { 0 } else { 1 }));
            c.value("high", Some(hi.2), hi_s.clone());
            c.value("low", Some(lo.2), lo_s.clone());
            c.value("ratio", Some(ratio), ratio_s.clone());
            c.value("other", None, lo.0.node.clone());
            c.value("over", Some(p.over_s), fmt_duration(p.over_s));
            c.evidence = format!(
                "{} {} averaged {hi_s} on {} against {lo_s} on {} over the last {}: {ratio_s} its {}peer's.",
                entity_label(&hi.1),
                metric_label(metric),
                hi.0.node,
                lo.0.node,
                fmt_duration(p.over_s),
                if others.len() > 1 { "typical " } else { "" },
            );
            out.push(c);
            fired.insert(canonical.as_str());
        }
        // A peer left out cannot show that the others are alike: an open finding about them
        // stays open (could not check) rather than resolving.
        for (canonical, missing) in &left_out {
            if fired.contains(canonical.as_str()) {
                continue;
            }
            let compared = by_entity.get(canonical).into_iter().flatten();
            let all = compared.map(|(n, e, _, _)| (*n, e.as_str()));
            let all = all.chain(missing.iter().map(|(n, e)| (*n, e.as_str())));
            for (node, entity) in all {
                let at = node.latest_at().unwrap_or_default();
                let mut c = Candidate::undecided(node, entity, metric, at);
                // The key of the finding it would be: scoped like one.
                c.scope = Some(format!("{group}:{}", node.node));
                out.push(c);
            }
        }
    }
}
