//! The rule engine: rule kinds are code ([`kinds`]), rule instances are data (`rules/*.toml`).
//!
//! Loading reads every file and reports every mistake at once, with file and line. Evaluation
//! runs each instance over the history window and renders its title and recommendation from the
//! numbers its kind measured.

pub mod advice;
pub mod defaults;
pub mod kinds;
pub mod recheck;
mod render;
pub mod resolution;
pub mod select;
pub mod states;
pub mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use crate::error::did_you_mean;
use crate::error::{Error, Problem, Result};
use crate::history::Window;
use crate::history::metrics::{KNOWN_ATTRIBUTES, KNOWN_METRICS};
use crate::model::{EvidenceValue, Finding, Lifecycle, Severity};
use crate::tomlread::{Ctx, Fields};
use kinds::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target};
use select::Selector;
use states::{Aliases, Gate, GateCheck, StateDef, StateTable};

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub kind_name: &'static str,
    pub kind: Kind,
    pub event: bool,
    pub severity: Severity,
    pub description: String,
    pub select: Selector,
    pub title: String,
    pub recommendation: String,
    /// Recommendations by subject (`[[rule.advice]]`): the first that fits replaces
    /// `recommendation`.
    pub advice: Vec<advice::Advice>,
    /// States that must hold on a node for the rule to speak about it (`when = { line = "idle" }`).
    pub when: Gate,
    /// Captures in a row after which an open finding is reported again as sustained.
    pub escalate_after: Option<u32>,
    /// Captures in a row an open finding must be seen healthy before it resolves.
    pub resolve_after: Option<u32>,
    /// Its finding means patrol is blind to the node (see [`Lifecycle::blinds`]).
    pub blinds: bool,
    /// A rule whose finding on the same subject means this one's recommendation is not deployed.
    pub verify: Option<String>,
    pub file: PathBuf,
    pub line: usize,
}

/// What one evaluation found, and which subjects it could not decide.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    /// Keys ([`Finding::key`]) of subjects a rule could not decide this time.
    pub unchecked: BTreeSet<String>,
    /// (rule id, node) pairs a rule's gate kept it from judging, or that its kind could not judge
    /// at all this time: open findings of that rule about that node stay open ("could not
    /// check"), they do not resolve.
    pub gated: BTreeSet<(String, String)>,
    /// Keys of subjects whose condition still holds with nothing new to say (a setting still
    /// missing): an open finding about one stays open.
    pub holds: BTreeSet<String>,
    /// The derived states this evaluation computed, which a finding's context is compared with.
    pub states: StateTable,
}

impl Evaluation {
    /// Whether an open finding could not be judged at this evaluation.
    pub fn could_not_check(&self, f: &Finding) -> bool {
        self.unchecked.contains(&f.key())
            || f.nodes
                .iter()
                .any(|n| self.gated.contains(&(f.rule_id.clone(), n.clone())))
    }
}

fn unchecked_key(rule: &Rule, c: &Candidate) -> String {
    let probe = Finding {
        rule_id: rule.id.clone(),
        kind: rule.kind_name.to_string(),
        severity: rule.severity,
        nodes: c.nodes.clone(),
        scope: c.scope.clone(),
        entity: c.entity.clone(),
        metric: c.metric.clone(),
        observed_at: c.observed_at,
        title: String::new(),
        evidence: String::new(),
        recommendation: String::new(),
        values: BTreeMap::new(),
        event: c.event,
        event_id: c.event_id.clone(),
        lifecycle: Lifecycle::default(),
        context: BTreeMap::new(),
    };
    probe.key()
}

pub struct Library {
    pub rules: Vec<Rule>,
    pub states: Vec<StateDef>,
    pub aliases: Aliases,
    env: minijinja::Environment<'static>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("rules", &self.rules.len())
            .finish()
    }
}

const RULE_KEYS_DOC: &str = "id, kind, severity, description, select, params, when, escalate_after, resolve_after, blinds, verify, title, recommendation, advice";

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

impl Library {
    /// Loads `*.toml` from a directory (sorted by name), or one file.
    pub fn load(path: &Path) -> Result<Library> {
        Library::load_all(&[path.to_path_buf()])
    }

    /// Loads several directories or files as one library (rule ids must be unique across all).
    /// A library without a single rule is an error: an empty `rules/` directory would otherwise
    /// turn every rule off without a word.
    pub fn load_all(paths: &[PathBuf]) -> Result<Library> {
        let mut sources = Vec::new();
        for path in paths {
            for f in Library::files(path)? {
                let text = crate::fsutil::read_to_string(&f)?;
                sources.push((f, text));
            }
        }
        let library = Library::from_sources(&sources)?;
        if library.rules.is_empty() {
            let named: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            return Err(Error::Usage(format!(
                "{}: no rule defined ({} read): every rule would be off; add [[rule]]s, or remove the directory to use the built-in library",
                named.join(", "),
                crate::units::plural(sources.len(), "file")
            )));
        }
        Ok(library)
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

    /// Parses rule files given as (path, text); every problem of every file is reported.
    /// States and aliases are read from every file first, so a rule may use a state declared
    /// in another file.
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<Library> {
        let env = template::environment();
        let mut states: Vec<StateDef> = Vec::new();
        let mut aliases = Aliases::default();
        let mut early_problems: Vec<Vec<Problem>> = Vec::new();
        for (_, text) in sources {
            let mut ctx = Ctx::new(text);
            if let Some(doc) = ctx.parse() {
                let mut top = Fields::new(doc.get_ref(), doc.span(), "the file");
                for (table, span) in top.tables(&mut ctx, "state") {
                    let f = Fields::new(table, span.clone(), "state");
                    if let Some(state) = states::parse_state(f, &mut ctx) {
                        if states.iter().any(|s| s.id == state.id) {
                            ctx.report(span, format!("state `{}` is declared twice", state.id));
                        } else {
                            states.push(state);
                        }
                    }
                }
                for (table, span) in top.tables(&mut ctx, "alias") {
                    states::parse_alias(Fields::new(table, span, "alias"), &mut ctx, &mut aliases);
                }
            }
            early_problems.push(ctx.problems);
        }
        let mut rules = Vec::new();
        let mut first_by_id: HashMap<String, (PathBuf, usize)> = HashMap::new();
        let mut failures: Vec<Error> = Vec::new();
        for ((path, text), early) in sources.iter().zip(early_problems) {
            let mut ctx = Ctx::new(text);
            if let Some(doc) = ctx.parse() {
                ctx.problems = early;
                let mut top = Fields::new(doc.get_ref(), doc.span(), "the file");
                top.value("state");
                top.value("alias");
                for (table, span) in top.tables(&mut ctx, "rule") {
                    let fields = Fields::new(table, span.clone(), "rule");
                    if let Some(rule) = parse_rule(fields, &mut ctx, path, &env, &states) {
                        match first_by_id.get(&rule.id) {
                            Some((p, l)) => ctx.report(
                                span,
                                format!(
                                    "rule id `{}` is already used at {}:{l}",
                                    rule.id,
                                    p.display()
                                ),
                            ),
                            None => {
                                first_by_id.insert(rule.id.clone(), (path.clone(), rule.line));
                                rules.push(rule);
                            }
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

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Runs every rule over the window; findings sorted by severity, then node, then rule.
    pub fn evaluate(&self, window: &Window, tz: Tz) -> Evaluation {
        self.evaluate_counted(window, tz, &|_| None)
    }

    /// As [`Library::evaluate`], with `count` giving, for a finding with a cumulative value,
    /// the values that count it over its open episode (the ledger's); its texts are rendered
    /// with those.
    pub fn evaluate_counted(
        &self,
        window: &Window,
        tz: Tz,
        count: &dyn Fn(&Finding) -> Option<BTreeMap<String, EvidenceValue>>,
    ) -> Evaluation {
        let states = StateTable::compute(&self.states, window);
        let ctx = EvalContext {
            window,
            tz,
            states: &states,
            aliases: &self.aliases,
        };
        let mut findings = Vec::new();
        let mut unchecked = BTreeSet::new();
        let mut gated = BTreeSet::new();
        let mut holds = BTreeSet::new();
        let mut candidates = Vec::new();
        for rule in &self.rules {
            candidates.clear();
            rule.kind.evaluate(rule, &ctx, &mut candidates);
            let mut closed: Vec<&str> = Vec::new();
            if !rule.when.is_empty() {
                for node in window.nodes() {
                    if rule.when.check(&states, &node.node) != GateCheck::Open {
                        closed.push(&node.node);
                        gated.insert((rule.id.clone(), node.node.clone()));
                    }
                }
            }
            for c in candidates.drain(..) {
                if c.nodes.iter().any(|n| closed.contains(&n.as_str())) {
                    continue;
                }
                if c.unchecked && c.entity == kinds::WHOLE_NODE {
                    for n in &c.nodes {
                        gated.insert((rule.id.clone(), n.clone()));
                    }
                } else if c.unchecked {
                    unchecked.insert(unchecked_key(rule, &c));
                } else if c.holds {
                    holds.insert(unchecked_key(rule, &c));
                } else {
                    findings.push(self.render_counted(rule, c, &ctx, count));
                }
            }
        }
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.nodes.cmp(&b.nodes))
                .then_with(|| a.rule_id.cmp(&b.rule_id))
                .then_with(|| a.entity.cmp(&b.entity))
        });
        Evaluation {
            findings,
            unchecked,
            gated,
            holds,
            states,
        }
    }
}

fn parse_rule(
    mut f: Fields,
    ctx: &mut Ctx,
    path: &Path,
    env: &minijinja::Environment<'static>,
    states: &[StateDef],
) -> Option<Rule> {
    let line = ctx.line_col(f.span.start).0;
    let id = f.string(ctx, "id", true);
    if let Some(id) = &id {
        f.what = format!("rule `{}`", id.get_ref());
        if !is_kebab(id.get_ref()) {
            ctx.report(
                id.span(),
                format!(
                    "rule id `{}` must be kebab-case (a-z, 0-9, -)",
                    id.get_ref()
                ),
            );
        }
    }
    let kind_name = f.string(ctx, "kind", true);
    let spec: Option<&'static KindSpec> = kind_name.as_ref().and_then(|k| {
        let found = kinds::spec(k.get_ref());
        if found.is_none() {
            let names: Vec<&str> = kinds::KINDS.iter().map(|k| k.name).collect();
            ctx.report(
                k.span(),
                format!(
                    "{}: unknown kind `{}`{} (kinds: {})",
                    f.what,
                    k.get_ref(),
                    did_you_mean(k.get_ref(), &names),
                    names.join(", ")
                ),
            );
        }
        found
    });
    let severity = f.string(ctx, "severity", true).and_then(|s| {
        let parsed = Severity::parse(s.get_ref());
        if parsed.is_none() {
            ctx.report(
                s.span(),
                format!(
                    "{}: severity `{}` must be warning, info or suggestion",
                    f.what,
                    s.get_ref()
                ),
            );
        }
        parsed
    });
    let description = f.string(ctx, "description", true);
    let select = parse_select(&mut f, ctx, spec);
    let kind = match (spec, &select) {
        (Some(spec), Some(select)) => {
            let what = format!("{} params", f.what);
            let params = match f.table(ctx, "params", &what) {
                Some(p) => p,
                None => {
                    // An empty table stands in when a kind needs no parameters.
                    static EMPTY: std::sync::OnceLock<toml::de::DeTable<'static>> =
                        std::sync::OnceLock::new();
                    let empty = EMPTY.get_or_init(toml::de::DeTable::new);
                    Fields::new(empty, f.span.clone(), what)
                }
            };
            let mut reader = ParamReader::new(params, &select.metric);
            let kind = (spec.parse)(&mut reader, ctx);
            reader.fields.finish(ctx);
            kind
        }
        _ => {
            f.value("params");
            None
        }
    };
    let mut check_template = |key: &str, f: &mut Fields| -> Option<String> {
        let t = f.string(ctx, key, true)?;
        if let Some(spec) = spec
            && let Err(e) = template::check(env, t.get_ref(), spec.variables)
        {
            ctx.report(t.span(), format!("{}: `{key}` template: {e}", f.what));
        }
        Some(t.into_inner())
    };
    let title = check_template("title", &mut f);
    let recommendation = check_template("recommendation", &mut f);
    let advice = advice::parse(&mut f, ctx, |t| match spec {
        Some(spec) => template::check(env, t, spec.variables),
        None => Ok(()),
    });
    let when = parse_gate(&mut f, ctx, states);
    let escalate_after = f.count(ctx, "escalate_after").map(|n| n.max(1) as u32);
    let resolve_after = f.count(ctx, "resolve_after").map(|n| n.max(1) as u32);
    let blinds = f.boolean(ctx, "blinds").unwrap_or(false);
    let verify = f.string(ctx, "verify", false).map(|v| v.into_inner());
    f.finish(ctx);
    Some(Rule {
        id: id?.into_inner(),
        kind_name: spec?.name,
        kind: kind?,
        event: spec?.event,
        severity: severity?,
        description: description?.into_inner(),
        select: select?,
        title: title?,
        recommendation: recommendation?,
        advice,
        when,
        escalate_after,
        resolve_after,
        blinds,
        verify,
        file: path.to_path_buf(),
        line,
    })
}

fn parse_gate(f: &mut Fields, ctx: &mut Ctx, states: &[StateDef]) -> Gate {
    let what = format!("{} when", f.what);
    let Some(w) = f.table(ctx, "when", &what) else {
        return Gate::default();
    };
    let mut require = Vec::new();
    let mut w = w;
    for key in w.keys() {
        let Some(value) = w.string(ctx, &key, true) else {
            continue;
        };
        match states.iter().find(|s| s.id == key) {
            None => {
                let ids: Vec<&str> = states.iter().map(|s| s.id.as_str()).collect();
                ctx.report(
                    value.span(),
                    format!(
                        "{what}: no state `{key}` is declared{} (declare it with [[state]])",
                        did_you_mean(&key, &ids)
                    ),
                );
            }
            Some(state) if !state.values().contains(&value.get_ref().as_str()) => {
                ctx.report(
                    value.span(),
                    format!(
                        "{what}: state `{key}` is never `{}` (values: {})",
                        value.get_ref(),
                        state.values().join(", ")
                    ),
                );
            }
            Some(_) => require.push((key, value.into_inner())),
        }
    }
    w.finish(ctx);
    Gate { require }
}

fn parse_select(f: &mut Fields, ctx: &mut Ctx, spec: Option<&KindSpec>) -> Option<Selector> {
    let what = format!("{} select", f.what);
    let Some(mut s) = f.table(ctx, "select", &what) else {
        if spec.is_some_and(|k| k.target == Target::Node) {
            return Some(Selector::default());
        }
        ctx.report(
            f.span.clone(),
            format!("{} is missing `select` (keys: {RULE_KEYS_DOC})", f.what),
        );
        return None;
    };
    let strings = |s: &mut Fields, ctx: &mut Ctx, key: &str| -> Vec<String> {
        s.strings(ctx, key)
            .unwrap_or_default()
            .into_iter()
            .map(|x| x.into_inner())
            .collect()
    };
    let entities = strings(&mut s, ctx, "entity");
    let exclude = strings(&mut s, ctx, "exclude");
    let nodes = strings(&mut s, ctx, "nodes");
    let roles = strings(&mut s, ctx, "roles");
    let target = spec.map(|k| k.target);
    let metric_key = if target == Some(Target::Attribute) {
        "attribute"
    } else {
        "metric"
    };
    let metric = match target {
        Some(Target::Node) | None => {
            s.value("metric");
            s.value("attribute");
            String::new()
        }
        Some(t) => match s.string(ctx, metric_key, true) {
            Some(m) => {
                let known = if t == Target::Series {
                    KNOWN_METRICS
                } else {
                    KNOWN_ATTRIBUTES
                };
                if !known.contains(&m.get_ref().as_str()) {
                    ctx.report(
                        m.span(),
                        format!(
                            "{what}: unknown {metric_key} `{}`{}",
                            m.get_ref(),
                            did_you_mean(m.get_ref(), known)
                        ),
                    );
                }
                m.into_inner()
            }
            None => String::new(),
        },
    };
    s.finish(ctx);
    Some(Selector {
        entities,
        exclude,
        metric,
        nodes,
        roles,
    })
}

/// For messages that point at a rule: `rules/memory.toml:12`.
pub fn location(rule: &Rule) -> String {
    format!("{}:{}", rule.file.display(), rule.line)
}

/// Every problem of an [`Error::Invalid`], for tests and `rules check`.
pub fn problems(e: &Error) -> Vec<Problem> {
    match e {
        Error::Invalid { problems, .. } => problems.clone(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tomlread::arbitrary::tomlish;
    use proptest::prelude::*;

    #[test]
    fn an_empty_rules_directory_is_an_error_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = Library::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no rule defined"), "{err}");
        std::fs::write(dir.path().join("states.toml"), "# nothing yet\n").unwrap();
        let err = Library::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no rule defined (1 file read)"), "{err}");
    }

    #[test]
    fn resolve_after_and_blinds_travel_on_the_finding_and_a_bad_count_is_refused() {
        let rule = |extra: &str| {
            format!(
                "[[rule]]\nid = \"r\"\nkind = \"threshold\"\nseverity = \"info\"\ndescription = \"d\"\nselect = {{ entity = \"host\", metric = \"load1\" }}\nparams = {{ above = 1 }}\ntitle = \"t\"\nrecommendation = \"r\"\n{extra}"
            )
        };
        let lib = Library::from_sources(&[(
            PathBuf::from("r.toml"),
            rule("resolve_after = 3\nblinds = true\n"),
        )])
        .unwrap();
        assert_eq!(lib.rules[0].resolve_after, Some(3));
        assert!(lib.rules[0].blinds);
        let err = Library::from_sources(&[(PathBuf::from("r.toml"), rule("resolve_after = -1\n"))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("resolve_after"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn loading_any_rules_text_returns(text in tomlish()) {
            let _ = Library::from_sources(&[(PathBuf::from("r.toml"), text)]);
        }
    }
}
