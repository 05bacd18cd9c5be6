#![doc = include_str!("sentinel_value.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, and_list, string_list};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::rules::select::glob_match;
use crate::tomlread::Ctx;
use crate::units::{fmt_number, fmt_value};

pub const SPEC: KindSpec = KindSpec {
    name: "sentinel-value",
    doc: include_str!("sentinel_value.md"),
    target: Target::Node,
    event: false,
    variables: &["field", "value", "count", "share", "lines", "template"],
    headline: &["share"],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    /// Log fields to inspect (globs), e.g. `*_uuid`.
    pub fields: Vec<String>,
    /// Values that are placeholders, not data.
    pub values: Vec<String>,
    /// Or: a numeric series whose reading equals `equals`.
    pub metric: Option<String>,
    pub equals: f64,
}

/// Placeholders that are never real identifiers.
const DEFAULT_SENTINELS: &[&str] = &[
    "empty",
    "null",
    "none",
    "undefined",
    "00000000-0000-0000-0000-000000000000",
];

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let fields = string_list(p, ctx, "fields");
    let mut values = string_list(p, ctx, "values");
    if values.is_empty() {
        values = DEFAULT_SENTINELS.iter().map(|s| s.to_string()).collect();
    }
    let metric = p
        .fields
        .string(ctx, "metric", false)
        .map(|m| m.into_inner());
    if let Some(m) = &metric
        && !crate::history::metrics::KNOWN_METRICS.contains(&m.as_str())
    {
        ctx.report(
            p.fields.span.clone(),
            format!("{}: unknown `metric` `{m}`", p.fields.what),
        );
    }
    let equals = super::number(p, ctx, "equals").unwrap_or(0.0);
    if fields.is_empty() && metric.is_none() {
        ctx.report(
            p.fields.span.clone(),
            format!(
                "{} needs `fields` (log fields to inspect) or `metric` (a reading to compare with `equals`)",
                p.fields.what
            ),
        );
        return None;
    }
    Some(Kind::SentinelValue(Params {
        fields,
        values,
        metric,
        equals,
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        let at = snap.captured_at.timestamp();
        if let Some(metric) = &p.metric {
            let (dim, suffix) = metric_unit(metric);
            for (entity, series) in node.series_of(metric) {
                if !rule.select.entity_matches(entity) {
                    continue;
                }
                let Some(pt) = series.last().filter(|pt| pt.at == at) else {
                    continue;
                };
                if pt.value != Some(p.equals) {
                    continue;
                }
                let mut c = Candidate::new(node, entity, metric, at);
                let shown = fmt_value(p.equals, dim, suffix);
                c.value("field", None, metric.clone());
                c.value("value", Some(p.equals), shown.clone());
                c.value("count", Some(1.0), "1");
                c.value("share", None, "-");
                c.value("lines", None, "-");
                c.value("template", None, "-");
                c.evidence = format!(
                    "{} reports a {} of {shown}, a value that cannot be real for it.",
                    entity_label(entity),
                    metric_label(metric)
                );
                out.push(c);
            }
        }
        if p.fields.is_empty() {
            continue;
        }
        for stream in &snap.logs {
            let stream_entity = format!("log:{}", stream.source);
            if !rule.select.entity_matches(&stream_entity) {
                continue;
            }
            for t in &stream.templates {
                for (field, values) in &t.fields {
                    if !p.fields.iter().any(|g| glob_match(g, field)) {
                        continue;
                    }
                    let total: u64 = values.values().sum();
                    let hits: Vec<(&String, &u64)> = values
                        .iter()
                        .filter(|(v, _)| p.values.iter().any(|s| s.eq_ignore_ascii_case(v)))
                        .collect();
                    let count: u64 = hits.iter().map(|(_, n)| **n).sum();
                    if count == 0 || total == 0 {
                        continue;
                    }
                    let level = t.level.as_deref().unwrap_or("-");
                    let entity = format!("logtpl:{}|{}|{}", stream.source, level, t.template);
                    let mut c = Candidate::new(node, &entity, &format!("field:{field}"), at);
                    let share = count as f64 / total as f64 * 100.0;
                    let shown: Vec<String> = hits.iter().map(|(v, _)| format!("'{v}'")).collect();
                    c.value("field", None, field.clone());
                    c.value("value", None, and_list(&shown));
                    c.value("count", Some(count as f64), count.to_string());
                    c.value("share", Some(share), format!("{}%", fmt_number(share, 1)));
                    c.value("lines", Some(t.count as f64), t.count.to_string());
                    c.value("template", None, code_span(&t.template));
                    c.evidence = format!(
                        "In log {} since the previous capture, {count} of {total} lines ({}%) of {} {} carry `{field}` = {}.",
                        code_span(&stream.source),
                        fmt_number(share, 1),
                        level,
                        code_span(&t.template),
                        and_list(&shown)
                    );
                    out.push(c);
                }
            }
        }
    }
}
