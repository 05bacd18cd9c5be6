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
    variables: &[
        "only_here",
        "count",
        "other",
        "group",
        "here",
        "instead",
        "instead_count",
    ],
    headline: &["count"],
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

/// Whether a container is a service its peers are meant to run too: part of a compose project
/// or kept running by a restart policy. A student's notebook a spawner started, or a one-off
/// `docker run`, is neither, and its name on one node says nothing about the others.
fn is_service(c: &crate::model::Container) -> bool {
    c.compose_project.is_some()
        || c
            .restart_policy
            .as_deref()
            .is_some_and(|r| !r.is_empty() && r != "no")
}

/// Per node: the canonical names of the selected services it runs, and of every selected
/// container it runs (a service hand-started on one node is still there: it lacks a restart
/// policy, not the service), with the capture's time. A node whose container list could not be
/// read, or which runs no service at all (dark), is left out.
type PeerSets<'n> = BTreeMap<&'n str, (BTreeSet<String>, BTreeSet<String>, i64)>;

fn peer_sets<'n>(
    rule: &Rule,
    ctx: &EvalContext,
    nodes: &[&'n crate::history::NodeHistory],
) -> PeerSets<'n> {
    let mut sets = PeerSets::new();
    for node in nodes {
        let Some(snap) = node.latest() else { continue };
        let Some(containers) = &snap.containers else {
            continue;
        };
        // A container that is not a service counts only while it runs: an exited hand-started
        // one is the service missing, not the service there.
        let selected = |service_only: bool| -> BTreeSet<String> {
            containers
                .iter()
                .filter(|c| {
                    is_service(c)
                        || !service_only && c.state == crate::model::ContainerState::Running
                })
                .map(|c| format!("container:{}", c.name))
                .filter(|e| rule.select.entity_matches(e))
                .map(|e| ctx.aliases.canonical(&e))
                .collect()
        };
        let services = selected(true);
        if !services.is_empty() {
            let at = snap.captured_at.timestamp();
            sets.insert(node.node.as_str(), (services, selected(false), at));
        }
    }
    sets
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for (group, nodes) in peer_groups(rule, ctx.window, p.within_fleet) {
        let sets = peer_sets(rule, ctx, &nodes);
        // A peer that cannot be compared hides what it lacks: nothing about the group can be
        // said to be gone while it is blind.
        if sets.len() < nodes.len() {
            for node in &nodes {
                if let Some(at) = node.latest_at() {
                    let entity = format!("peers:{group}");
                    out.push(Candidate::undecided(node, &entity, "containers", at));
                }
            }
        }
        if sets.len() < 2 {
            continue;
        }
        // How many peers run each component: one pass, so a group of a thousand nodes costs
        // the same per node as a pair.
        let mut running: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (node, (_, names, _)) in &sets {
            for name in names {
                running.entry(name.as_str()).or_default().push(node);
            }
        }
        let peers: Vec<&str> = sets.keys().copied().collect();
        for (here, (mine, all_mine, at)) in &sets {
            let only: Vec<&str> = mine
                .iter()
                .map(String::as_str)
                .filter(|n| running.get(n).is_some_and(|r| r.len() < peers.len()))
                .collect();
            if only.is_empty() {
                continue;
            }
            // Two nodes that each run what the other lacks are one difference: the first by
            // name says it, with what the other runs instead.
            if let [first, second] = peers.as_slice()
                && second == here
                && sets[first].0.iter().any(|n| !all_mine.contains(n))
            {
                continue;
            }
            // The peers that lack them, the first few by name.
            let lacking: Vec<&str> = peers
                .iter()
                .copied()
                .filter(|p| p != here && only.iter().any(|n| !sets[p].1.contains(*n)))
                .collect();
            let Some(node) = nodes.iter().find(|n| n.node == *here) else {
                continue;
            };
            let names: Vec<String> = only
                .iter()
                .map(|e| code_span(e.trim_start_matches("container:")))
                .collect();
            let shown_peers = if lacking.len() > 3 {
                format!(
                    "{} and {} other peers",
                    lacking[..3].join(", "),
                    lacking.len() - 3
                )
            } else {
                and_list(&lacking.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            };
            let mut c = Candidate::new(node, &format!("peers:{group}"), "containers", *at).in_any_state();
            c.value("here", None, here.to_string());
            c.value("only_here", None, and_list(&names));
            c.value("count", Some(names.len() as f64), names.len().to_string());
            c.value("other", None, shown_peers.clone());
            c.value("group", None, group.clone());
            // With one peer, also say what it runs instead; a pair that each run what the other
            // lacks is one finding about both. Empty otherwise: a title tests `instead`, and
            // a variable that is not set at all fails the template.
            c.value("instead", None, String::new());
            c.value("instead_count", Some(0.0), "0");
            let instead = if lacking.len() == 1 {
                let theirs = &sets[lacking[0]].0;
                let extra: Vec<String> = theirs
                    .difference(all_mine)
                    .map(|e| code_span(e.trim_start_matches("container:")))
                    .collect();
                if extra.is_empty() {
                    String::new()
                } else {
                    c.value("instead", None, and_list(&extra));
                    c.value(
                        "instead_count",
                        Some(extra.len() as f64),
                        extra.len().to_string(),
                    );
                    if peers.len() == 2 {
                        c.nodes.push(lacking[0].to_string());
                    }
                    format!("; {} runs {} instead", lacking[0], and_list(&extra))
                }
            } else {
                String::new()
            };
            c.evidence = format!(
                "{here} runs {} that {shown_peers} (same role `{group}`) {}{instead}.",
                and_list(&names),
                if lacking.len() == 1 {
                    "does not"
                } else {
                    "do not all run"
                }
            );
            out.push(c);
        }
    }
}
