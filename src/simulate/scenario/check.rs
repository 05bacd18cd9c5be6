//! What serde cannot check in a scenario: node names given twice and the scenario's size,
//! refused with their lines before anything is expanded or allocated.

use chrono::{DateTime, Utc};

use super::Scenario;
use crate::units;

/// What one scenario may ask for: beyond these a typo (`count = 1000000000`) would try to
/// allocate the machine away instead of being refused.
pub const MAX_NODES: u64 = 10_000;
pub const MAX_EXTRA_CONTAINERS: u64 = 10_000;
pub const MAX_ROUNDS: f64 = 1_000_000.0;
pub const MAX_SNAPSHOTS: f64 = 20_000_000.0;

/// Checks what serde cannot: node names given twice and the scenario's size. Every problem is
/// returned with its line; nothing is expanded or allocated before the sizes are known to fit.
pub fn check(text: &str, s: &Scenario) -> Vec<crate::error::Problem> {
    use crate::tomlread::{Ctx, Fields};
    let mut ctx = Ctx::new(text);
    let Some(doc) = ctx.parse() else {
        return ctx.problems;
    };
    let mut top = Fields::new(doc.get_ref(), doc.span(), "the scenario");
    let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for (table, span) in top.tables(&mut ctx, "node") {
        let mut f = Fields::new(table, span.clone(), "[[node]]");
        if let Some(name) = f.string(&mut ctx, "name", false)
            && !seen.insert(name.get_ref().clone())
        {
            ctx.report(
                name.span(),
                format!("node `{}` is defined twice", name.get_ref()),
            );
        }
    }
    let mut nodes = s.node.len() as u64;
    for ((table, span), t) in top
        .tables(&mut ctx, "node_template")
        .into_iter()
        .zip(&s.node_template)
    {
        let mut f = Fields::new(table, span.clone(), "[[node_template]]");
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn loading_any_scenario_text_returns(text in tomlish()) {
            let _ = crate::simulate::parse(std::path::Path::new("s.toml"), &text);
        }
    }
}
