#![doc = include_str!("log_pattern_frequency.md")]

use std::collections::BTreeMap;

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, and_list, string_list};
use crate::history::{NodeHistory, Point, Series};
use crate::history::metrics::entity_label;
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::rules::select::glob_match;
use crate::tomlread::Ctx;
use crate::units::{fmt_duration, fmt_duration_shown, fmt_number};

pub const SPEC: KindSpec = KindSpec {
    name: "log-pattern-frequency",
    doc: include_str!("log_pattern_frequency.md"),
    target: Target::Node,
    event: false,
    variables: &[
        "count", "per_min", "per_s", "interval", "captures", "level", "template", "source",
        "also_on", "distinct", "values", "field", "window",
    ],
    headline: &["per_min", "per_s", "distinct"],
    parse,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Lines of a template since the previous capture.
    Rate,
    /// Lines per second at a level, all templates together.
    Volume,
    /// Present in every one of the last N captures.
    Persistent,
    /// Mean interval between lines over a window, and the nodes logging it in step.
    Interval,
    /// Distinct values of an extracted field (every camera, every queue).
    Coverage,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub mode: Mode,
    /// Globs on the template text.
    pub matches: Vec<String>,
    pub levels: Vec<String>,
    pub min_count: f64,
    pub min_per_s: f64,
    pub captures: usize,
    pub window_s: f64,
    pub field: Option<String>,
    pub min_distinct: usize,
    /// `interval`: lines closer than this are a loop, not a schedule (another mode's finding).
    pub min_interval_s: f64,
    /// `interval`: every capture of the window must bring the line, in counts near their mean,
    /// so "every ~N" describes the whole window rather than a burst.
    pub steady: bool,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let mode = match p
        .choice(
            ctx,
            "mode",
            &["rate", "volume", "persistent", "interval", "coverage"],
            "rate",
        )
        .as_str()
    {
        "volume" => Mode::Volume,
        "persistent" => Mode::Persistent,
        "interval" => Mode::Interval,
        "coverage" => Mode::Coverage,
        _ => Mode::Rate,
    };
    let field = p.fields.string(ctx, "field", false).map(|f| f.into_inner());
    if mode == Mode::Coverage && field.is_none() {
        ctx.report(
            p.fields.span.clone(),
            format!("{}: mode `coverage` needs `field`", p.fields.what),
        );
        return None;
    }
    Some(Kind::LogPatternFrequency(Params {
        mode,
        matches: string_list(p, ctx, "match"),
        levels: string_list(p, ctx, "levels"),
        min_count: super::number(p, ctx, "min_count").unwrap_or(1.0),
        min_per_s: super::number(p, ctx, "min_per_s").unwrap_or(0.0),
        captures: p.fields.count(ctx, "captures").unwrap_or(3).max(1),
        window_s: p.duration(ctx, "window").unwrap_or(3600.0),
        field,
        min_distinct: p.fields.count(ctx, "min_distinct").unwrap_or(2).max(1),
        min_interval_s: p.duration(ctx, "min_interval").unwrap_or(0.0),
        steady: p.fields.boolean(ctx, "steady").unwrap_or(false),
    }))
}

/// A template entity split into (source, level, template).
fn split(entity: &str) -> Option<(&str, &str, &str)> {
    let rest = entity.strip_prefix("logtpl:")?;
    let mut parts = rest.splitn(3, '|');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

impl Params {
    fn wants(&self, rule: &Rule, source: &str, level: &str, template: &str) -> bool {
        let stream = format!("log:{source}");
        let tpl = format!("logtpl:{source}|{level}|{template}");
        // `exclude` may name templates (another rule says those better), not only streams.
        let excluded = rule.select.exclude.iter().any(|g| glob_match(g, &tpl));
        !excluded
            && (rule.select.entity_matches(&stream) || rule.select.entity_matches(&tpl))
            && (self.levels.is_empty() || self.levels.iter().any(|l| l.eq_ignore_ascii_case(level)))
            && (self.matches.is_empty() || self.matches.iter().any(|g| glob_match(g, template)))
    }
}

/// Whether the stream of a template was read at the node's newest capture.
fn stream_fresh(node: &NodeHistory, source: &str) -> Option<(i64, i64)> {
    let latest = node.latest_at()?;
    let lines = node.series(&format!("log:{source}"), "lines_total")?;
    let n = lines.points.len();
    if lines.points.last()?.at != latest {
        return None;
    }
    let previous = if n >= 2 {
        lines.points[n - 2].at
    } else {
        latest
    };
    Some((previous, latest))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    if p.mode == Mode::Volume {
        volume(p, rule, ctx, out);
        return;
    }
    if p.mode == Mode::Coverage {
        coverage(p, rule, ctx, out);
        return;
    }
    let nodes: Vec<&NodeHistory> = ctx
        .window
        .nodes()
        .filter(|n| rule.select.node_matches(n))
        .collect();
    // template entity -> nodes where it qualifies, with their interval, for `also_on`.
    let mut qualifying: BTreeMap<String, Vec<Cadence>> = BTreeMap::new();
    let mut found: Vec<Candidate> = Vec::new();
    for node in &nodes {
        let Some(latest) = node.latest_at() else {
            continue;
        };
        if !super::covers(node, p.window_s) {
            // Lines of the window before a capture gap were never read: a pattern raised then
            // may have no series left to say it is gone.
            found.push(Candidate::undecided_node(node, latest));
        }
        for (entity, series) in node.series_of("count") {
            let Some((source, level, template)) = split(entity) else {
                continue;
            };
            if !p.wants(rule, source, level, template) {
                continue;
            }
            let in_window: Vec<&Point> = series
                .since(latest - p.window_s as i64)
                .iter()
                .filter(|pt| pt.value.is_some_and(|v| v > 0.0))
                .collect();
            let Some((previous, _)) = stream_fresh(node, source) else {
                if !in_window.is_empty() {
                    found.push(Candidate::undecided(node, entity, "pattern", latest));
                }
                continue;
            };
            let now = series
                .last()
                .filter(|pt| pt.at == latest)
                .and_then(|pt| pt.value)
                .unwrap_or(0.0);
            let mut c = Candidate::new(node, entity, "pattern", latest);
            c.value("source", None, code_span(source));
            c.value("level", None, level.to_string());
            c.value("template", None, code_span(template));
            c.value("window", Some(p.window_s), fmt_duration(p.window_s));
            let seen = Seen {
                node,
                entity,
                source,
                series,
                latest,
                in_window: &in_window,
            };
            let fires = match p.mode {
                Mode::Rate => rate(p, &seen, previous, now, &mut c),
                Mode::Persistent => persistent(p, ctx, &seen, &mut c),
                Mode::Interval => match interval(p, &seen, &mut c) {
                    Some(every) => {
                        qualifying
                            .entry(entity.to_string())
                            .or_default()
                            .push(Cadence {
                                node: node.node.clone(),
                                every_s: every,
                                last_line: last_line(node, source, level, template),
                            });
                        true
                    }
                    None => false,
                },
                Mode::Volume | Mode::Coverage => false,
            };
            if fires {
                found.push(c);
            } else if !in_window.is_empty() || !super::covers(node, p.window_s) {
                // Seen within the window that detected it, or the window reaches back past a
                // capture gap where it may have been: not yet shown gone.
                found.push(Candidate::undecided(node, entity, "pattern", latest));
            }
        }
    }
    for c in found {
        out.push(with_also_on(c, &qualifying));
    }
}

/// One template of one node, read at its newest capture.
struct Seen<'a> {
    node: &'a NodeHistory,
    entity: &'a str,
    source: &'a str,
    /// Its count per capture.
    series: &'a Series,
    latest: i64,
    /// The captures of the window that saw it.
    in_window: &'a [&'a Point],
}

/// `rate`: how often it was logged since the previous capture; `now` is the newest count.
fn rate(p: &Params, seen: &Seen, previous: i64, now: f64, c: &mut Candidate) -> bool {
    // Per minute of the interval as printed, so count / interval adds up.
    let (gap_s, gap) = fmt_duration_shown((seen.latest - previous).max(1) as f64);
    let per_min = now / gap * 60.0;
    c.value("count", Some(now), fmt_number(now, 0));
    c.value("per_min", Some(per_min), format!("{}/min", fmt_number(per_min, 1)));
    c.evidence = format!(
        "{} was logged {} times in the {gap_s} since the previous capture ({}/min).",
        entity_label(seen.entity),
        fmt_number(now, 0),
        fmt_number(per_min, 1)
    );
    now >= p.min_count
}

/// `persistent`: logged in each of the stream's last `captures` reads.
fn persistent(p: &Params, ctx: &EvalContext, seen: &Seen, c: &mut Candidate) -> bool {
    let lines = seen
        .node
        .series(&format!("log:{}", seen.source), "lines_total");
    let times: Vec<i64> = lines
        .map(|s| {
            s.points
                .iter()
                .rev()
                .take(p.captures)
                .map(|pt| pt.at)
                .collect()
        })
        .unwrap_or_default();
    let series = seen.series;
    let present = times.len() == p.captures
        && times.iter().all(|t| {
            series
                .points
                .binary_search_by_key(t, |pt| pt.at)
                .ok()
                .and_then(|i| series.points[i].value)
                .is_some_and(|v| v > 0.0)
        });
    let total: f64 = seen.in_window.iter().filter_map(|pt| pt.value).sum();
    let first = seen
        .in_window
        .first()
        .map(|pt| pt.at)
        .unwrap_or(seen.latest);
    c.value("count", Some(total), fmt_number(total, 0));
    c.value("captures", Some(p.captures as f64), p.captures.to_string());
    c.evidence = format!(
        "{} has been logged in each of the last {} captures ({} lines since {}), with no line showing it cleared.",
        entity_label(seen.entity),
        p.captures,
        fmt_number(total, 0),
        ctx.time(first)
    );
    present
}

/// `interval`: logged at least `min_count` times over the window; says how often ("~5m") when
/// it fires, and returns the interval in seconds.
fn interval(p: &Params, seen: &Seen, c: &mut Candidate) -> Option<f64> {
    // The stream's captures in the window, not the template's: a capture that brought none of
    // its lines has no point in its series but counts as a zero. The first capture's count
    // covers time before the window: leave it out.
    let stream = seen
        .node
        .series(&format!("log:{}", seen.source), "lines_total");
    let times: Vec<i64> = stream
        .map(|s| {
            s.since(seen.latest - p.window_s as i64)
                .iter()
                .map(|pt| pt.at)
                .collect()
        })
        .unwrap_or_default();
    let at = |t: i64| {
        seen.series
            .points
            .binary_search_by_key(&t, |pt| pt.at)
            .ok()
            .and_then(|i| seen.series.points[i].value)
            .unwrap_or(0.0)
    };
    // Each capture's count with the time it covers since the capture before it.
    let counts: Vec<(f64, f64)> = times
        .windows(2)
        .map(|w| (at(w[1]), (w[1] - w[0]) as f64))
        .collect();
    let counted: f64 = counts.iter().map(|(n, _)| n).sum();
    let span = times
        .first()
        .map(|t| (seen.latest - t) as f64)
        .unwrap_or(0.0);
    let often_enough = counted >= p.min_count && span > 0.0;
    if !often_enough {
        return None;
    }
    // One capture's lines are a rate; an interval needs two captures that brought the line.
    if counts.iter().filter(|(n, _)| *n > 0.0).count() < 2 {
        return None;
    }
    let interval = span / counted;
    if interval < p.min_interval_s || (p.steady && !is_steady(&counts, interval)) {
        return None;
    }
    // A line due at least once per capture that the newest capture did not bring has stopped
    // (or paused): an interval is said of a schedule still running, not of the last hour's.
    // The interval is judged from the captures before the newest, which its absence would
    // stretch.
    if let Some((&(newest, gap), before)) = counts.split_last()
        && newest == 0.0
    {
        let lines: f64 = before.iter().map(|(n, _)| n).sum();
        let time: f64 = before.iter().map(|(_, g)| g).sum();
        if lines > 0.0 && time / lines <= gap {
            return None;
        }
    }
    c.value("count", Some(counted), fmt_number(counted, 0));
    c.value(
        "interval",
        Some(interval),
        format!("~{}", fmt_duration(interval)),
    );
    c.value(
        "per_min",
        Some(60.0 / interval),
        format!("{}/min", fmt_number(60.0 / interval, 2)),
    );
    c.evidence = format!(
        "{} was logged {} times in the last {}: one every ~{}.",
        entity_label(seen.entity),
        fmt_number(counted, 0),
        fmt_duration(span),
        fmt_duration(interval)
    );
    Some(interval)
}

/// Each capture brought about as many lines as the interval predicts for the time it covers
/// (within half of that, or one line): a schedule (a probe, a cron job, a retry timer), not a
/// burst that happened to add up, nor a line that stopped halfway through the window.
fn is_steady(counts: &[(f64, f64)], interval: f64) -> bool {
    counts.len() >= 2
        && counts.iter().all(|&(n, gap)| {
            let expected = gap / interval;
            (n - expected).abs() <= (expected * 0.5).max(1.0)
        })
}

/// One node logging a template at an interval.
struct Cadence {
    node: String,
    every_s: f64,
    /// When its newest line was stamped, from the newest capture.
    last_line: Option<i64>,
}

/// The newest line of a template on a node, as the log stamped it: from the newest capture
/// that brought one (a capture a minute after another may bring none).
fn last_line(node: &NodeHistory, source: &str, level: &str, template: &str) -> Option<i64> {
    node.recent().rev().find_map(|snap| {
        let stream = snap.logs.iter().find(|s| s.source == source)?;
        stream
            .templates
            .iter()
            .find(|t| t.template == template && t.level.as_deref().unwrap_or("-") == level)?
            .last_ts
            .map(|t| t.timestamp())
    })
}

/// Two nodes log a line in step when their intervals agree within a fifth and their newest
/// lines fall within a tenth of the interval (at least 30 s) of each other, modulo the interval:
/// one schedule, one client or one clock behind both.
fn in_step(a: &Cadence, b: &Cadence) -> bool {
    let (ia, ib) = (a.every_s, b.every_s);
    if ia <= 0.0 || ib <= 0.0 || (ia - ib).abs() > 0.2 * ia.max(ib) {
        return false;
    }
    let (Some(ta), Some(tb)) = (a.last_line, b.last_line) else {
        return false;
    };
    let every = (ia + ib) / 2.0;
    let apart = ((ta - tb).abs() as f64) % every;
    apart.min(every - apart) <= (every * 0.1).max(30.0)
}

/// Names the other nodes where the same template fires at an interval, so one cause across
/// the fleet reads as one, and says whether they log it in step (the same interval, lines
/// stamped together) or only alike.
fn with_also_on(mut c: Candidate, qualifying: &BTreeMap<String, Vec<Cadence>>) -> Candidate {
    if c.unchecked {
        return c;
    }
    let list = qualifying
        .get(&c.entity)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(own) = list.iter().find(|q| c.nodes.contains(&q.node)) else {
        c.value("also_on", None, String::new());
        return c;
    };
    let mut together: Vec<String> = Vec::new();
    let mut apart: Vec<String> = Vec::new();
    for other in list.iter().filter(|q| !c.nodes.contains(&q.node)) {
        let named = format!("{} (~{})", other.node, fmt_duration(other.every_s));
        if in_step(own, other) {
            together.push(named);
        } else {
            apart.push(named);
        }
    }
    if !together.is_empty() {
        c.evidence.push_str(&format!(
            " Logged in step on {} too (same interval, newest lines stamped together: one schedule or one client behind them).",
            and_list(&together)
        ));
    }
    if !apart.is_empty() {
        c.evidence.push_str(&format!(
            " It is also logged on {}, not in step.",
            and_list(&apart)
        ));
    }
    let others: Vec<String> = together.into_iter().chain(apart).collect();
    c.value("also_on", None, and_list(&others));
    c
}

/// Lines per second at each selected level, all templates of a stream together.
fn volume(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        let Some(prev) = node.previous() else {
            // No interval to divide by: what was open stays open.
            for stream in &snap.logs {
                for t in &stream.templates {
                    let level = t.level.clone().unwrap_or_else(|| "-".into());
                    let entity = format!("log:{}", stream.source);
                    out.push(Candidate::undecided(
                        node,
                        &entity,
                        &format!("level:{level}"),
                        snap.captured_at.timestamp(),
                    ));
                }
            }
            continue;
        };
        let gap = (snap.captured_at - prev.captured_at).num_seconds().max(1) as f64;
        for stream in &snap.logs {
            let mut by_level: BTreeMap<String, (u64, Vec<(u64, String)>)> = BTreeMap::new();
            for t in &stream.templates {
                let level = t.level.clone().unwrap_or_else(|| "-".into());
                if !p.wants(rule, &stream.source, &level, &t.template) {
                    continue;
                }
                let e = by_level.entry(level).or_default();
                e.0 += t.count;
                e.1.push((t.count, t.template.clone()));
            }
            for (level, (count, mut templates)) in by_level {
                let (gap_s, shown_gap) = fmt_duration_shown(gap);
                let per_s = count as f64 / shown_gap;
                let entity = format!("log:{}", stream.source);
                if per_s < p.min_per_s {
                    continue;
                }
                templates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                let top: Vec<String> = templates
                    .iter()
                    .take(3)
                    .map(|(_, t)| code_span(t))
                    .collect();
                let mut c = Candidate::new(
                    node,
                    &entity,
                    &format!("level:{level}"),
                    snap.captured_at.timestamp(),
                );
                c.value("count", Some(count as f64), count.to_string());
                c.value("per_s", Some(per_s), fmt_number(per_s, 0));
                c.value("level", None, level.clone());
                c.value("source", None, code_span(&stream.source));
                c.value("template", None, and_list(&top));
                c.evidence = format!(
                    "Log {} wrote {count} {level} lines in the {gap_s} since the previous capture, ~{} lines/s; the most frequent are {}.",
                    code_span(&stream.source),
                    fmt_number(per_s, 0),
                    and_list(&top)
                );
                out.push(c);
            }
        }
    }
}

/// Distinct values of an extracted field in one template: the whole set of cameras affected.
fn coverage(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let Some(field) = &p.field else { return };
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        for stream in &snap.logs {
            for t in &stream.templates {
                let level = t.level.clone().unwrap_or_else(|| "-".into());
                if !p.wants(rule, &stream.source, &level, &t.template) {
                    continue;
                }
                let Some(values) = t.fields.get(field) else {
                    continue;
                };
                if values.len() < p.min_distinct {
                    continue;
                }
                let names: Vec<String> = values.keys().map(|v| code_span(v)).collect();
                let entity = format!("logtpl:{}|{}|{}", stream.source, level, t.template);
                let mut c = Candidate::new(
                    node,
                    &entity,
                    &format!("field:{field}"),
                    snap.captured_at.timestamp(),
                );
                c.value(
                    "distinct",
                    Some(values.len() as f64),
                    values.len().to_string(),
                );
                c.value("values", None, and_list(&names));
                c.value("field", None, field.clone());
                c.value("count", Some(t.count as f64), t.count.to_string());
                c.value("template", None, code_span(&t.template));
                c.value("level", None, level.clone());
                c.value("source", None, code_span(&stream.source));
                c.evidence = format!(
                    "{} was logged {} times since the previous capture, for {} distinct `{field}` values: {}.",
                    entity_label(&entity),
                    t.count,
                    values.len(),
                    and_list(&names)
                );
                out.push(c);
            }
        }
    }
}
