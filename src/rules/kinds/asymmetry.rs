#![doc = include_str!("asymmetry.md")]

use std::collections::{BTreeMap, BTreeSet};

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, and_list, peer_groups};
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::tomlread::Ctx;

pub const SPEC: KindSpec = KindSpec {
    name: "asymmetry",
    doc: include_str!("asymmetry.md"),
    target: Target::Node,
    event: false,
    variables: &["only_here", "count", "other", "group"],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub within_fleet: bool,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let within = p.choice(ctx, "within", &["role", "fleet"], "role");
    Some(Kind::Asymmetry(Params {
        within_fleet: within == "fleet",
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for (group, nodes) in peer_groups(rule, ctx.window, p.within_fleet) {
        // node -> canonical names of the selected containers it runs; a node whose container
        // list could not be read, or which runs nothing at all (dark), is not compared.
        let mut sets: BTreeMap<&str, (BTreeSet<String>, i64)> = BTreeMap::new();
        for node in &nodes {
            let Some(snap) = node.latest() else { continue };
            let Some(containers) = &snap.containers else {
                continue;
            };
            let names: BTreeSet<String> = containers
                .iter()
                .map(|c| format!("container:{}", c.name))
                .filter(|e| rule.select.entity_matches(e))
                .map(|e| ctx.aliases.canonical(&e))
                .collect();
            if !names.is_empty() {
                sets.insert(&node.node, (names, snap.captured_at.timestamp()));
            }
        }
        for (here, (mine, at)) in &sets {
            for (there, (theirs, _)) in &sets {
                if here == there {
                    continue;
                }
                let only: Vec<String> = mine
                    .difference(theirs)
                    .map(|e| code_span(e.trim_start_matches("container:")))
                    .collect();
                if only.is_empty() {
                    continue;
                }
                let Some(node) = nodes.iter().find(|n| n.node == *here) else {
                    continue;
                };
                let mut c = Candidate::new(node, &format!("peer:{there}"), "containers", *at);
                c.value("only_here", None, and_list(&only));
                c.value("count", Some(only.len() as f64), only.len().to_string());
                c.value("other", None, there.to_string());
                c.value("group", None, group.clone());
                let missing_there: Vec<String> = theirs
                    .difference(mine)
                    .map(|e| code_span(e.trim_start_matches("container:")))
                    .collect();
                c.evidence = format!(
                    "{here} runs {} that {there} (same role `{group}`) does not{}.",
                    and_list(&only),
                    if missing_there.is_empty() {
                        String::new()
                    } else {
                        format!("; {there} runs {} instead", and_list(&missing_there))
                    }
                );
                out.push(c);
            }
        }
    }
}
