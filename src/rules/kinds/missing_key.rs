#![doc = include_str!("missing_key.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, and_list, string_list};
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::rules::select::glob_match;
use crate::tomlread::Ctx;

pub const SPEC: KindSpec = KindSpec {
    name: "missing-key",
    doc: include_str!("missing_key.md"),
    target: Target::Node,
    event: false,
    variables: &["key", "db", "missing", "redis"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub keys: Vec<String>,
    /// Fire when the whole key is absent (not only a field of it).
    pub key_absent: bool,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let mut keys = string_list(p, ctx, "keys");
    if keys.is_empty() {
        keys.push("*".into());
    }
    let key_absent = p.fields.boolean(ctx, "key_absent").unwrap_or(true);
    Some(Kind::MissingKey(Params { keys, key_absent }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        let at = snap.captured_at.timestamp();
        for redis in &snap.redis {
            for w in &redis.watched {
                if !p.keys.iter().any(|g| glob_match(g, &w.key)) {
                    continue;
                }
                let entity = format!("redis:{}/db{}/{}", redis.name, w.db, w.key);
                if !rule.select.entity_matches(&entity) {
                    continue;
                }
                let missing: Vec<String> = if !w.exists {
                    if !p.key_absent {
                        continue;
                    }
                    vec!["the whole key".to_string()]
                } else {
                    w.fields_missing.iter().map(|f| code_span(f)).collect()
                };
                if missing.is_empty() {
                    continue;
                }
                let mut c = Candidate::new(node, &entity, "watched", at);
                c.value("key", None, code_span(&w.key));
                c.value("db", Some(f64::from(w.db)), w.db.to_string());
                c.value("missing", None, and_list(&missing));
                c.value("redis", None, code_span(&redis.name));
                c.evidence = if w.exists {
                    format!(
                        "Redis {} DB{} {} {} exists but lacks {} {}.",
                        code_span(&redis.name),
                        w.db,
                        w.kind.as_deref().unwrap_or("key"),
                        code_span(&w.key),
                        if missing.len() == 1 {
                            "field"
                        } else {
                            "fields"
                        },
                        and_list(&missing)
                    )
                } else {
                    format!(
                        "Redis {} DB{} has no key {}, which the configuration says must exist.",
                        code_span(&redis.name),
                        w.db,
                        code_span(&w.key)
                    )
                };
                out.push(c);
            }
        }
    }
}
