#![doc = include_str!("contradiction.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, and_list};
use crate::rules::{Rule, phrase};
use crate::rules::states::{Condition, parse_conditions};
use crate::tomlread::Ctx;

pub const SPEC: KindSpec = KindSpec {
    name: "contradiction",
    doc: include_str!("contradiction.md"),
    target: Target::Node,
    event: false,
    variables: &["readings", "first", "second"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub all: Vec<Condition>,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let all = parse_conditions(&mut p.fields, ctx, "all");
    if all.len() < 2 {
        ctx.report(
            p.fields.span.clone(),
            format!(
                "{} needs at least two conditions in `all` (two readings that cannot both be normal)",
                p.fields.what
            ),
        );
        return None;
    }
    Some(Kind::Contradiction(Params { all }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(at) = node.latest_at() else { continue };
        let mut matched = Vec::new();
        let mut undecided = false;
        for cond in &p.all {
            match cond.passing(node) {
                Some(m) => matched.push((cond, m)),
                None => {
                    undecided |= cond.holds(node).is_none();
                    break;
                }
            }
        }
        let subject = p.all[0].entity.replace('*', "any");
        if matched.len() < p.all.len() {
            if undecided {
                out.push(Candidate::undecided(node, &subject, "contradiction", at));
            }
            continue;
        }
        let readings: Vec<String> = matched
            .iter()
            .map(|(cond, (entity, v))| phrase::reading(entity, &cond.metric, *v))
            .collect();
        let first_entity = matched[0].1.0.clone();
        let mut c = Candidate::new(node, &first_entity, "contradiction", at);
        c.value("readings", None, and_list(&readings));
        c.value("first", Some(matched[0].1.1), readings[0].clone());
        c.value("second", Some(matched[1].1.1), readings[1].clone());
        c.evidence = format!(
            "On {} at the same capture, {}.",
            node.node,
            and_list(&readings)
        );
        out.push(c);
    }
}
