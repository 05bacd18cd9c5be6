#![doc = include_str!("unreachable.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target};
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::rules::select::glob_match;
use crate::tomlread::Ctx;
use crate::units::fmt_duration;

pub const SPEC: KindSpec = KindSpec {
    name: "unreachable",
    doc: include_str!("unreachable.md"),
    target: Target::Node,
    event: false,
    variables: &["sources", "errors", "since", "captures", "still_answering"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    /// Source name globs that count ("*", "docker", "http:*").
    pub sources: Vec<String>,
    /// One finding per failed source instead of one when all of them failed.
    pub each: bool,
    pub min_captures: usize,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let sources = p
        .fields
        .strings(ctx, "sources")
        .map(|v| v.into_iter().map(|s| s.into_inner()).collect())
        .unwrap_or_else(|| vec!["*".to_string()]);
    let each = p.fields.boolean(ctx, "each").unwrap_or(false);
    let min_captures = p.fields.count(ctx, "min_captures").unwrap_or(1).max(1);
    if min_captures > crate::history::RECENT_SNAPSHOTS {
        ctx.report(
            p.fields.span.clone(),
            format!(
                "{}: `min_captures` can be at most {}",
                p.fields.what,
                crate::history::RECENT_SNAPSHOTS
            ),
        );
    }
    Some(Kind::Unreachable(Params {
        sources,
        each,
        min_captures,
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let counts = |name: &str| p.sources.iter().any(|g| glob_match(g, name));
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let recent: Vec<_> = node.recent().rev().take(p.min_captures).collect();
        if recent.len() < p.min_captures {
            continue;
        }
        let Some(latest) = recent.first() else {
            continue;
        };
        let at = latest.captured_at.timestamp();
        let failed_in = |s: &crate::model::Snapshot, name: &str| {
            s.sources.iter().any(|x| x.name == name && !x.ok)
        };
        let selected: Vec<_> = latest.sources.iter().filter(|s| counts(&s.name)).collect();
        if selected.is_empty() {
            continue;
        }
        let failing: Vec<_> = selected
            .iter()
            .filter(|s| !s.ok && recent.iter().all(|snap| failed_in(snap, &s.name)))
            .collect();
        let since = recent
            .last()
            .map(|s| s.captured_at.timestamp())
            .unwrap_or(at);
        let answering: Vec<String> = latest
            .sources
            .iter()
            .filter(|s| s.ok)
            .map(|s| code_span(&s.name))
            .collect();
        let describe = |names: &[String], errors: &[String], c: &mut Candidate| {
            c.value("sources", None, names.join(", "));
            c.value("errors", None, errors.join("; "));
            c.value("since", Some(since as f64), ctx.time(since));
            c.value(
                "captures",
                Some(p.min_captures as f64),
                p.min_captures.to_string(),
            );
            c.value(
                "still_answering",
                None,
                if answering.is_empty() {
                    "nothing".to_string()
                } else {
                    answering.join(", ")
                },
            );
        };
        let lasting = if p.min_captures > 1 {
            format!(
                " for {} captures in a row since {} ({})",
                p.min_captures,
                ctx.time(since),
                fmt_duration((at - since) as f64)
            )
        } else {
            String::new()
        };
        if p.each {
            for s in failing {
                let mut c = Candidate::new(node, &format!("source:{}", s.name), "reachable", at).in_any_state();
                let error = s.error.clone().unwrap_or_default();
                describe(
                    std::slice::from_ref(&s.name),
                    std::slice::from_ref(&error),
                    &mut c,
                );
                c.evidence = format!(
                    "Source {} failed at {}{lasting}: {}.",
                    code_span(&s.name),
                    ctx.time(at),
                    crate::markdown::escape_inline(&error)
                );
                out.push(c);
            }
        } else if failing.len() == selected.len() {
            let names: Vec<String> = failing.iter().map(|s| s.name.clone()).collect();
            let errors: Vec<String> = failing
                .iter()
                .map(|s| format!("{}: {}", s.name, s.error.as_deref().unwrap_or("?")))
                .collect();
            let mut c = Candidate::new(node, "node", "reachable", at).in_any_state();
            describe(&names, &errors, &mut c);
            let still = if answering.is_empty() {
                "Nothing on the node answered.".to_string()
            } else {
                format!("Still answering: {}.", answering.join(", "))
            };
            c.evidence = format!(
                "Every source asked failed at {}{lasting}: {}. {still}",
                ctx.time(at),
                errors
                    .iter()
                    .map(|e| crate::markdown::escape_inline(e))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            out.push(c);
        }
    }
}
