//! The rule engine: rule kinds are code ([`kinds`]), rule instances are data (`rules/*.toml`).
//!
//! Loading reads every file and reports every mistake at once, with file and line. Evaluation
//! runs each instance over the history window and renders its title and recommendation from the
//! numbers its kind measured.

pub mod advice;
pub mod defaults;
pub mod gate_window;
pub mod group;
pub mod kinds;
mod load;
pub(crate) mod load_follow;
mod parse;
pub mod phrase;
mod render;
pub mod resolution;
pub mod score;
pub mod select;
pub mod states;
pub mod template;

pub use load::source;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use crate::error::did_you_mean;
use crate::error::{Error, Problem};
use crate::history::Window;
use crate::history::metrics::{KNOWN_ATTRIBUTES, KNOWN_METRICS};
use crate::model::{EvidenceValue, Finding, Lifecycle, Severity};
use crate::tomlread::{Ctx, Fields};
pub use group::AcrossNodes;
use kinds::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target};
use select::Selector;
use states::{Aliases, Gate, GateCheck, StateDef, StateTable};

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub kind_name: &'static str,
    pub kind: Kind,
    /// The longest window its parameters ask for, in seconds ([`Library::history_span`]).
    pub lookback_s: f64,
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
    /// Work only makes its condition likelier (see [`Lifecycle::worse_under_work`]).
    pub worse_under_work: bool,
    /// What its finding costs if nobody acts (`impact`; absent: the kind's default).
    pub impact: Option<crate::model::Impact>,
    /// A rule whose finding on the same subject means this one's recommendation is not deployed.
    pub verify: Option<String>,
    /// What the same finding on several nodes of a role becomes ([`group`]).
    pub across_nodes: AcrossNodes,
    /// Findings of one family about one subject are one problem: they fold into the most severe.
    pub family: Option<String>,
    /// Rules whose finding about the same node (and subject, or the whole node) this one's
    /// finding folds into as evidence: a reboot lists what it released.
    pub folds_into: Vec<String>,
    /// Where the rule this one replaced came from (`built-in`, or `file:line`), when a
    /// fleet's overlay redefined an id.
    pub overrides: Option<String>,
    /// Whether the overlay that overrides it named only what it changes (no `kind`): the rest
    /// is the earlier rule's.
    pub tuned: bool,
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
    /// Findings grouped across nodes that are their role's baseline: not news, not reported,
    /// but what they say is not resolved either ([`group`]).
    pub baseline: Vec<Finding>,
}

impl Evaluation {
    /// Whether an open finding could not be judged at this evaluation.
    pub fn could_not_check(&self, f: &Finding) -> bool {
        // A finding about several nodes could not be checked when its rule could not decide
        // about any one of them.
        let about_one = |n: &String| self.unchecked.contains(&f.on_node(n).key());
        self.unchecked.contains(&f.key())
            || (f.nodes.len() > 1 && f.nodes.iter().any(about_one))
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
        raised_in_steady_rest: Default::default(),
        members: Vec::new(),
        facets: Vec::new(),
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

const RULE_KEYS_DOC: &str = "id, kind, severity, description, select, params, when, escalate_after, resolve_after, blinds, worse_under_work, impact, verify, across_nodes, family, folds_into, title, recommendation, advice";

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

impl Library {
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The history a run keeps: the configured window, or longer when a rule's own window asks
    /// for more (a daily cleanup is only seen whole by a window a little longer than a day).
    pub fn history_span(&self, configured: chrono::Duration) -> chrono::Duration {
        let longest = self.rules.iter().map(|r| r.lookback_s).fold(0.0, f64::max);
        configured.max(chrono::Duration::seconds(longest.ceil() as i64))
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
            state_defs: &self.states,
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
        let grouped = group::group(self, window, findings);
        Evaluation {
            findings: grouped.findings,
            unchecked,
            gated,
            holds,
            states,
            baseline: grouped.baseline,
        }
    }
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

    #[test]
    fn grouping_keys_are_read_and_a_bad_one_is_refused_with_its_name() {
        let rule = |id: &str, extra: &str| {
            format!(
                "[[rule]]\nid = \"{id}\"\nkind = \"threshold\"\nseverity = \"info\"\ndescription = \"d\"\nselect = {{ entity = \"host\", metric = \"load1\" }}\nparams = {{ above = 1 }}\ntitle = \"t\"\nrecommendation = \"r\"\n{extra}"
            )
        };
        let text = rule("a", "across_nodes = \"baseline\"\nfamily = \"load\"\n")
            + &rule("b", "folds_into = \"a\"\n");
        let lib = Library::from_sources(&[(PathBuf::from("r.toml"), text)]).unwrap();
        assert_eq!(lib.rules[0].across_nodes, AcrossNodes::Baseline);
        assert_eq!(lib.rules[0].family.as_deref(), Some("load"));
        assert_eq!(lib.rules[1].folds_into, vec!["a".to_string()]);
        for (extra, says) in [
            ("across_nodes = \"sometimes\"\n", "across_nodes"),
            (
                "folds_into = \"nope\"\n",
                "`folds_into` names no rule `nope`",
            ),
            ("folds_into = \"a\"\n", "`folds_into` names the rule itself"),
        ] {
            let err = Library::from_sources(&[(PathBuf::from("r.toml"), rule("a", extra))])
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn loading_any_rules_text_returns(text in tomlish()) {
            let _ = Library::from_sources(&[(PathBuf::from("r.toml"), text)]);
        }
    }
}
