#![doc = include_str!("config_missing.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, string_list};
use crate::history::metrics::entity_label;
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::rules::select::glob_match;
use crate::tomlread::Ctx;
use crate::units::fmt_bytes;

pub const SPEC: KindSpec = KindSpec {
    name: "config-missing",
    doc: include_str!("config_missing.md"),
    target: Target::Node,
    event: false,
    variables: &["setting", "usage", "command"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    /// "mem_limit", "restart_policy" or "command_flag".
    pub setting: String,
    pub flag: Option<String>,
    /// Containers exempt on purpose (e.g. "Never set limits on Ollama").
    pub allow: Vec<String>,
    /// Only containers using at least this much memory (mem_limit).
    pub min_usage: f64,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let setting = p.choice(
        ctx,
        "setting",
        &["mem_limit", "restart_policy", "command_flag"],
        "mem_limit",
    );
    let flag = p.fields.string(ctx, "flag", false).map(|f| f.into_inner());
    if setting == "command_flag" && flag.is_none() {
        ctx.report(
            p.fields.span.clone(),
            format!(
                "{}: `setting = \"command_flag\"` needs `flag`",
                p.fields.what
            ),
        );
        return None;
    }
    let min_usage = match p.fields.value("min_usage") {
        Some(_) => {
            let saved = p.dimension;
            p.dimension = crate::units::Dimension::Bytes;
            let v = p.quantity(ctx, "min_usage");
            p.dimension = saved;
            v.unwrap_or(0.0)
        }
        None => 0.0,
    };
    Some(Kind::ConfigMissing(Params {
        setting,
        flag,
        allow: string_list(p, ctx, "allow"),
        min_usage,
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        let Some(containers) = &snap.containers else {
            continue;
        };
        let at = snap.captured_at.timestamp();
        for c in containers {
            let entity = format!("container:{}", c.name);
            if !rule.select.entity_matches(&entity)
                || p.allow.iter().any(|g| glob_match(g, &c.name))
            {
                continue;
            }
            let usage = c.mem_usage_bytes.unwrap_or(0) as f64;
            let (missing, detail) = match p.setting.as_str() {
                "mem_limit" => (
                    c.mem_limit_bytes.is_none() && usage >= p.min_usage,
                    format!("has no memory limit while using {}", fmt_bytes(usage)),
                ),
                "restart_policy" => (
                    matches!(c.restart_policy.as_deref(), None | Some("") | Some("no")),
                    format!(
                        "has restart policy `{}`: it stays down after a crash or a reboot",
                        c.restart_policy.as_deref().unwrap_or("no")
                    ),
                ),
                _ => {
                    let flag = p.flag.as_deref().unwrap_or_default();
                    (
                        !c.command
                            .iter()
                            .any(|a| a == flag || a.starts_with(&format!("{flag}="))),
                        format!("runs without `{flag}`"),
                    )
                }
            };
            if !missing {
                // The setting is still missing, only the usage that made it worth telling
                // fell (after a restart): the configuration did not change, so a finding
                // about it must not resolve.
                if p.setting == "mem_limit" && c.mem_limit_bytes.is_none() {
                    let metric = format!("config:{}", p.setting);
                    out.push(Candidate::holding(node, &entity, &metric, at));
                }
                continue;
            }
            let mut cand = Candidate::new(node, &entity, &format!("config:{}", p.setting), at).in_any_state();
            let setting = match &p.flag {
                Some(f) if p.setting == "command_flag" => code_span(f),
                _ => p.setting.clone(),
            };
            cand.value("setting", None, setting);
            cand.value("usage", Some(usage), fmt_bytes(usage));
            cand.value("command", None, code_span(&c.command.join(" ")));
            cand.evidence = format!(
                "{} {detail}{}.",
                entity_label(&entity),
                if p.setting == "command_flag" && !c.command.is_empty() {
                    format!(" (command {})", code_span(&c.command.join(" ")))
                } else {
                    String::new()
                }
            );
            out.push(cand);
        }
    }
}
