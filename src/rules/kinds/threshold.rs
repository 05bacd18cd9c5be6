#![doc = include_str!("threshold.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, fresh_series};
use crate::history::metrics::{KNOWN_METRICS, metric_label, metric_unit};
use crate::rules::{Rule, phrase};
use crate::tomlread::Ctx;
use crate::units::{fmt_number, fmt_value};

pub const SPEC: KindSpec = KindSpec {
    name: "threshold",
    doc: include_str!("threshold.md"),
    target: Target::Series,
    event: false,
    variables: &[
        "value",
        "limit",
        "captures",
        "since",
        "reading",
        "streak",
        "share",
        "of_value",
        "times",
        "last",
        "count",
    ],
    // Only `within` sets `count`: a count that grows is worth saying again.
    headline: &["count"],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub above: Option<f64>,
    pub below: Option<f64>,
    /// `at_least`/`at_most`: the limit itself breaches too.
    pub inclusive: bool,
    /// The limits are percentages of this metric's newest reading on the same entity.
    pub of: Option<String>,
    pub for_captures: usize,
    /// The value is what the readings of this long (seconds) add up to, over the current
    /// episode: events counted per capture, which a single reading would forget.
    pub within: Option<f64>,
    /// A 0/1 metric of the same entity whose newest reading above 0 breaches too (at least 1).
    pub or_flag: Option<String>,
}

/// A limit: a quantity in the metric's unit, or with `of` a percentage ("80%" or 80).
fn limit(p: &mut ParamReader, ctx: &mut Ctx, key: &str, pct: bool) -> Option<f64> {
    if !pct {
        return p.quantity(ctx, key);
    }
    let v = p.fields.value(key)?;
    let text = match v.get_ref() {
        toml::de::DeValue::String(s) => s.to_string(),
        toml::de::DeValue::Integer(i) => i.as_str().to_string(),
        toml::de::DeValue::Float(f) => f.as_str().to_string(),
        _ => String::new(),
    };
    match text.trim().trim_end_matches('%').trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Some(x),
        _ => {
            let msg = format!(
                "{}: `{key}` must be a percentage of `of` (\"80%\"), not `{text}`",
                p.fields.what
            );
            ctx.report(v.span(), msg);
            None
        }
    }
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let of = p.fields.string(ctx, "of", false);
    if let Some(m) = &of
        && !KNOWN_METRICS.contains(&m.get_ref().as_str())
    {
        ctx.report(
            m.span(),
            format!("{}: `of`: unknown metric `{}`", p.fields.what, m.get_ref()),
        );
    }
    let pct = of.is_some();
    let inclusive = p.fields.has("at_least") || p.fields.has("at_most");
    if inclusive && (p.fields.has("above") || p.fields.has("below")) {
        ctx.report(
            p.fields.span.clone(),
            format!(
                "{}: use `above`/`below` (the limit itself is fine) or `at_least`/`at_most` (the limit itself breaches), not both",
                p.fields.what
            ),
        );
    }
    let above = limit(p, ctx, "above", pct).or(limit(p, ctx, "at_least", pct));
    let below = limit(p, ctx, "below", pct).or(limit(p, ctx, "at_most", pct));
    let for_captures = p.fields.count(ctx, "for_captures").unwrap_or(1).max(1);
    let within = p.duration(ctx, "within").filter(|w| *w > 0.0);
    if within.is_some() && (p.fields.has("for_captures") || pct) {
        ctx.report(
            p.fields.span.clone(),
            format!(
                "{}: `within` adds readings up: it does not mix with `for_captures` or `of`",
                p.fields.what
            ),
        );
    }
    let or_flag = p.fields.string(ctx, "or_flag", false);
    if let Some(m) = &or_flag
        && !KNOWN_METRICS.contains(&m.get_ref().as_str())
    {
        ctx.report(
            m.span(),
            format!(
                "{}: `or_flag`: unknown metric `{}`",
                p.fields.what,
                m.get_ref()
            ),
        );
    }
    let given = ["above", "below", "at_least", "at_most"]
        .iter()
        .any(|k| p.fields.has(k));
    if above.is_none() && below.is_none() && !given {
        ctx.report(
            p.fields.span.clone(),
            format!(
                "{} needs `above`, `below`, `at_least` or `at_most`",
                p.fields.what
            ),
        );
        return None;
    }
    Some(Kind::Threshold(Params {
        above,
        below,
        inclusive,
        of: of.map(|m| m.into_inner()),
        for_captures,
        within,
        or_flag: or_flag.map(|m| m.into_inner()),
    }))
}

/// "once", "twice", "3 times".
fn times(n: f64) -> String {
    if n == 1.0 {
        "once".into()
    } else if n == 2.0 {
        "twice".into()
    } else {
        format!("{} times", fmt_number(n, 0))
    }
}

/// `within`: the readings of the current episode added up. An episode is a run of non-zero
/// readings each no further than `within` from the next, the newest no further from now; so it
/// ends, and resolves, once a whole `within` passes without one, and a count that grows stays
/// the same finding.
fn evaluate_within(
    p: &Params,
    within: f64,
    rule: &Rule,
    ctx: &EvalContext,
    out: &mut Vec<Candidate>,
) {
    let metric = rule.select.metric.as_str();
    let mut subjects = fresh_series(rule, ctx.window);
    // An archive without the counts (written by an older patrol) still has the flag: a
    // container flagged there is judged on the flag alone.
    let mut by_flag = rule.select.clone();
    if let Some(flag) = &p.or_flag {
        by_flag.metric = flag.clone();
        for (node, entity, series) in by_flag.series(ctx.window) {
            if node.series(entity, metric).is_none()
                && let Some(points) = super::fresh(node, series)
            {
                subjects.push((node, entity, points));
            }
        }
    }
    for (node, entity, points) in subjects {
        let Some(now) = points.last().map(|pt| pt.at) else {
            continue;
        };
        let counted = node.series(entity, metric).is_some();
        let (mut count, mut edge) = (0.0, now);
        let (mut first, mut newest) = (None, None);
        for pt in points.iter().rev().filter(|_| counted) {
            let Some(v) = pt.value.filter(|v| *v > 0.0) else {
                continue;
            };
            if (edge - pt.at) as f64 > within {
                break;
            }
            count += v;
            edge = pt.at;
            first = Some(pt.at);
            newest.get_or_insert(pt.at);
        }
        // A flag still set (a container that stayed down) holds the finding past the window.
        let flag = p.or_flag.as_deref().and_then(|f| node.series(entity, f));
        let flagged_since = flag.and_then(|s| {
            let last = s.last().filter(|pt| pt.at == now && pt.value.is_some_and(|v| v > 0.0))?;
            let run = s
                .points
                .iter()
                .rev()
                .take_while(|pt| pt.value.is_some_and(|v| v > 0.0))
                .last()
                .unwrap_or(last);
            Some(run.at)
        });
        if count == 0.0
            && let Some(at) = flagged_since
        {
            count = 1.0;
            first = Some(at);
            newest = Some(at);
        }
        let breach = match (p.above, p.below) {
            (Some(a), _) => count > a || (p.inclusive && count == a),
            (_, Some(b)) => count < b || (p.inclusive && count == b),
            _ => false,
        };
        let (true, Some(first), Some(newest)) = (breach, first, newest) else {
            continue;
        };
        let mut c = Candidate::new(node, entity, metric, now);
        let shown = fmt_number(count, 0);
        c.value("value", Some(count), shown.clone());
        c.value("count", Some(count), shown);
        let limit = p.above.or(p.below).unwrap_or_default();
        c.value("limit", Some(limit), fmt_number(limit, 0));
        c.value("times", None, times(count));
        let (since, last) = (ctx.time(first), ctx.time(newest));
        c.value("since", None, since.clone());
        c.value("last", None, last.clone());
        c.value("captures", None, String::new());
        for name in ["reading", "streak", "share", "of_value"] {
            c.value(name, None, String::new());
        }
        let subject = crate::history::metrics::entity_label(entity);
        let what = match metric {
            "oom_kills" => format!(
                "{subject} was killed by the kernel's OOM killer {}",
                times(count)
            ),
            "exits" => format!("{subject} exited {}", times(count)),
            _ => format!(
                "{subject}: {} {}",
                crate::history::metrics::metric_label(metric),
                fmt_number(count, 0)
            ),
        };
        let mut evidence = if first == newest {
            format!("{what}, counted by the capture of {last}")
        } else {
            format!("{what} since {since}, the last counted by the capture of {last}")
        };
        match (flagged_since.is_some(), p.or_flag.as_deref()) {
            (true, Some("oom_killed")) => {
                evidence.push_str("; `docker inspect` still shows its OOM flag")
            }
            (true, Some(flag)) => {
                evidence.push_str(&format!("; {}", phrase::reading(entity, flag, 1.0)))
            }
            _ => {}
        }
        evidence.push_str(&format!(
            ". It resolves once {} pass without one.",
            crate::units::fmt_duration(within)
        ));
        c.evidence = evidence;
        out.push(c);
    }
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    if let Some(within) = p.within {
        evaluate_within(p, within, rule, ctx, out);
        return;
    }
    let metric = rule.select.metric.as_str();
    let (dim, suffix) = metric_unit(metric);
    for (node, entity, points) in fresh_series(rule, ctx.window) {
        // With `of`, the limits are shares of the entity's own reading (its max_connections).
        let reference = match &p.of {
            None => None,
            Some(of) => {
                let Some(r) = node
                    .series(entity, of)
                    .and_then(|s| s.last())
                    .and_then(|pt| pt.value)
                    .filter(|r| *r > 0.0)
                else {
                    continue;
                };
                Some(r)
            }
        };
        let scale = |pct: f64| reference.map_or(pct, |r| r * pct / 100.0);
        let (above, below) = (p.above.map(scale), p.below.map(scale));
        if points.len() < p.for_captures {
            // Too few readings (a gap, a new entity) to decide: keep what is open.
            out.push(Candidate::undecided_at_end(node, entity, metric, points));
            continue;
        }
        let recent = &points[points.len() - p.for_captures..];
        let breach = |v: f64| -> Option<(f64, &'static str)> {
            match (above, below) {
                (Some(a), _) if v > a || (p.inclusive && v == a) => Some((a, "above")),
                (_, Some(b)) if v < b || (p.inclusive && v == b) => Some((b, "below")),
                _ => None,
            }
        };
        let all_breach = recent
            .iter()
            .all(|pt| pt.value.is_some_and(|v| breach(v).is_some()));
        let Some(last) = recent.last() else { continue };
        if !all_breach && last.value.is_some_and(|v| breach(v).is_some()) {
            // Past the threshold now, not yet for `for` captures: a breach starting (again)
            // is not a sign that it cleared.
            out.push(Candidate::undecided(node, entity, metric, last.at));
            continue;
        }
        let (Some(value), true) = (last.value, all_breach) else {
            continue;
        };
        let Some((limit, side)) = breach(value) else {
            continue;
        };
        let mut c = Candidate::new(node, entity, metric, last.at);
        let value_s = fmt_value(value, dim, suffix);
        let limit_s = fmt_value(limit, dim, suffix);
        c.value("value", Some(value), value_s.clone());
        c.value("limit", Some(limit), limit_s.clone());
        c.value(
            "captures",
            Some(recent.len() as f64),
            recent.len().to_string(),
        );
        let since = ctx.time(recent[0].at);
        c.value("since", None, since.clone());
        let reading = phrase::reading(entity, metric, value);
        c.value("reading", None, reading.clone());
        // "for 2 captures in a row since 12:00": only a rule that waits for a streak has one.
        let streak = if p.for_captures > 1 {
            format!("for {} captures in a row since {since}", recent.len())
        } else {
            String::new()
        };
        c.value("streak", None, streak.clone());
        let word = match (side, p.inclusive) {
            ("above", true) => "at or above",
            ("below", true) => "at or below",
            (s, _) => s,
        };
        let mut evidence = phrase::sentence(&reading);
        match (&p.of, reference) {
            (Some(of), Some(r)) => {
                let share = value / r * 100.0;
                let pct = limit / r * 100.0;
                let r_s = fmt_value(r, dim, suffix);
                c.value("share", Some(share), format!("{}%", fmt_number(share, 0)));
                c.value("of_value", Some(r), r_s.clone());
                evidence.push_str(&format!(
                    ", {}% of its {} ({r_s}): {word} the limit of {}% ({limit_s})",
                    fmt_number(share, 0),
                    metric_label(of),
                    fmt_number(pct, 1)
                ));
            }
            _ => {
                c.value("share", None, String::new());
                c.value("of_value", None, String::new());
                if !phrase::says_itself(metric, side, limit) {
                    evidence.push_str(&format!(", {word} the limit of {limit_s}"));
                }
            }
        }
        if !streak.is_empty() {
            evidence.push_str(&format!(", {streak}"));
        }
        evidence.push('.');
        c.evidence = evidence;
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use crate::history::Window;
    use crate::model::{Container, Snapshot};
    use crate::rules::Library;

    /// `api` is OOM-killed between the first and the second of three captures and left down:
    /// the library's rule over them, with the engine's counts or (an archive written by an
    /// older patrol) without: the titles it gives.
    fn titles(counts: bool) -> Vec<String> {
        let mut window = Window::new(chrono::Duration::hours(24));
        for (i, (flag, kills)) in [(false, 0), (true, 1), (true, 0)].into_iter().enumerate() {
            let at = chrono::Utc
                .with_ymd_and_hms(2026, 2, 18, 0, 15 * i as u32, 0)
                .single()
                .unwrap_or_default();
            let mut snap = Snapshot::new("f", "n1", at);
            let counted = if counts {
                format!(r#","oom_kills":{kills},"exits":{kills}"#)
            } else {
                String::new()
            };
            let state = if flag { "exited" } else { "running" };
            let json = format!(
                r#"{{"name":"api","image":"x","state":"{state}","oom_killed":{flag}{counted}}}"#
            );
            let c: Container = match serde_json::from_str(&json) {
                Ok(c) => c,
                Err(e) => panic!("{json}: {e}"),
            };
            snap.containers = Some(vec![c]);
            window.push(snap);
        }
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/host.toml"))
            .unwrap_or_default();
        // The library's own rule, alone (the file's other rules need its states).
        let start = text.find("[[rule]]\nid = \"container-oom-killed\"").unwrap_or(0);
        let end = text[start + 1..]
            .find("[[rule]]")
            .map_or(text.len(), |e| start + 1 + e);
        let rule = text[start..end].to_string();
        let lib = match Library::from_sources(&[("host.toml".into(), rule)]) {
            Ok(lib) => lib,
            Err(e) => panic!("library refused: {e}"),
        };
        lib.evaluate(&window, chrono_tz::UTC)
            .findings
            .into_iter()
            .filter(|f| f.rule_id == "container-oom-killed")
            .map(|f| f.title)
            .collect()
    }

    #[test]
    fn a_container_left_down_with_the_oom_flag_fires_with_or_without_the_counts() {
        let with = titles(true);
        assert_eq!(with.len(), 1, "{with:?}");
        assert!(
            with[0].contains("`api` was killed by the kernel's OOM killer once"),
            "{with:?}"
        );
        // An older archive has the flag only: the flag alone still fires.
        assert_eq!(titles(false), with);
    }
}
