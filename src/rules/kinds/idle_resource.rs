#![doc = include_str!("idle_resource.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{fmt_duration, fmt_value};

pub const SPEC: KindSpec = KindSpec {
    name: "idle-resource",
    doc: include_str!("idle_resource.md"),
    target: Target::Series,
    event: false,
    variables: &["held", "use", "duration", "samples", "since"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub held_above: f64,
    pub use_metric: String,
    pub use_below: f64,
    pub for_s: f64,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let held_above = p.quantity(ctx, "held_above");
    let held_above = p.required(ctx, "held_above", held_above)?;
    let use_metric = p.fields.string(ctx, "use_metric", true)?.into_inner();
    if !crate::history::metrics::KNOWN_METRICS.contains(&use_metric.as_str()) {
        ctx.report(
            p.fields.span.clone(),
            format!("{}: unknown `use_metric` `{use_metric}`", p.fields.what),
        );
    }
    let use_below = super::number(p, ctx, "use_below").unwrap_or(1.0);
    let for_s = p.duration(ctx, "for");
    let for_s = p.required(ctx, "for", for_s)?;
    Some(Kind::IdleResource(Params {
        held_above,
        use_metric,
        use_below,
        for_s,
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    let (use_dim, use_suffix) = metric_unit(&p.use_metric);
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let Some(usage) = node.series(entity, &p.use_metric) else {
            continue;
        };
        let newest_use = usage
            .last()
            .filter(|u| Some(u.at) == points.last().map(|pt| pt.at));
        if points[points.len() - 1].value.is_none() || newest_use.is_none_or(|u| u.value.is_none())
        {
            // A null reading says nothing about use: keep what is open.
            out.push(Candidate::undecided_at_end(node, entity, metric, points));
            continue;
        }
        // Walk back from the newest capture while the resource is held and unused.
        let mut since = None;
        let mut samples = 0;
        let (mut held_last, mut use_last) = (None, None);
        // Across a capture gap the resource was not seen: the run is counted within the
        // node's unbroken captures only.
        let from = node.contiguous_since().unwrap_or(i64::MIN);
        for pt in points.iter().rev().take_while(|pt| pt.at >= from) {
            let used = usage
                .points
                .binary_search_by_key(&pt.at, |u| u.at)
                .ok()
                .and_then(|i| usage.points[i].value);
            match (pt.value, used) {
                (Some(h), Some(u)) if h > p.held_above && u < p.use_below => {
                    if held_last.is_none() {
                        held_last = Some(h);
                        use_last = Some(u);
                    }
                    since = Some(pt.at);
                    samples += 1;
                }
                _ => break,
            }
        }
        let (Some(since), Some(held), Some(used)) = (since, held_last, use_last) else {
            continue;
        };
        let last_at = points[points.len() - 1].at;
        let duration = (last_at - since) as f64;
        if duration < p.for_s {
            // Held and unused now, for less than `for` (since a gap, or since it was last
            // used): not yet idle long enough to say, and no sign that it is not.
            out.push(Candidate::undecided(node, entity, metric, last_at));
            continue;
        }
        let mut c = Candidate::new(node, entity, metric, last_at);
        let held_s = fmt_value(held, dim, suffix);
        let use_s = fmt_value(used, use_dim, use_suffix);
        c.value("held", Some(held), held_s.clone());
        c.value("use", Some(used), use_s.clone());
        c.value("duration", Some(duration), fmt_duration(duration));
        c.value("samples", Some(samples as f64), samples.to_string());
        c.value("since", None, ctx.time(since));
        // "GPU 0 memory use", not "GPU 0 GPU memory use".
        let subject = entity_label(entity);
        let label = metric_label(metric);
        let label = match (subject.split(' ').next(), label.split_once(' ')) {
            (Some(first), Some((word, rest))) if first == word => rest,
            _ => label,
        };
        c.evidence = format!(
            "{subject} {label} has been {held_s} with {} at {use_s} in all {samples} captures since {} ({}).",
            metric_label(&p.use_metric),
            ctx.time(since),
            fmt_duration(duration)
        );
        out.push(c);
    }
}
