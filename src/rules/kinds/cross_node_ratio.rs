#![doc = include_str!("cross_node_ratio.md")]

use std::collections::BTreeMap;

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh, peer_groups};
use crate::history::NodeHistory;
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

fn mean_since(node: &NodeHistory, entity: &str, metric: &str, since: i64) -> Option<f64> {
    let series = node.series(entity, metric)?;
    let points = fresh(node, series)?;
    let values: Vec<f64> = points
        .iter()
        .filter(|p| p.at >= since)
        .filter_map(|p| p.value)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    let Some(latest) = ctx.window.latest_at() else {
        return;
    };
    let since = latest.timestamp() - p.over_s as i64;
    for (group, nodes) in peer_groups(rule, ctx.window, false) {
        // canonical entity -> (node, entity as named there, mean)
        let mut by_entity: BTreeMap<String, Vec<(&NodeHistory, String, f64)>> = BTreeMap::new();
        for node in &nodes {
            for (entity, _) in node.series_of(metric) {
                if !rule.select.entity_matches(entity) {
                    continue;
                }
                if let Some(mean) = mean_since(node, entity, metric, since) {
                    by_entity
                        .entry(ctx.aliases.canonical(entity))
                        .or_default()
                        .push((node, entity.to_string(), mean));
                }
            }
        }
        for list in by_entity.values() {
            if list.len() < 2 {
                continue;
            }
            let Some(hi) = list.iter().max_by(|a, b| a.2.total_cmp(&b.2)) else {
                continue;
            };
            let Some(lo) = list.iter().min_by(|a, b| a.2.total_cmp(&b.2)) else {
                continue;
            };
            if lo.2 <= 0.0 || hi.2 < p.min_value {
                continue;
            }
            let ratio = hi.2 / lo.2;
            if ratio < p.min_ratio {
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
                "{} {} averaged {hi_s} on {} against {lo_s} on {} over the last {}: {ratio_s} its peer's.",
                entity_label(&hi.1),
                metric_label(metric),
                hi.0.node,
                lo.0.node,
                fmt_duration(p.over_s),
            );
            out.push(c);
        }
    }
}
