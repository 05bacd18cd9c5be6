#![doc = include_str!("counter_jump.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::Point;
use crate::history::metrics::{KNOWN_METRICS, entity_label, metric_label};
use crate::rules::Rule;
use crate::rules::select::glob_match;
use crate::tomlread::Ctx;
use crate::units::{fmt_duration, fmt_number};

pub const SPEC: KindSpec = KindSpec {
    name: "counter-jump",
    doc: include_str!("counter_jump.md"),
    target: Target::Series,
    event: false,
    variables: &[
        "before",
        "after",
        "advance",
        "downstream",
        "downstream_advance",
        "span",
        "since",
    ],
    headline: &[],
    parse,
};

/// The advance is cumulative: the ledger keeps it over the finding's episode, adding what the
/// counter (`after`) advanced between sightings, so the count keeps its start (`since`) while
/// the window slides.
pub fn cumulative() -> crate::model::Cumulative {
    crate::model::Cumulative {
        total: "advance".into(),
        reading: "after".into(),
        from: "since".into(),
    }
}

#[derive(Debug, Clone)]
pub struct Params {
    pub min_advance: f64,
    pub downstream_entity: String,
    pub downstream_metric: String,
    pub max_downstream: f64,
    pub window_s: f64,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let min_advance = super::number(p, ctx, "min_advance");
    let min_advance = p.required(ctx, "min_advance", min_advance)?;
    let what = format!("{} downstream", p.fields.what);
    let mut d = p.fields.table(ctx, "downstream", &what)?;
    let entity = d.string(ctx, "entity", true);
    let metric = d.string(ctx, "metric", true);
    if let Some(m) = &metric
        && !KNOWN_METRICS.contains(&m.get_ref().as_str())
    {
        ctx.report(
            m.span(),
            format!("{what}: unknown metric `{}`", m.get_ref()),
        );
    }
    d.finish(ctx);
    Some(Kind::CounterJump(Params {
        min_advance,
        downstream_entity: entity?.into_inner(),
        downstream_metric: metric?.into_inner(),
        max_downstream: super::number(p, ctx, "max_downstream").unwrap_or(0.0),
        window_s: p.duration(ctx, "window").unwrap_or(6.0 * 3600.0),
    }))
}

/// How far a counter advanced between two times, summing over resets (a value that went down
/// started again from zero).
fn advance(points: &[Point], from: i64, to: i64) -> Option<f64> {
    let used: Vec<f64> = points
        .iter()
        .filter(|p| p.at >= from && p.at <= to)
        .filter_map(|p| p.value)
        .collect();
    if used.len() < 2 {
        return None;
    }
    Some(
        used.windows(2)
            .map(|w| if w[1] >= w[0] { w[1] - w[0] } else { w[1] })
            .sum(),
    )
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let metric = rule.select.metric.as_str();
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        let t1 = points[points.len() - 1].at;
        let from = t1 - p.window_s as i64;
        // The window starts where the counter started moving, so the span is the work itself.
        let moving: Vec<&Point> = points.iter().filter(|pt| pt.at >= from).collect();
        let Some(start) = moving
            .windows(2)
            .find(|w| matches!((w[0].value, w[1].value), (Some(a), Some(b)) if b != a))
            .map(|w| w[0].at)
        else {
            continue;
        };
        let Some(adv) = advance(points, start, t1) else {
            continue;
        };
        if adv < p.min_advance {
            continue;
        }
        let downstream = node
            .series_of(&p.downstream_metric)
            .into_iter()
            .find(|(e, _)| glob_match(&p.downstream_entity, e));
        let Some((down_entity, down_series)) = downstream else {
            out.push(Candidate::undecided(node, entity, metric, t1));
            continue;
        };
        let Some(down_adv) = advance(&down_series.points, start, t1) else {
            out.push(Candidate::undecided(node, entity, metric, t1));
            continue;
        };
        if down_adv > p.max_downstream {
            continue;
        }
        let before = points
            .iter()
            .find(|pt| pt.at == start)
            .and_then(|pt| pt.value)
            .unwrap_or(0.0);
        let after = points[points.len() - 1].value.unwrap_or(before);
        let span = (t1 - start) as f64;
        let mut c = Candidate::new(node, entity, metric, t1);
        c.value("before", Some(before), fmt_number(before, 0));
        c.value("after", Some(after), fmt_number(after, 0));
        c.value("advance", Some(adv), fmt_number(adv, 0));
        c.value("downstream", None, entity_label(down_entity));
        c.value(
            "downstream_advance",
            Some(down_adv),
            fmt_number(down_adv, 0),
        );
        c.value("span", Some(span), fmt_duration(span));
        c.value("since", Some(start as f64), ctx.time(start));
        c.evidence = format!(
            "{} {} went from {} to {} since {} (+{} in {}), while {} {} advanced by {} over the same time.",
            entity_label(entity),
            metric_label(metric),
            fmt_number(before, 0),
            fmt_number(after, 0),
            ctx.time(start),
            fmt_number(adv, 0),
            fmt_duration(span),
            entity_label(down_entity),
            metric_label(&p.downstream_metric),
            fmt_number(down_adv, 0)
        );
        out.push(c);
    }
}
