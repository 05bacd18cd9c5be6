//! Loading a rule library: the built-in files first, then a fleet's own files as an overlay.
//!
//! A fleet that wants one threshold changed should not have to copy the whole library (and miss
//! every later fix to it), and an empty `rules/` must not silently turn every rule off. So a
//! fleet's files are layered on the built-in library in order: a rule, state or alias with a new
//! id is added, one with an id already loaded from an earlier file replaces it whole, and a
//! top-level `disable = ["id", …]` removes rules loaded from earlier files. A file with
//! `replace_builtin = true` drops the built-in library for those who keep a separate one.

use std::path::{Path, PathBuf};

use super::states::{self, Aliases, StateDef};
use super::{Library, Rule, location, parse, template};
use crate::error::{Error, Problem, Result, did_you_mean};
use crate::tomlread::{Ctx, Fields};

impl Library {
    /// The built-in library with one directory or file layered on it.
    pub fn load(path: &Path) -> Result<Library> {
        Library::load_all(&[path.to_path_buf()])
    }

    /// The one way a library is loaded from disk: the built-in files, then every `*.toml` of
    /// `paths` (a directory's sorted by name) as overlays, in order. No paths: the built-in
    /// library. A result without a single rule is an error naming the files: everything
    /// would be silent.
    pub fn load_all(paths: &[PathBuf]) -> Result<Library> {
        let mut overlays = Vec::new();
        for path in paths {
            for f in files(path)? {
                let text = crate::fsutil::read_to_string(&f)?;
                overlays.push((f, text));
            }
        }
        let replace = overlays.iter().any(|(_, text)| replaces_builtin(text));
        let mut sources = if replace {
            Vec::new()
        } else {
            super::defaults::sources()
        };
        let overlay_from = sources.len();
        sources.extend(overlays);
        let library = build(&sources, overlay_from)?;
        if library.rules.is_empty() {
            let named: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let why = if replace {
                "`replace_builtin = true` drops the built-in library and these files define no [[rule]]"
            } else {
                "`disable` removed every rule"
            };
            return Err(Error::Usage(format!(
                "{}: no rule left ({} read): {why}; every rule would be off",
                named.join(", "),
                crate::units::plural(sources.len() - overlay_from, "file")
            )));
        }
        Ok(library)
    }

    /// Parses rule files given as (path, text) as one library: an id used twice is an error.
    /// Every problem of every file is reported.
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<Library> {
        build(sources, sources.len())
    }
}

/// Where a rule comes from, for `rules list`: `built-in`, or `file:line`.
pub fn source(rule: &Rule) -> String {
    if rule
        .file
        .to_string_lossy()
        .starts_with(super::defaults::PREFIX)
    {
        "built-in".to_string()
    } else {
        location(rule)
    }
}

fn files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.exists() {
        return Err(Error::Usage(format!(
            "{}: no such rules file or directory",
            path.display()
        )));
    }
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    Ok(files)
}

/// Whether a file asks to drop the built-in library; a wrong type is reported when the file is
/// read in full.
fn replaces_builtin(text: &str) -> bool {
    let mut ctx = Ctx::new(text);
    ctx.parse().is_some_and(|doc| {
        doc.get_ref()
            .get("replace_builtin")
            .is_some_and(|v| v.get_ref().as_bool() == Some(true))
    })
}

/// The states and aliases of every file, later overlays replacing earlier ones by id. Read
/// before any rule, so a rule may use a state declared in another file.
fn read_states(
    sources: &[(PathBuf, String)],
    overlay_from: usize,
) -> (Vec<StateDef>, Aliases, Vec<Vec<Problem>>) {
    let mut states: Vec<StateDef> = Vec::new();
    let mut state_file: Vec<usize> = Vec::new();
    let mut aliases = Aliases::default();
    let mut problems = Vec::new();
    for (i, (_, text)) in sources.iter().enumerate() {
        let overlay = i >= overlay_from;
        let mut ctx = Ctx::new(text);
        if let Some(doc) = ctx.parse() {
            let mut top = Fields::new(doc.get_ref(), doc.span(), "the file");
            for (table, span) in top.tables(&mut ctx, "state") {
                let f = Fields::new(table, span.clone(), "state");
                let Some(state) = states::parse_state(f, &mut ctx) else {
                    continue;
                };
                match states.iter().position(|s| s.id == state.id) {
                    Some(p) if overlay && state_file[p] != i => {
                        states[p] = state;
                        state_file[p] = i;
                    }
                    Some(_) => ctx.report(span, format!("state `{}` is declared twice", state.id)),
                    None => {
                        states.push(state);
                        state_file.push(i);
                    }
                }
            }
            let mut own = Aliases::default();
            for (table, span) in top.tables(&mut ctx, "alias") {
                states::parse_alias(Fields::new(table, span, "alias"), &mut ctx, &mut own);
            }
            if overlay {
                for name in own.canonical_names() {
                    aliases.remove_canonical(&name);
                }
            }
            aliases.merge(own);
        }
        problems.push(ctx.problems);
    }
    (states, aliases, problems)
}

/// Reads every file's rules and `disable` in order; `rule_file[k]` is the file of `rules[k]`.
fn read_rules(
    sources: &[(PathBuf, String)],
    overlay_from: usize,
    states: &[StateDef],
    early: Vec<Vec<Problem>>,
    env: &minijinja::Environment<'static>,
) -> (Vec<Rule>, Vec<Error>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut rule_file: Vec<usize> = Vec::new();
    let mut failures = Vec::new();
    for (i, ((path, text), early)) in sources.iter().zip(early).enumerate() {
        let overlay = i >= overlay_from;
        let mut ctx = Ctx::new(text);
        if let Some(doc) = ctx.parse() {
            ctx.problems = early;
            let mut top = Fields::new(doc.get_ref(), doc.span(), "the file");
            top.value("state");
            top.value("alias");
            top.boolean(&mut ctx, "replace_builtin");
            // Before this file's own rules: `disable` is about what earlier files loaded.
            for id in top.strings(&mut ctx, "disable").unwrap_or_default() {
                match rules.iter().position(|r| &r.id == id.get_ref()) {
                    Some(p) => {
                        rules.remove(p);
                        rule_file.remove(p);
                    }
                    None => {
                        let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
                        let hint = did_you_mean(id.get_ref(), &ids);
                        ctx.report(
                            id.span(),
                            format!("`disable`: no rule `{}` to disable{hint}", id.get_ref()),
                        );
                    }
                }
            }
            for (table, span) in top.tables(&mut ctx, "rule") {
                let fields = Fields::new(table, span.clone(), "rule");
                let Some(mut rule) = parse::parse_rule(fields, &mut ctx, path, env, states) else {
                    continue;
                };
                match rules.iter().position(|r| r.id == rule.id) {
                    Some(p) if overlay && rule_file[p] != i => {
                        rule.overrides = Some(source(&rules[p]));
                        rules[p] = rule;
                        rule_file[p] = i;
                    }
                    Some(p) => ctx.report(
                        span,
                        format!(
                            "rule id `{}` is already used at {}",
                            rule.id,
                            location(&rules[p])
                        ),
                    ),
                    None => {
                        rules.push(rule);
                        rule_file.push(i);
                    }
                }
            }
            top.finish(&mut ctx);
        }
        if !ctx.problems.is_empty() {
            failures.push(Error::Invalid {
                path: path.clone(),
                problems: ctx.problems,
            });
        }
    }
    (rules, failures)
}

/// Files before `overlay_from` form one library (an id twice is an error); each later file is
/// an overlay on everything before it.
fn build(sources: &[(PathBuf, String)], overlay_from: usize) -> Result<Library> {
    let env = template::environment();
    let (states, aliases, early) = read_states(sources, overlay_from);
    let (rules, mut failures) = read_rules(sources, overlay_from, &states, early, &env);
    // A `verify` must name a rule of the library.
    for rule in &rules {
        if let Some(v) = &rule.verify
            && !rules.iter().any(|r| &r.id == v)
        {
            let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
            failures.push(Error::Usage(format!(
                "{}: rule `{}`: `verify` names no rule `{v}`{}",
                location(rule),
                rule.id,
                did_you_mean(v, &ids)
            )));
        }
    }
    match failures.len() {
        0 => Ok(Library {
            rules,
            states,
            aliases,
            env,
        }),
        1 => Err(failures.remove(0)),
        _ => {
            // Several files: one Invalid per file, joined into one message.
            let message = failures
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n");
            Err(Error::Usage(message))
        }
    }
}
