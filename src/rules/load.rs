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
use crate::tomlread::{Ctx, Fields, Spanned};
use toml::de::{DeTable, DeValue};

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
                // An overlay's state with an earlier id may name only what it changes (its cases).
                let base = match table.get("id").and_then(|v| v.get_ref().as_str()) {
                    Some(id) if overlay => states
                        .iter()
                        .position(|s| s.id == id)
                        .filter(|&p| state_file[p] != i)
                        .map(|p| &states[p]),
                    _ => None,
                };
                let Some(state) = states::parse_state(f, &mut ctx, base) else {
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
fn read_rules<'a>(
    sources: &'a [(PathBuf, String)],
    overlay_from: usize,
    states: &[StateDef],
    early: Vec<Vec<Problem>>,
    env: &minijinja::Environment<'static>,
) -> (Vec<Rule>, Vec<Error>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut rule_file: Vec<usize> = Vec::new();
    // The table each rule was read from (a tuned rule's merged one), so a later overlay can tune
    // it again.
    let mut tables: Vec<DeTable<'a>> = Vec::new();
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
                        tables.remove(p);
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
                // An overlay's rule without `kind` tunes the earlier rule of its id: it names
                // only what changes.
                let tunes = match table.get("id") {
                    Some(id) if overlay && !table.contains_key("kind") => {
                        let name = id.get_ref().as_str().unwrap_or_default();
                        match rules.iter().position(|r| r.id == name) {
                            Some(p) if rule_file[p] != i => Some(p),
                            Some(p) => {
                                ctx.report(
                                    span.clone(),
                                    format!(
                                        "rule id `{name}` is already used at {}",
                                        location(&rules[p])
                                    ),
                                );
                                continue;
                            }
                            None => {
                                let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
                                ctx.report(
                                    id.span(),
                                    format!(
                                        "rule `{name}`: no earlier rule `{name}` to tune{} (a new rule needs `kind` and every key)",
                                        did_you_mean(name, &ids)
                                    ),
                                );
                                continue;
                            }
                        }
                    }
                    _ => None,
                };
                let read: DeTable<'a> = match tunes {
                    Some(p) => tune(&tables[p], table),
                    None => table.clone(),
                };
                let fields = Fields::new(&read, span.clone(), "rule");
                let Some(mut rule) = parse::parse_rule(fields, &mut ctx, path, env, states) else {
                    continue;
                };
                if let Some(p) = tunes {
                    rule.overrides = Some(source(&rules[p]));
                    rule.tuned = true;
                    rules[p] = rule;
                    rule_file[p] = i;
                    tables[p] = read;
                    continue;
                }
                match rules.iter().position(|r| r.id == rule.id) {
                    Some(p) if overlay && rule_file[p] != i => {
                        rule.overrides = Some(source(&rules[p]));
                        rules[p] = rule;
                        rule_file[p] = i;
                        tables[p] = read;
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
                        tables.push(read);
                    }
                }
            }
            top.finish(&mut ctx);
        }
        if let Err(e) = ctx.into_result(path) {
            failures.push(e);
        }
    }
    (rules, failures)
}

/// An earlier rule's table with an overlay's keys on it: each key the overlay gives replaces
/// the earlier one, except `params`, merged key by key. The earlier keys keep their spans in
/// their own file; they were read without error there.
fn tune<'a>(base: &DeTable<'a>, over: &DeTable<'a>) -> DeTable<'a> {
    let mut merged = base.clone();
    for (key, value) in over.iter() {
        let name: &str = key.get_ref();
        let value = match (name, merged.get(name).map(|v| v.get_ref()), value.get_ref()) {
            ("params", Some(DeValue::Table(old)), DeValue::Table(new)) => {
                let mut params = old.clone();
                for (k, v) in new.iter() {
                    params.remove(k.get_ref().as_ref());
                    params.insert(k.clone(), v.clone());
                }
                Spanned::new(value.span(), DeValue::Table(params))
            }
            _ => value.clone(),
        };
        merged.remove(name);
        merged.insert(key.clone(), value);
    }
    merged
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
    // A `folds_into` must name another rule of the library.
    for rule in &rules {
        for target in &rule.folds_into {
            if target == &rule.id || !rules.iter().any(|r| &r.id == target) {
                let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
                failures.push(Error::Usage(format!(
                    "{}: rule `{}`: `folds_into` names {}",
                    location(rule),
                    rule.id,
                    if target == &rule.id {
                        "the rule itself".to_string()
                    } else {
                        format!("no rule `{target}`{}", did_you_mean(target, &ids))
                    }
                )));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Severity;

    fn rule(id: &str, above: u32) -> String {
        format!(
            "[[rule]]\nid = \"{id}\"\nkind = \"threshold\"\nseverity = \"info\"\ndescription = \"d\"\nselect = {{ entity = \"host\", metric = \"load1\" }}\nparams = {{ above = {above} }}\ntitle = \"t\"\nrecommendation = \"r\"\n"
        )
    }

    /// The built-in library with one overlay file `fleet.toml` holding `text`.
    fn overlay(text: &str) -> Result<Library> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fleet.toml"), text).unwrap();
        Library::load(dir.path())
    }

    fn builtin() -> Library {
        Library::load_all(&[]).unwrap()
    }

    #[test]
    fn a_rule_with_a_new_id_is_added_to_the_built_in_library() {
        let lib = overlay(&rule("fleet-load", 3)).unwrap();
        assert_eq!(lib.rules.len(), builtin().rules.len() + 1);
        let added = lib.get("fleet-load").unwrap();
        assert_eq!(added.overrides, None);
        assert!(source(added).ends_with("fleet.toml:1"), "{}", source(added));
        assert_eq!(source(lib.get("container-removed").unwrap()), "built-in");
    }

    #[test]
    fn a_rule_with_a_built_in_id_replaces_it_whole_and_says_so() {
        let lib = overlay(&rule("container-removed", 7)).unwrap();
        assert_eq!(lib.rules.len(), builtin().rules.len());
        let r = lib.get("container-removed").unwrap();
        assert_eq!(r.kind_name, "threshold");
        assert_eq!(r.overrides.as_deref(), Some("built-in"));
        assert!(source(r).ends_with("fleet.toml:1"), "{}", source(r));
        let twice = overlay(&format!("{}{}", rule("x-1", 1), rule("x-1", 2)))
            .unwrap_err()
            .to_string();
        assert!(
            twice.contains("rule id `x-1` is already used at"),
            "{twice}"
        );
    }

    #[test]
    fn disable_removes_built_in_rules_by_id() {
        let lib = overlay("disable = [\"container-removed\", \"containers-all-gone\"]\n").unwrap();
        assert_eq!(lib.rules.len(), builtin().rules.len() - 2);
        assert!(lib.get("container-removed").is_none());
        assert!(lib.get("containers-all-gone").is_none());
    }

    #[test]
    fn disabling_an_unknown_id_is_an_error_with_its_line_and_a_suggestion() {
        let err = overlay("# fleet\n\ndisable = [\"container-removd\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fleet.toml:3:"), "{err}");
        assert!(
            err.contains("no rule `container-removd` to disable"),
            "{err}"
        );
        assert!(err.contains("container-removed"), "{err}");
    }

    #[test]
    fn an_overlay_with_no_rules_leaves_the_built_in_library_whole() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Library::load(dir.path()).unwrap().rules.len(),
            builtin().rules.len()
        );
        let lib = overlay("# rules to come\n").unwrap();
        assert_eq!(lib.rules.len(), builtin().rules.len());
    }

    #[test]
    fn a_library_of_zero_rules_is_an_error_naming_the_files() {
        let ids: Vec<String> = builtin()
            .rules
            .iter()
            .map(|r| format!("\"{}\"", r.id))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("off.toml");
        std::fs::write(&file, format!("disable = [{}]\n", ids.join(", "))).unwrap();
        let err = Library::load(&file).unwrap_err().to_string();
        assert!(
            err.contains("off.toml: no rule left (1 file read)"),
            "{err}"
        );
        assert!(err.contains("`disable` removed every rule"), "{err}");
        std::fs::write(&file, "replace_builtin = true\n").unwrap();
        let err = Library::load(&file).unwrap_err().to_string();
        assert!(err.contains("off.toml: no rule left"), "{err}");
    }

    #[test]
    fn replace_builtin_keeps_only_the_fleets_own_library() {
        let lib = overlay(&format!("replace_builtin = true\n{}", rule("only", 1))).unwrap();
        let ids: Vec<&str> = lib.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["only"]);
        assert!(lib.states.is_empty());
        let err = overlay(&format!("replace_builtin = \"yes\"\n{}", rule("only", 1)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("fleet.toml:1:"), "{err}");
    }

    #[test]
    fn states_and_aliases_in_an_overlay_replace_the_built_in_ones_by_id() {
        let text = "[[state]]\nid = \"line\"\ndescription = \"busy on load\"\notherwise = \"idle\"\n\
                    [[state.case]]\nvalue = \"production\"\nany = [{ entity = \"host\", metric = \"load1\", above = 2 }]\n\
                    [[alias]]\nname = \"visionking-plc-monitor\"\nalso = [\"plc\"]\n";
        let lib = overlay(text).unwrap();
        let line: Vec<&StateDef> = lib.states.iter().filter(|s| s.id == "line").collect();
        assert_eq!(line.len(), 1);
        assert_eq!(line[0].description, "busy on load");
        assert_eq!(lib.aliases.canonical("plc"), "visionking-plc-monitor");
        assert_eq!(lib.aliases.canonical("pm-sis-surface"), "pm-sis-surface");
    }

    #[test]
    fn an_overlay_rule_without_kind_tunes_only_what_it_names() {
        let lib = overlay(
            "# tune\n[[rule]]\nid = \"log-error-loop\"\nseverity = \"info\"\nparams = { captures = 6 }\n",
        )
        .unwrap();
        let base = builtin();
        let (r, b) = (
            lib.get("log-error-loop").unwrap(),
            base.get("log-error-loop").unwrap(),
        );
        assert!(r.tuned);
        assert_eq!(r.overrides.as_deref(), Some("built-in"));
        assert!(source(r).ends_with("fleet.toml:2"), "{}", source(r));
        assert_eq!(r.severity, Severity::Info);
        assert_eq!((&r.title, &r.kind_name), (&b.title, &b.kind_name));
        assert_eq!(r.select.entities, b.select.entities);
        // `params` merged key by key: the mode, levels and window stay the built-in ones.
        let kind = format!("{:?}", r.kind);
        assert!(kind.contains("captures: 6"), "{kind}");
        assert!(kind.contains("Persistent"), "{kind}");
        assert!(kind.contains("window_s: 3600"), "{kind}");
        assert_eq!(
            format!("{:?}", b.kind).replace("captures: 4", "captures: 6"),
            kind
        );
    }

    #[test]
    fn a_later_overlay_tunes_the_tuned_rule_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            "[[rule]]\nid = \"log-error-loop\"\nparams = { captures = 6 }\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.toml"),
            "[[rule]]\nid = \"log-error-loop\"\nparams = { window = \"2h\" }\n",
        )
        .unwrap();
        let lib = Library::load(dir.path()).unwrap();
        let kind = format!("{:?}", lib.get("log-error-loop").unwrap().kind);
        assert!(kind.contains("captures: 6"), "{kind}");
        assert!(kind.contains("window_s: 7200"), "{kind}");
    }

    #[test]
    fn tuning_an_unknown_rule_or_param_names_file_line_and_column() {
        let err = overlay("# x\n[[rule]]\nid = \"log-eror-loop\"\nparams = { captures = 6 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fleet.toml:3:6"), "{err}");
        assert!(
            err.contains("no earlier rule `log-eror-loop` to tune"),
            "{err}"
        );
        assert!(err.contains("log-error-loop"), "{err}");
        let err = overlay(
            "[[rule]]\nid = \"log-error-loop\"\n\nparams = { captures = 6, captrues = 7 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("fleet.toml:4:26"), "{err}");
        assert!(err.contains("captrues"), "{err}");
    }

    #[test]
    fn an_overlay_state_with_only_cases_replaces_the_cases() {
        let text = "[[state]]\nid = \"line\"\n[[state.case]]\nvalue = \"production\"\n\
                    any = [{ entity = \"container:*\", metric = \"cpu_cores\", sum = true, above = 0.5 }]\n";
        let lib = overlay(text).unwrap();
        let base = builtin();
        let (line, b) = (
            lib.states.iter().find(|s| s.id == "line").unwrap(),
            base.states.iter().find(|s| s.id == "line").unwrap(),
        );
        assert_eq!(line.description, b.description);
        assert_eq!(line.otherwise, b.otherwise);
        assert_eq!(line.cases.len(), 1);
        assert_eq!(line.cases[0].any.len(), 1);
        assert!(line.cases[0].any[0].sum);
        assert_eq!(line.cases[0].any[0].above, Some(0.5));
        // A new state still needs every key.
        let err = overlay("[[state]]\nid = \"shift\"\n[[state.case]]\nvalue = \"day\"\nany = [{ entity = \"host\", metric = \"load1\", above = 1 }]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`description`") || err.contains("description"),
            "{err}"
        );
    }
}
