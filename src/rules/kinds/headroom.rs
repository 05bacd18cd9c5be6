#![doc = include_str!("headroom.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, and_list, string_list};
use crate::history::metrics::{KNOWN_METRICS, entity_label, metric_unit};
use crate::rules::Rule;
use crate::rules::select::glob_match;
use crate::tomlread::Ctx;
use crate::units::{fmt_number, fmt_value};

pub const SPEC: KindSpec = KindSpec {
    name: "headroom",
    doc: include_str!("headroom.md"),
    target: Target::Series,
    event: false,
    variables: &["total", "capacity", "share", "consumers", "left"],
    headline: &["share"],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub consumers: Vec<String>,
    pub capacity_entity: String,
    pub capacity_metric: String,
    pub above_pct: f64,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let consumers = string_list(p, ctx, "consumers");
    let what = format!("{} capacity", p.fields.what);
    let (capacity_entity, capacity_metric) = match p.fields.table(ctx, "capacity", &what) {
        Some(mut t) => {
            let e = t.string(ctx, "entity", true).map(|s| s.into_inner());
            let m = t.string(ctx, "metric", true).map(|s| s.into_inner());
            if let Some(m) = &m
                && !KNOWN_METRICS.contains(&m.as_str())
            {
                ctx.report(t.span.clone(), format!("{what}: unknown metric `{m}`"));
            }
            t.finish(ctx);
            (e?, m?)
        }
        None => ("host".to_string(), "mem_total_bytes".to_string()),
    };
    let above_pct = super::number(p, ctx, "above_pct");
    let above_pct = p.required(ctx, "above_pct", above_pct)?;
    Some(Kind::Headroom(Params {
        consumers,
        capacity_entity,
        capacity_metric,
        above_pct,
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(latest) = node.latest_at() else {
            continue;
        };
        let Some(capacity) = ctx
            .window
            .current(&node.node, &p.capacity_entity, &p.capacity_metric)
            .flatten()
        else {
            continue;
        };
        let mut parts: Vec<(String, f64)> = node
            .series_of(metric)
            .into_iter()
            .filter(|(e, _)| rule.select.entity_matches(e))
            .filter(|(e, _)| p.consumers.is_empty() || p.consumers.iter().any(|g| glob_match(g, e)))
            .filter_map(|(e, s)| {
                let pt = s.last().filter(|pt| pt.at == latest)?;
                Some((e.to_string(), pt.value?))
            })
            .collect();
        if parts.is_empty() || capacity <= 0.0 {
            continue;
        }
        parts.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let total: f64 = parts.iter().map(|x| x.1).sum();
        let share = total / capacity * 100.0;
        if share <= p.above_pct {
            continue;
        }
        let named: Vec<String> = parts
            .iter()
            .take(4)
            .map(|(e, v)| format!("{} ({})", entity_label(e), fmt_value(*v, dim, suffix)))
            .collect();
        let (cap_dim, cap_suffix) = metric_unit(&p.capacity_metric);
        let mut c = Candidate::new(node, "headroom", metric, latest);
        let total_s = fmt_value(total, dim, suffix);
        let cap_s = fmt_value(capacity, cap_dim, cap_suffix);
        c.value("total", Some(total), total_s.clone());
        c.value("capacity", Some(capacity), cap_s.clone());
        c.value("share", Some(share), format!("{}%", fmt_number(share, 0)));
        c.value("consumers", None, and_list(&named));
        c.value(
            "left",
            Some(capacity - total),
            fmt_value(capacity - total, dim, suffix),
        );
        c.evidence = format!(
            "{} together hold {total_s} of {cap_s} ({}%), leaving {} for everything else.",
            and_list(&named),
            fmt_number(share, 0),
            fmt_value(capacity - total, dim, suffix)
        );
        out.push(c);
    }
}
