//! Advice that fits its subject, and facts a template may state only because the data shows them.
//!
//! One rule watches PostgreSQL, camera agents and gunicorn web apps alike; telling all of them
//! to use gunicorn's `--max-requests` is advice the reader learns to skip. A rule may therefore
//! declare `[[rule.advice]]` entries, each a `when` (globs over the subject's image, command
//! and entity) and a `recommendation`; the first that matches replaces the rule's own
//! recommendation, which stays the fallback. And a template may say "it was killed near 400MB
//! before" only through `killed_near`, which is empty unless the window holds a kill of that
//! container, or speak of connections only through `connections`, read from the node.

use crate::error::did_you_mean;
use crate::history::NodeHistory;
use crate::rules::select::glob_match;
use crate::tomlread::{Ctx, Fields};
use crate::units::fmt_bytes;

/// The keys a `when` of an advice may test.
pub const ADVICE_KEYS: &[&str] = &["image", "command", "entity"];

/// Variables the engine fills from the data for every rule (empty when the data shows nothing).
pub const FACT_VARIABLES: &[&str] = &["killed_near", "killed_at", "connections", "image"];

/// One `[[rule.advice]]`: globs per subject attribute, all of which must match.
#[derive(Debug, Clone)]
pub struct Advice {
    pub when: Vec<(String, Vec<String>)>,
    pub recommendation: String,
}

impl Advice {
    /// Whether this advice fits a subject described by (key, value) pairs; a key the subject
    /// lacks (a disk has no image) does not match.
    pub fn fits(&self, subject: &[(&str, String)]) -> bool {
        self.when.iter().all(|(key, globs)| {
            subject
                .iter()
                .find(|(k, _)| k == key)
                .is_some_and(|(_, v)| globs.iter().any(|g| glob_match(g, v)))
        })
    }
}

/// Reads `[[rule.advice]]` entries; problems are reported with their line and column.
/// `check` validates a recommendation template.
pub fn parse(
    f: &mut Fields,
    ctx: &mut Ctx,
    mut check: impl FnMut(&str) -> Result<(), String>,
) -> Vec<Advice> {
    let what = format!("{} advice", f.what);
    let mut out = Vec::new();
    for (table, span) in f.tables(ctx, "advice") {
        let mut a = Fields::new(table, span.clone(), what.clone());
        let mut when = Vec::new();
        match a.table(ctx, "when", &format!("{what} when")) {
            Some(mut w) => {
                for key in w.keys() {
                    if !ADVICE_KEYS.contains(&key.as_str()) {
                        let v = w.value(&key).map(|v| v.span()).unwrap_or(span.clone());
                        ctx.report(
                            v,
                            format!(
                                "{what} when: unknown key `{key}`{} (keys: {})",
                                did_you_mean(&key, ADVICE_KEYS),
                                ADVICE_KEYS.join(", ")
                            ),
                        );
                        continue;
                    }
                    let globs: Vec<String> = w
                        .strings(ctx, &key)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|s| s.into_inner())
                        .collect();
                    if !globs.is_empty() {
                        when.push((key, globs));
                    }
                }
                w.finish(ctx);
                if when.is_empty() {
                    ctx.report(
                        span.clone(),
                        format!(
                            "{what}: `when` names nothing to match (keys: {}); use the rule's own `recommendation` for the fallback",
                            ADVICE_KEYS.join(", ")
                        ),
                    );
                }
            }
            None => ctx.report(
                span.clone(),
                format!("{what} needs `when` (e.g. when = {{ image = \"*postgres*\" }})"),
            ),
        }
        let recommendation = a.string(ctx, "recommendation", true);
        if let Some(r) = &recommendation
            && let Err(e) = check(r.get_ref())
        {
            ctx.report(r.span(), format!("{what}: `recommendation` template: {e}"));
        }
        a.finish(ctx);
        if let Some(r) = recommendation
            && !when.is_empty()
        {
            out.push(Advice {
                when,
                recommendation: r.into_inner(),
            });
        }
    }
    out
}

/// A container's log, or one template of it, speaks for the container:
/// `logtpl:container:web|ERROR|…` and `log:container:web` are `container:web`.
fn speaks_for(entity: &str) -> &str {
    let e = entity
        .strip_prefix("logtpl:")
        .or_else(|| entity.strip_prefix("log:"))
        .unwrap_or(entity);
    e.split('|').next().unwrap_or(e)
}

/// What a subject is, for advice: its image, command and entity as the newest capture shows.
pub fn subject(node: Option<&NodeHistory>, entity: &str) -> Vec<(&'static str, String)> {
    let mut out = vec![("entity", entity.to_string())];
    let entity = speaks_for(entity);
    let container = entity
        .strip_prefix("container:")
        .and_then(|name| node?.latest()?.container(name));
    if let Some(c) = container {
        out.push(("image", c.image.clone()));
        out.push(("command", c.command.join(" ")));
    }
    out
}

/// Facts about the subject read from the window: `killed_near`/`killed_at` (the newest kill of
/// the container the window shows: an OOM kill, or a log line that names SIGKILL or out of
/// memory, and its memory in the capture before), `connections` (PostgreSQL connections on
/// the node in its newest capture) and `image`. Each is empty when the data does not show it.
pub fn facts(
    node: Option<&NodeHistory>,
    entity: &str,
    time: impl Fn(i64) -> String,
) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> =
        FACT_VARIABLES.iter().map(|v| (*v, String::new())).collect();
    let Some(node) = node else { return out };
    let entity = speaks_for(entity);
    let mut set = |key: &str, value: String| {
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        }
    };
    let connections: Option<f64> = node
        .series_of("active_connections")
        .iter()
        .filter(|(_, s)| s.last().map(|p| p.at) == node.latest_at())
        .filter_map(|(_, s)| s.last().and_then(|p| p.value))
        .reduce(|a, b| a + b);
    if let Some(n) = connections {
        set("connections", format!("{}", n.round() as i64));
    }
    let Some(name) = entity.strip_prefix("container:") else {
        return out;
    };
    if let Some(c) = node.latest().and_then(|s| s.container(name)) {
        set("image", c.image.clone());
    }
    let mut kill: Option<i64> = node
        .series(entity, "oom_killed")
        .and_then(|s| s.points.iter().rev().find(|p| p.value == Some(1.0)))
        .map(|p| p.at);
    let prefix = format!("logtpl:container:{name}|");
    for (tpl, series) in node.series_of("count") {
        let Some(template) = tpl.strip_prefix(&prefix) else {
            continue;
        };
        let lower = template.to_lowercase();
        if !(lower.contains("sigkill") || lower.contains("out of memory")) {
            continue;
        }
        if let Some(p) = series
            .points
            .iter()
            .rev()
            .find(|p| p.value.is_some_and(|v| v > 0.0))
        {
            kill = kill.max(Some(p.at));
        }
    }
    if let Some(at) = kill {
        set("killed_at", time(at));
        // The memory it had reached: the highest reading up to the capture that saw the kill.
        let level = node.series(entity, "mem_usage_bytes").and_then(|s| {
            s.points
                .iter()
                .filter(|p| p.at <= at)
                .rev()
                .take(2)
                .filter_map(|p| p.value)
                .reduce(f64::max)
        });
        if let Some(level) = level {
            set("killed_near", fmt_bytes(level));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::rules::Library;

    const RULE: &str = r#"
[[rule]]
id = "creep"
kind = "threshold"
severity = "info"
description = "d"
select = { entity = "container:*", metric = "mem_usage_bytes" }
params = { above = "1GB" }
title = "{{ node }} {{ subject }}"
recommendation = "generic"
"#;

    #[test]
    fn advice_mistakes_are_errors_with_their_line() {
        let text = format!(
            "{RULE}\n[[rule.advice]]\nwhen = {{ imag = \"*postgres*\" }}\nrecommendation = \"pg\"\n\n[[rule.advice]]\nrecommendation = \"{{{{ nope }}}}\"\nwhen = {{ image = \"x\" }}\n"
        );
        let e = Library::from_sources(&[(PathBuf::from("r.toml"), text)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.toml:13:17"), "{e}");
        assert!(e.contains("unknown key `imag`"), "{e}");
        assert!(e.contains("did you mean `image`"), "{e}");
        assert!(e.contains("r.toml:17:"), "{e}");
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn the_first_fitting_advice_wins_and_the_rule_is_the_fallback() {
        let text = format!(
            "{RULE}\n[[rule.advice]]\nwhen = {{ image = [\"*postgres*\"] }}\nrecommendation = \"pg\"\n\n[[rule.advice]]\nwhen = {{ command = \"gunicorn *\", entity = \"container:web*\" }}\nrecommendation = \"gunicorn\"\n"
        );
        let lib = Library::from_sources(&[(PathBuf::from("r.toml"), text)]).unwrap();
        let advice = &lib.rules[0].advice;
        let pick = |subject: &[(&str, String)]| {
            advice
                .iter()
                .find(|a| a.fits(subject))
                .map(|a| a.recommendation.clone())
        };
        let pg = [
            ("entity", "container:db".into()),
            ("image", "postgres".into()),
        ];
        assert_eq!(pick(&pg).as_deref(), Some("pg"));
        let web = [
            ("entity", "container:web1".into()),
            ("image", "app".into()),
            ("command", "gunicorn app:server".into()),
        ];
        assert_eq!(pick(&web).as_deref(), Some("gunicorn"));
        // A camera agent runs neither: the rule's own recommendation applies.
        let cam = [
            ("entity", "container:camera-agent-1".into()),
            ("image", "visionking-camera".into()),
            ("command", String::new()),
        ];
        assert_eq!(pick(&cam), None);
    }
}
