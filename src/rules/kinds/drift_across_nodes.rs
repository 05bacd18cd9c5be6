#![doc = include_str!("drift_across_nodes.md")]

use std::collections::BTreeMap;

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target};
use crate::history::metrics::{attribute, attribute_entities, entity_label};
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::tomlread::Ctx;

pub const SPEC: KindSpec = KindSpec {
    name: "drift-across-nodes",
    doc: include_str!("drift_across_nodes.md"),
    target: Target::Attribute,
    event: false,
    variables: &["versions", "distinct", "group"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    /// "role": compare nodes of the same role; "fleet": compare all nodes.
    pub within: String,
    pub strip_prefixes: Vec<String>,
    pub strip_suffixes: Vec<String>,
    /// Further attributes shown beside the compared one (e.g. the revision).
    pub show: Vec<String>,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let within = p.choice(ctx, "within", &["role", "fleet"], "role");
    let strip_prefixes = super::string_list(p, ctx, "strip_prefixes");
    let strip_suffixes = super::string_list(p, ctx, "strip_suffixes");
    let show = super::string_list(p, ctx, "show");
    Some(Kind::DriftAcrossNodes(Params {
        within,
        strip_prefixes,
        strip_suffixes,
        show,
    }))
}

/// The name an entity or value has once environment prefixes ("dev-") are set aside.
fn normalise(p: &Params, text: &str) -> String {
    let (head, name) = match text.split_once(':') {
        Some((h, n)) if h == "container" => (Some(h), n),
        _ => (None, text),
    };
    let mut name = name.to_string();
    for prefix in &p.strip_prefixes {
        if let Some(rest) = name.strip_prefix(prefix.as_str()) {
            name = rest.to_string();
        }
    }
    for suffix in &p.strip_suffixes {
        if let Some(rest) = name.strip_suffix(suffix.as_str()) {
            name = rest.to_string();
        }
    }
    match head {
        Some(h) => format!("{h}:{name}"),
        None => name,
    }
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let attr = rule.select.metric.as_str();
    // group -> normalised entity -> node -> (raw value, shown extras, entity)
    type Seen = BTreeMap<String, (String, Vec<String>, String)>;
    let mut groups: BTreeMap<String, BTreeMap<String, Seen>> = BTreeMap::new();
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        let group = if p.within == "fleet" {
            "fleet".to_string()
        } else {
            node.role.clone().unwrap_or_else(|| "(no role)".to_string())
        };
        for entity in attribute_entities(snap) {
            if !rule.select.entity_matches(&entity) {
                continue;
            }
            let Some(value) = attribute(snap, &entity, attr) else {
                continue;
            };
            let extras: Vec<String> = p
                .show
                .iter()
                .filter_map(|a| {
                    attribute(snap, &entity, a).map(|v| format!("{a} {}", code_span(&v)))
                })
                .collect();
            groups
                .entry(group.clone())
                .or_default()
                .entry(ctx.aliases.canonical(&normalise(p, &entity)))
                .or_default()
                .insert(node.node.clone(), (value, extras, entity.clone()));
        }
    }
    for (group, entities) in groups {
        for (normalised, by_node) in entities {
            if by_node.len() < 2 {
                // With one node left there is nothing to compare: an open drift stays open.
                if let Some(node) = by_node.keys().next().and_then(|n| ctx.window.node(n)) {
                    let mut c = Candidate::new(node, &normalised, attr, 0).in_any_state();
                    c.scope = Some(group.clone());
                    c.unchecked = true;
                    out.push(c);
                }
                continue;
            }
            let mut distinct: Vec<String> = by_node
                .values()
                .map(|(v, _, _)| ctx.aliases.canonical_image(&normalise(p, v)))
                .collect();
            distinct.sort();
            distinct.dedup();
            if distinct.len() < 2 {
                continue;
            }
            let parts: Vec<String> = by_node
                .iter()
                .map(|(node, (value, extras, entity))| {
                    let name_note = if ctx.aliases.canonical(&normalise(p, entity)) != *entity {
                        format!(" (as {})", entity_label(entity))
                    } else {
                        String::new()
                    };
                    if extras.is_empty() {
                        format!("{node} has {}{name_note}", code_span(value))
                    } else {
                        format!(
                            "{node} has {} ({}){name_note}",
                            code_span(value),
                            extras.join(", ")
                        )
                    }
                })
                .collect();
            let nodes: Vec<String> = by_node.keys().cloned().collect();
            let Some(first) = ctx.window.node(&nodes[0]) else {
                continue;
            };
            let at = ctx
                .window
                .latest_at()
                .map(|t| t.timestamp())
                .unwrap_or_default();
            let mut c = Candidate::new(first, &normalised, attr, at).in_any_state();
            c.nodes = nodes;
            c.scope = Some(group.clone());
            let versions = parts.join("; ");
            c.value("versions", None, versions.clone());
            c.value(
                "distinct",
                Some(distinct.len() as f64),
                distinct.len().to_string(),
            );
            c.value("group", None, group.clone());
            let scope = if p.within == "fleet" {
                "across the fleet".to_string()
            } else {
                format!("across the {group} nodes")
            };
            let what = match (normalised.as_str(), attr) {
                ("docker", "compose_version") => "The Docker Compose version".to_string(),
                ("docker", "engine_version") => "The Docker Engine version".to_string(),
                (entity, attr) => format!("{} {}", entity_label(entity), attribute_label(attr)),
            };
            c.evidence = format!("{what} differs {scope}: {versions}.");
            out.push(c);
        }
    }
}

/// How an attribute reads in a sentence: its name is the encoding rules select by.
fn attribute_label(attr: &str) -> &str {
    match attr {
        "image_ref" => "image",
        "compose_version" => "Docker Compose version",
        "engine_version" => "Docker Engine version",
        other => other,
    }
}
