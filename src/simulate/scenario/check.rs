//! What serde cannot check in a scenario: node names given twice and the scenario's size,
//! refused with their lines before anything is expanded or allocated.

use chrono::{DateTime, Utc};

use super::{EventKind, NodeSpec, Scenario};
use crate::error::did_you_mean;
use crate::tomlread::{Ctx, Fields};
use crate::units;

/// How many short-lived containers one `[[node.ephemeral]]` may list at once.
pub const MAX_EPHEMERAL_LISTED: f64 = 1000.0;

/// What one scenario may ask for: beyond these a typo (`count = 1000000000`) would try to
/// allocate the machine away instead of being refused.
pub const MAX_NODES: u64 = 10_000;
pub const MAX_EXTRA_CONTAINERS: u64 = 10_000;
pub const MAX_ROUNDS: f64 = 1_000_000.0;
pub const MAX_SNAPSHOTS: f64 = 20_000_000.0;

/// Checks what serde cannot: node names given twice and the scenario's size. Every problem is
/// returned with its line; nothing is expanded or allocated before the sizes are known to fit.
pub fn check(text: &str, s: &Scenario) -> Vec<crate::error::Problem> {
    let mut ctx = Ctx::new(text);
    let Some(doc) = ctx.parse() else {
        return ctx.problems;
    };
    let mut top = Fields::new(doc.get_ref(), doc.span(), "the scenario");
    let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let epoch = DateTime::<Utc>::default();
    let when = Clock {
        tz: s.scenario.timezone.0,
        start: s.scenario.start.resolve(s.scenario.timezone.0, epoch),
    };
    for ((table, span), node) in top.tables(&mut ctx, "node").into_iter().zip(&s.node) {
        let mut f = Fields::new(table, span.clone(), "[[node]]");
        if let Some(name) = f.string(&mut ctx, "name", false)
            && !seen.insert(name.get_ref().clone())
        {
            ctx.report(
                name.span(),
                format!("node `{}` is defined twice", name.get_ref()),
            );
        }
        check_node(&mut ctx, &mut f, node, &when);
    }
    let mut nodes = s.node.len() as u64;
    for ((table, span), t) in top
        .tables(&mut ctx, "node_template")
        .into_iter()
        .zip(&s.node_template)
    {
        let mut f = Fields::new(table, span.clone(), "[[node_template]]");
        if let Some(mut n) = f.table(&mut ctx, "node", "[node_template.node]") {
            check_node(&mut ctx, &mut n, &t.node, &when);
        }
        let count = f.number(&mut ctx, "count");
        let at = count.as_ref().map(|c| c.span()).unwrap_or(span.clone());
        nodes += u64::from(t.count);
        if u64::from(t.count) > MAX_NODES {
            ctx.report(
                at.clone(),
                format!(
                    "[[node_template]]: `count` is {}; at most {MAX_NODES}",
                    t.count
                ),
            );
        } else {
            let width = t.count.to_string().len().max(3);
            for i in 1..=t.count {
                let name = format!("{}{:0width$}", t.prefix, i);
                if !seen.insert(name.clone()) {
                    ctx.report(
                        at.clone(),
                        format!("[[node_template]]: node `{name}` is defined twice"),
                    );
                    break;
                }
            }
        }
        if u64::from(t.extra_containers) > MAX_EXTRA_CONTAINERS {
            let at = f
                .value("extra_containers")
                .map(|v| v.span())
                .unwrap_or(span.clone());
            ctx.report(
                at,
                format!(
                    "[[node_template]]: `extra_containers` is {}; at most {MAX_EXTRA_CONTAINERS}",
                    t.extra_containers
                ),
            );
        }
    }
    if nodes > MAX_NODES {
        ctx.report(
            doc.span().start..doc.span().start,
            format!("the scenario has {nodes} nodes; at most {MAX_NODES}"),
        );
    }
    let h = &s.scenario;
    let header_span = top
        .table(&mut ctx, "scenario", "[scenario]")
        .and_then(|mut f| f.value("interval").map(|v| v.span()))
        .unwrap_or(doc.span().start..doc.span().start);
    if h.interval.0 >= 1.0 {
        let epoch = DateTime::<Utc>::default();
        let start = h.start.resolve(h.timezone.0, epoch);
        let end = h.end.resolve(h.timezone.0, start);
        let rounds = ((end - start).num_seconds().max(0) as f64 / h.interval.0).floor()
            + 1.0
            + h.extra_captures.len() as f64;
        if rounds > MAX_ROUNDS {
            ctx.report(
                header_span.clone(),
                format!(
                    "[scenario]: from start to end every {} is {rounds} captures; at most {MAX_ROUNDS}",
                    units::fmt_duration(h.interval.0)
                ),
            );
        } else if rounds * nodes as f64 > MAX_SNAPSHOTS {
            ctx.report(
                header_span,
                format!(
                    "[scenario]: {rounds} captures of {nodes} nodes is {} snapshots; at most {MAX_SNAPSHOTS}",
                    rounds * nodes as f64
                ),
            );
        }
    }
    ctx.problems
}

/// Times of the scenario in seconds, for comparing an event's `at` and `until`.
struct Clock {
    tz: chrono_tz::Tz,
    start: DateTime<Utc>,
}

impl Clock {
    fn at(&self, t: &units::TimeSpec) -> f64 {
        t.resolve(self.tz, self.start).timestamp() as f64
    }
}

/// The events and short-lived containers of one node: each event names what it needs, a
/// container the node has, and ends after it starts.
fn check_node(ctx: &mut Ctx, f: &mut Fields, node: &NodeSpec, clock: &Clock) {
    let names: Vec<&str> = node.container.iter().map(|c| c.name.as_str()).collect();
    let who = format!("node `{}`", node.name);
    for ((table, span), ev) in f.tables(ctx, "events").into_iter().zip(&node.events) {
        let mut e = Fields::new(
            table,
            span.clone(),
            format!("{who}: `{}` event", ev.kind.name()),
        );
        let kind = ev.kind;
        let at_span = |e: &mut Fields, key: &str| e.value(key).map(|v| v.span());
        if kind == EventKind::SourceDown && ev.source.is_none() {
            ctx.report(span.clone(), format!("{}: needs `source`", e.what));
        }
        let mut container = None;
        if kind.needs_container() {
            match (&ev.container, at_span(&mut e, "container")) {
                (None, _) => ctx.report(span.clone(), format!("{}: needs `container`", e.what)),
                (Some(name), Some(cs)) => match node.container.iter().find(|c| c.name == *name) {
                    Some(c) => container = Some((c, cs)),
                    None => ctx.report(
                        cs,
                        format!(
                            "{}: {who} has no container `{name}`{}",
                            e.what,
                            did_you_mean(name, &names)
                        ),
                    ),
                },
                (Some(_), None) => {}
            }
        }
        if let (Some(until), Some(us)) = (&ev.until, at_span(&mut e, "until"))
            && clock.at(until) < clock.at(&ev.at)
        {
            ctx.report(us, format!("{}: `until` is before `at`", e.what));
        }
        let only = |key: &str, kinds: &[EventKind], e: &mut Fields, ctx: &mut Ctx| {
            if !kinds.contains(&kind)
                && let Some(sp) = at_span(e, key)
            {
                let list: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                ctx.report(
                    sp,
                    format!(
                        "{}: `{key}` belongs to a {} event",
                        e.what,
                        list.join(" or ")
                    ),
                );
            }
        };
        only("every", &[EventKind::CrashLoop], &mut e, ctx);
        only(
            "code",
            &[EventKind::Exit, EventKind::CrashLoop],
            &mut e,
            ctx,
        );
        only("output", &[EventKind::Unhealthy], &mut e, ctx);
        only("unread", &[EventKind::LogCut], &mut e, ctx);
        match kind {
            EventKind::CrashLoop => match (ev.every, at_span(&mut e, "every")) {
                (None, _) => ctx.report(
                    span.clone(),
                    format!(
                        "{}: needs `every` (how often it is restarted, e.g. \"2m\")",
                        e.what
                    ),
                ),
                (Some(every), Some(sp)) if every.0 < 1.0 => ctx.report(
                    sp,
                    format!(
                        "{}: `every` is {}; at least 1s",
                        e.what,
                        units::fmt_duration(every.0)
                    ),
                ),
                _ => {}
            },
            EventKind::Unhealthy => {
                if let Some((c, cs)) = &container
                    && c.health.as_deref() != Some("healthy")
                {
                    ctx.report(
                        cs.clone(),
                        format!(
                            "{}: container `{}` has no health check (give it `health = \"healthy\"`)",
                            e.what, c.name
                        ),
                    );
                }
            }
            EventKind::LogCut => {
                if ev.unread.is_none() {
                    ctx.report(
                        span.clone(),
                        format!(
                            "{}: needs `unread` (how much of each window is not read)",
                            e.what
                        ),
                    );
                }
                if let Some((c, cs)) = &container
                    && c.log.is_empty()
                {
                    ctx.report(
                        cs.clone(),
                        format!("{}: container `{}` writes no `log` to cut", e.what, c.name),
                    );
                }
            }
            _ => {}
        }
    }
    check_containers(ctx, f, node, clock, &who);
}

/// A node's containers: their health-check interval, and its worker farms' short-lived ones.
fn check_containers(ctx: &mut Ctx, f: &mut Fields, node: &NodeSpec, clock: &Clock, who: &str) {
    for ((_, span), c) in f.tables(ctx, "container").into_iter().zip(&node.container) {
        if c.health_interval.is_some_and(|s| s.0 < 1.0) {
            ctx.report(
                span,
                format!(
                    "{who}: container `{}`: `health_interval` is at least 1s",
                    c.name
                ),
            );
        }
    }
    for ((table, span), e) in f.tables(ctx, "ephemeral").into_iter().zip(&node.ephemeral) {
        let mut x = Fields::new(
            table,
            span.clone(),
            format!("{who}: [[node.ephemeral]] `{}`", e.prefix),
        );
        let every_span = x.value("every").map(|v| v.span()).unwrap_or(span.clone());
        let listed = (e.lives.0 + e.keep.map(|k| k.0).unwrap_or(0.0)) / e.every.0.max(1e-9);
        if e.every.0 < 1.0 {
            ctx.report(
                every_span,
                format!(
                    "{}: `every` is {}; at least 1s",
                    x.what,
                    units::fmt_duration(e.every.0)
                ),
            );
        } else if listed > MAX_EPHEMERAL_LISTED {
            ctx.report(
                every_span,
                format!(
                    "{}: one every {} living {} and kept {} lists {} containers at once; at most {MAX_EPHEMERAL_LISTED}",
                    x.what,
                    units::fmt_duration(e.every.0),
                    units::fmt_duration(e.lives.0),
                    units::fmt_duration(e.keep.map(|k| k.0).unwrap_or(0.0)),
                    listed.ceil()
                ),
            );
        }
        if let (Some(from), Some(until)) = (&e.from, &e.until)
            && clock.at(until) < clock.at(from)
            && let Some(us) = x.value("until").map(|v| v.span())
        {
            ctx.report(us, format!("{}: `until` is before `from`", x.what));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tomlread::arbitrary::tomlish;
    use proptest::prelude::*;

    const HEADER: &str = "[scenario]\nfleet = \"f\"\nstart = \"2026-03-01 00:00\"\nend = \"2026-03-01 01:00\"\ninterval = \"15m\"\n";

    fn problems(text: &str) -> String {
        match crate::simulate::parse(std::path::Path::new("s.toml"), text) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn duplicate_nodes_are_refused_with_their_lines() {
        let text = format!(
            "{HEADER}[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"\n[[node_template]]\nprefix = \"a\"\ncount = 2\n[node_template.node]\nname = \"x\"\n[[node_template]]\nprefix = \"a\"\ncount = 1\n[node_template.node]\nname = \"y\"\n"
        );
        let err = problems(&text);
        assert!(
            err.contains("s.toml:9:8: node `a` is defined twice"),
            "{err}"
        );
        assert!(
            err.contains("s.toml:17:9: [[node_template]]: node `a001` is defined twice"),
            "{err}"
        );
    }

    #[test]
    fn a_huge_scenario_is_refused_before_anything_is_allocated() {
        let nodes = format!(
            "{HEADER}[[node_template]]\nprefix = \"n\"\ncount = 1000000000\nextra_containers = 1000000000\n[node_template.node]\nname = \"x\"\n"
        );
        let err = problems(&nodes);
        assert!(
            err.contains("s.toml:8:9: [[node_template]]: `count` is 1000000000"),
            "{err}"
        );
        assert!(err.contains("s.toml:9:20"), "{err}");
        let captures = HEADER
            .replace("2026-03-01 01:00", "2090-01-01 00:00")
            .replace("15m", "1s");
        let err = problems(&format!("{captures}[[node]]\nname = \"a\"\n"));
        assert!(
            err.contains("s.toml:5:12") && err.contains("captures"),
            "{err}"
        );
        let far = HEADER.replace("2026-03-01 01:00", "+99999999999999d");
        assert!(problems(&far).contains("out of range"));
    }

    #[test]
    fn events_are_checked_against_the_node_with_their_lines() {
        let text = format!(
            "{HEADER}[[node]]\nname = \"n\"\nevents = [\n  {{ kind = \"oom-kill\", container = \"apii\", at = \"+10m\" }},\n  {{ kind = \"exit\", container = \"api\", at = \"+10m\", until = \"+5m\" }},\n  {{ kind = \"crash-loop\", container = \"api\", at = \"+5m\", every = \"0s\" }},\n  {{ kind = \"crash-loop\", container = \"api\", at = \"+5m\" }},\n  {{ kind = \"unhealthy\", container = \"api\", at = \"+5m\" }},\n]\n[[node.container]]\nname = \"api\"\nimage = \"x\"\nmem = \"1MB\"\n[[node.ephemeral]]\nprefix = \"t-\"\nimage = \"w\"\nevery = \"1s\"\nlives = \"1h\"\n"
        );
        let err = problems(&text);
        for expected in [
            "s.toml:9:36: node `n`: `oom-kill` event: node `n` has no container `apii` (did you mean `api`?)",
            "s.toml:10:60: node `n`: `exit` event: `until` is before `at`",
            "s.toml:11:65: node `n`: `crash-loop` event: `every` is 0 s; at least 1s",
            "s.toml:12:3: node `n`: `crash-loop` event: needs `every`",
            "s.toml:13:37: node `n`: `unhealthy` event: container `api` has no health check",
            "s.toml:22:9: node `n`: [[node.ephemeral]] `t-`: one every 1 s living 60 min",
        ] {
            assert!(err.contains(expected), "missing {expected}:\n{err}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn loading_any_scenario_text_returns(text in tomlish()) {
            let _ = crate::simulate::parse(std::path::Path::new("s.toml"), &text);
        }
    }
}
