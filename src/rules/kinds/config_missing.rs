#![doc = include_str!("config_missing.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, string_list};
use crate::history::metrics::entity_label;
use crate::markdown::code_span;
use crate::model::{Container, ContainerState};
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
    /// Seconds a container must have run (since it started) before it is judged.
    pub min_age: f64,
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
        min_age: p.duration(ctx, "min_age").unwrap_or(0.0),
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
            if too_soon(p, c, at) {
                // Not judged yet, but a finding already open is not fixed by a new start or a
                // clean exit: the configuration did not change.
                let missing = match p.setting.as_str() {
                    "mem_limit" => c.mem_limit_bytes.is_none(),
                    "restart_policy" => no_restart_policy(c),
                    _ => false,
                };
                if missing {
                    let metric = format!("config:{}", p.setting);
                    out.push(Candidate::holding(node, &entity, &metric, at));
                }
                continue;
            }
            let usage = c.mem_usage_bytes.unwrap_or(0) as f64;
            let (missing, detail) = match p.setting.as_str() {
                "mem_limit" => (
                    c.mem_limit_bytes.is_none() && usage >= p.min_usage,
                    format!("has no memory limit while using {}", fmt_bytes(usage)),
                ),
                "restart_policy" => (
                    no_restart_policy(c),
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

fn no_restart_policy(c: &Container) -> bool {
    matches!(c.restart_policy.as_deref(), None | Some("") | Some("no"))
}

/// A container is judged only once it has run for `min_age` (a task container that lives
/// minutes is not a service missing a setting), and never for a restart policy once it exited
/// with code 0: a task that ran to completion is not meant to be restarted.
fn too_soon(p: &Params, c: &Container, at: i64) -> bool {
    if p.setting == "restart_policy" && c.state == ContainerState::Exited && c.exit_code == Some(0)
    {
        return true;
    }
    p.min_age > 0.0
        && c
            .started_at
            .is_some_and(|s| ((at - s.timestamp()) as f64) < p.min_age)
}
