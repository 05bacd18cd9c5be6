//! Scoring the rule library against a story. An answer key (`*.key.toml`: `[[expect]]` findings
//! and `[[allow]]`ed extras, written from a scenario's story before patrol ran on it) is matched
//! against the finding *episodes* a replay gives — each time the ledger opened a finding until
//! it resolved — so a rule change is judged by what a reader would have been told, not by what
//! one rule computed once. Recall is the share of expectations some episode met; precision the
//! share of episodes that met an expectation or an allowance.
//!
//! The key is read in two steps: [`KeyFile::parse`] checks its syntax and times (every mistake
//! with line and column), [`KeyFile::resolve`] checks its rules and nodes against the library
//! and the fleet replayed, and fixes its times in the fleet's time zone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::select::glob_match;
use crate::error::{Error, Problem, Result, did_you_mean};
use crate::ledger::{Ledger, Status};
use crate::model::Finding;
use crate::tomlread::{Ctx, Fields, Spanned};
use crate::units::{TimeSpec, parse_time};

/// A rule or node name as written in a key, with its place for messages.
#[derive(Debug, Clone)]
pub struct Written {
    pub text: String,
    pub line: usize,
    pub column: usize,
}

/// What state an expected finding must be in at the end of the replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Still open at the end.
    Open,
    /// Resolved (within `resolves_after`/`resolves_by` when given).
    Resolved,
    Any,
}

/// A time as written in a key, kept unresolved until the fleet's time zone and start are known.
#[derive(Debug, Clone, Copy)]
struct When {
    spec: TimeSpec,
    line: usize,
    column: usize,
}

#[derive(Debug, Clone)]
struct ExpectSpec {
    id: String,
    why: String,
    rules: Vec<Written>,
    nodes: Vec<Written>,
    subject: Option<String>,
    opens_after: Option<When>,
    opens_by: Option<When>,
    lifecycle: Lifecycle,
    resolves_after: Option<When>,
    resolves_by: Option<When>,
    repeats: bool,
    line: usize,
}

#[derive(Debug, Clone)]
struct AllowSpec {
    why: String,
    rules: Vec<Written>,
    nodes: Vec<Written>,
    subject: Option<String>,
    opens_after: Option<When>,
    opens_by: Option<When>,
    line: usize,
}

/// An answer key as read, before its names and times are checked against a fleet.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub path: PathBuf,
    /// The scenario it is about, relative to the key's directory as written; absent for a key
    /// over an archive.
    pub scenario: Option<PathBuf>,
    expects: Vec<ExpectSpec>,
    allows: Vec<AllowSpec>,
}

/// From when to when (either end open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Bounds {
    pub after: Option<DateTime<Utc>>,
    pub by: Option<DateTime<Utc>>,
}

impl Bounds {
    fn holds(&self, t: DateTime<Utc>) -> bool {
        self.after.is_none_or(|a| t >= a) && self.by.is_none_or(|b| t <= b)
    }

    /// How far `t` lies outside the bounds (zero inside).
    fn distance(&self, t: DateTime<Utc>) -> i64 {
        match (self.after, self.by) {
            (Some(a), _) if t < a => (a - t).num_seconds(),
            (_, Some(b)) if t > b => (t - b).num_seconds(),
            _ => 0,
        }
    }
}

/// One expectation about one node (an `[[expect]]` naming several nodes is one per node).
#[derive(Debug, Clone, Serialize)]
pub struct Expect {
    /// The key's id, with `@node` when the key named several nodes.
    pub id: String,
    pub why: String,
    pub rules: Vec<String>,
    pub node: String,
    pub subject: Option<String>,
    pub opens: Bounds,
    pub lifecycle: Lifecycle,
    pub resolves: Bounds,
    pub repeats: bool,
    pub line: usize,
}

/// Something fair to say that is not a problem of the story.
#[derive(Debug, Clone, Serialize)]
pub struct Allow {
    pub why: String,
    pub rules: Vec<String>,
    pub nodes: Vec<String>,
    pub subject: Option<String>,
    pub opens: Bounds,
    pub line: usize,
}

/// A key checked against a fleet: what it expects and allows, in UTC.
#[derive(Debug, Clone)]
pub struct Key {
    pub path: PathBuf,
    pub expects: Vec<Expect>,
    pub allows: Vec<Allow>,
}

/// What a key is checked against: the library's rule ids, the fleet's nodes, and how its times
/// read (local times in `tz`, `+6h` after `start`).
pub struct Context<'a> {
    pub tz: Tz,
    pub start: DateTime<Utc>,
    pub rules: &'a [&'a str],
    pub nodes: &'a [String],
}

fn written(ctx: &Ctx, s: Spanned<String>) -> Written {
    let (line, column) = ctx.line_col(s.span().start);
    Written {
        text: s.into_inner(),
        line,
        column,
    }
}

/// A time field: its syntax checked now, resolved later.
fn when(f: &mut Fields, ctx: &mut Ctx, key: &str) -> Option<When> {
    let s = f.string(ctx, key, false)?;
    match parse_time(s.get_ref()) {
        Ok(spec) => {
            let (line, column) = ctx.line_col(s.span().start);
            Some(When { spec, line, column })
        }
        Err(e) => {
            ctx.report(s.span(), format!("{}: `{key}`: {e}", f.what));
            None
        }
    }
}

/// `rule` or `node`: a name or a list of names, none empty.
fn names(f: &mut Fields, ctx: &mut Ctx, key: &str, required: bool) -> Vec<Written> {
    let Some(list) = f.strings(ctx, key) else {
        if required {
            ctx.report(f.span.clone(), format!("{} is missing `{key}`", f.what));
        }
        return Vec::new();
    };
    if list.is_empty() {
        ctx.report(f.span.clone(), format!("{}: `{key}` lists nothing", f.what));
    }
    list.into_iter()
        .filter_map(|s| {
            if s.get_ref().trim().is_empty() {
                ctx.report(s.span(), format!("{}: `{key}` must not be empty", f.what));
                None
            } else {
                Some(written(ctx, s))
            }
        })
        .collect()
}

impl KeyFile {
    pub fn load(path: &Path) -> Result<KeyFile> {
        let text = crate::fsutil::read_to_string(path)?;
        KeyFile::parse(path, &text)
    }

    /// Reads a key; every mistake of syntax, unknown key or unreadable time comes back at once,
    /// each with its line and column.
    pub fn parse(path: &Path, text: &str) -> Result<KeyFile> {
        let mut ctx = Ctx::new(text);
        let mut key = KeyFile {
            path: path.to_path_buf(),
            scenario: None,
            expects: Vec::new(),
            allows: Vec::new(),
        };
        if let Some(doc) = ctx.parse() {
            let mut top = Fields::new(doc.get_ref(), doc.span(), "the file");
            if let Some(mut head) = top.table(&mut ctx, "key", "[key]") {
                key.scenario = head
                    .string(&mut ctx, "scenario", false)
                    .map(|s| PathBuf::from(s.into_inner()));
                head.finish(&mut ctx);
            }
            let mut ids: BTreeMap<String, usize> = BTreeMap::new();
            for (table, span) in top.tables(&mut ctx, "expect") {
                let line = ctx.line_col(span.start).0;
                let mut f = Fields::new(table, span, format!("[[expect]] at line {line}"));
                let id = f.string(&mut ctx, "id", true);
                let why = f.string(&mut ctx, "why", false);
                let rules = names(&mut f, &mut ctx, "rule", true);
                let nodes = names(&mut f, &mut ctx, "node", true);
                let subject = f.string(&mut ctx, "subject", false);
                let opens_after = when(&mut f, &mut ctx, "opens_after");
                let opens_by = when(&mut f, &mut ctx, "opens_by");
                let resolves_after = when(&mut f, &mut ctx, "resolves_after");
                let resolves_by = when(&mut f, &mut ctx, "resolves_by");
                let lifecycle = match f.string(&mut ctx, "lifecycle", false) {
                    None => Some(Lifecycle::Any),
                    Some(s) => match s.get_ref().as_str() {
                        "open" => Some(Lifecycle::Open),
                        "resolved" => Some(Lifecycle::Resolved),
                        "any" => Some(Lifecycle::Any),
                        other => {
                            ctx.report(
                                s.span(),
                                format!(
                                    "{}: `lifecycle` is \"open\", \"resolved\" or \"any\", not `{other}`",
                                    f.what
                                ),
                            );
                            None
                        }
                    },
                };
                if lifecycle != Some(Lifecycle::Resolved)
                    && let Some(w) = resolves_after.or(resolves_by)
                {
                    ctx.problems.push(Problem {
                        line: w.line,
                        column: w.column,
                        message: format!(
                            "{}: `resolves_after`/`resolves_by` need `lifecycle = \"resolved\"`",
                            f.what
                        ),
                    });
                }
                let repeats = f.boolean(&mut ctx, "repeats").unwrap_or(false);
                f.finish(&mut ctx);
                let Some(id) = id else { continue };
                if let Some(first) = ids.get(id.get_ref()) {
                    ctx.report(
                        id.span(),
                        format!(
                            "[[expect]] at line {line}: id `{}` is used at line {first} too",
                            id.get_ref()
                        ),
                    );
                }
                ids.insert(id.get_ref().clone(), line);
                if let Some(lifecycle) = lifecycle {
                    key.expects.push(ExpectSpec {
                        id: id.into_inner(),
                        why: why.map(Spanned::into_inner).unwrap_or_default(),
                        rules,
                        nodes,
                        subject: subject.map(Spanned::into_inner),
                        opens_after,
                        opens_by,
                        lifecycle,
                        resolves_after,
                        resolves_by,
                        repeats,
                        line,
                    });
                }
            }
            for (table, span) in top.tables(&mut ctx, "allow") {
                let line = ctx.line_col(span.start).0;
                let mut f = Fields::new(table, span, format!("[[allow]] at line {line}"));
                let why = f.string(&mut ctx, "why", false);
                let rules = names(&mut f, &mut ctx, "rule", true);
                let nodes = names(&mut f, &mut ctx, "node", false);
                let subject = f.string(&mut ctx, "subject", false);
                let opens_after = when(&mut f, &mut ctx, "opens_after");
                let opens_by = when(&mut f, &mut ctx, "opens_by");
                f.finish(&mut ctx);
                key.allows.push(AllowSpec {
                    why: why.map(Spanned::into_inner).unwrap_or_default(),
                    rules,
                    nodes,
                    subject: subject.map(Spanned::into_inner),
                    opens_after,
                    opens_by,
                    line,
                });
            }
            top.finish(&mut ctx);
        }
        if !ctx.problems.is_empty() {
            return Err(Error::Invalid {
                path: path.to_path_buf(),
                problems: ctx.problems,
            });
        }
        Ok(key)
    }

    /// The scenario the key names, relative to the key's own directory.
    pub fn scenario_path(&self) -> Option<PathBuf> {
        let dir = self.path.parent().unwrap_or(Path::new(""));
        self.scenario.as_ref().map(|s| dir.join(s))
    }

    /// Checks every rule and node against the library and the fleet (an unknown one is an
    /// error with its line, column and a "did you mean"), and fixes the times.
    pub fn resolve(&self, c: &Context) -> Result<Key> {
        let mut problems = Vec::new();
        let mut check = |w: &Written, what: &str, known: &[&str]| {
            let ok = if w.text.contains('*') || w.text.contains('?') {
                known.iter().any(|k| glob_match(&w.text, k))
            } else {
                known.contains(&w.text.as_str())
            };
            if !ok {
                problems.push(Problem {
                    line: w.line,
                    column: w.column,
                    message: format!(
                        "no {what} `{}` {}{}",
                        w.text,
                        if what == "rule" {
                            "in the library"
                        } else {
                            "in the fleet"
                        },
                        did_you_mean(&w.text, known)
                    ),
                });
            }
        };
        let nodes: Vec<&str> = c.nodes.iter().map(String::as_str).collect();
        for w in self.expects.iter().flat_map(|e| &e.rules) {
            check(w, "rule", c.rules);
        }
        for w in self.allows.iter().flat_map(|a| &a.rules) {
            check(w, "rule", c.rules);
        }
        for w in self.expects.iter().flat_map(|e| &e.nodes) {
            check(w, "node", &nodes);
        }
        for w in self.allows.iter().flat_map(|a| &a.nodes) {
            check(w, "node", &nodes);
        }
        let at = |w: &Option<When>| w.map(|w| w.spec.resolve(c.tz, c.start));
        let bounds = |after: &Option<When>, by: &Option<When>, problems: &mut Vec<Problem>| {
            let b = Bounds {
                after: at(after),
                by: at(by),
            };
            if let (Some(a), Some(z), Some(w)) = (b.after, b.by, by)
                && z < a
            {
                problems.push(Problem {
                    line: w.line,
                    column: w.column,
                    message: "this time is before the `…_after` time it closes".into(),
                });
            }
            b
        };
        let mut expects = Vec::new();
        for e in &self.expects {
            let opens = bounds(&e.opens_after, &e.opens_by, &mut problems);
            let resolves = bounds(&e.resolves_after, &e.resolves_by, &mut problems);
            for n in &e.nodes {
                expects.push(Expect {
                    id: if e.nodes.len() > 1 {
                        format!("{}@{}", e.id, n.text)
                    } else {
                        e.id.clone()
                    },
                    why: e.why.clone(),
                    rules: e.rules.iter().map(|r| r.text.clone()).collect(),
                    node: n.text.clone(),
                    subject: e.subject.clone(),
                    opens,
                    lifecycle: e.lifecycle,
                    resolves,
                    repeats: e.repeats,
                    line: e.line,
                });
            }
        }
        let allows = self
            .allows
            .iter()
            .map(|a| Allow {
                why: a.why.clone(),
                rules: a.rules.iter().map(|r| r.text.clone()).collect(),
                nodes: if a.nodes.is_empty() {
                    vec!["*".into()]
                } else {
                    a.nodes.iter().map(|n| n.text.clone()).collect()
                },
                subject: a.subject.clone(),
                opens: bounds(&a.opens_after, &a.opens_by, &mut problems),
                line: a.line,
            })
            .collect();
        if !problems.is_empty() {
            problems.sort_by_key(|p| (p.line, p.column));
            return Err(Error::Invalid {
                path: self.path.clone(),
                problems,
            });
        }
        Ok(Key {
            path: self.path.clone(),
            expects,
            allows,
        })
    }
}

/// One thing an episode said: a rule about a node and a subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    pub rule: String,
    pub node: String,
    pub subject: String,
}

/// Everything a finding says: its rule about each of its nodes and subjects, and each facet's
/// rule about the facet's nodes and subject.
fn claims(f: &Finding) -> Vec<Claim> {
    let mut out = Vec::new();
    for node in f.all_nodes() {
        for subject in f.subjects() {
            out.push(Claim {
                rule: f.rule_id.clone(),
                node: node.clone(),
                subject: subject.to_string(),
            });
        }
    }
    for facet in &f.facets {
        for node in &facet.nodes {
            out.push(Claim {
                rule: facet.rule_id.clone(),
                node: node.clone(),
                subject: facet.entity.clone(),
            });
        }
    }
    out
}

/// One finding from when the ledger opened it until it resolved (or the replay ended).
#[derive(Debug, Clone, Serialize)]
pub struct Episode {
    pub rule: String,
    pub severity: String,
    pub nodes: Vec<String>,
    pub subject: String,
    pub title: String,
    pub opened: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    /// A one-off event (a reboot, a drop): told once, never open.
    pub event: bool,
    /// Why it ended without resolving, when it did (taken into a role's baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What it said over its life, each with when it first said it.
    #[serde(skip)]
    pub claims: BTreeMap<Claim, DateTime<Utc>>,
    #[serde(skip)]
    finding: Option<Finding>,
    #[serde(skip)]
    merged: bool,
}

impl Episode {
    /// An episode of `f` first said at `at` (for tests and hand-made episodes).
    pub fn of(f: &Finding, at: DateTime<Utc>) -> Episode {
        let mut e = Episode {
            rule: f.rule_id.clone(),
            severity: f.severity.label().to_string(),
            nodes: f.all_nodes().cloned().collect(),
            subject: f.entity.clone(),
            title: f.title.clone(),
            opened: at,
            resolved: None,
            event: f.event,
            note: None,
            claims: BTreeMap::new(),
            finding: None,
            merged: false,
        };
        e.take(f, at);
        e
    }

    /// Learns what `f` says now (a group grown, a facet added).
    fn take(&mut self, f: &Finding, at: DateTime<Utc>) {
        for c in claims(f) {
            let t = self.claims.entry(c).or_insert(at);
            *t = (*t).min(at);
        }
        let mut nodes: BTreeSet<String> = self.nodes.iter().cloned().collect();
        nodes.extend(f.all_nodes().cloned());
        self.nodes = nodes.into_iter().collect();
        self.severity = f.severity.label().to_string();
        self.title = f.title.clone();
        self.finding = Some(f.clone());
    }
}

/// Follows the ledger through a replay and cuts its entries into episodes. An entry the
/// ledger takes into another (a node's finding become part of a group, a finding folded into
/// another) is one episode with the entry that took it in, which keeps what it said.
#[derive(Default)]
pub struct Tracker {
    episodes: Vec<Episode>,
    open: BTreeMap<String, usize>,
}

impl Tracker {
    /// Reads the ledger after the analysis of the round whose captures ran from `first` to `at`.
    /// Whatever the ledger stamped within the round counts from `first`: a key says "by 15:00"
    /// of the 15:00 round, not of its last node captured seconds later.
    pub fn observe(&mut self, ledger: &Ledger, at: DateTime<Utc>, first: DateTime<Utc>) {
        let in_round = |t: DateTime<Utc>| if t >= first && t <= at { first } else { t };
        let now_open: BTreeMap<&String, &crate::ledger::Entry> = ledger
            .entries
            .iter()
            .filter(|(_, e)| e.status == Status::Open)
            .collect();
        let mut taken = Vec::new();
        let gone: Vec<String> = self
            .open
            .keys()
            .filter(|k| !now_open.contains_key(k))
            .cloned()
            .collect();
        for key in gone {
            let Some(idx) = self.open.remove(&key) else {
                continue;
            };
            match ledger.entries.get(&key) {
                Some(e) => {
                    self.episodes[idx].resolved = Some(in_round(e.resolved_at.unwrap_or(at)));
                }
                None => taken.push(idx),
            }
        }
        for (key, e) in &now_open {
            let idx = match self.open.get(*key) {
                Some(&i) => i,
                None => {
                    let mut ep = Episode::of(&e.finding, first);
                    ep.opened = in_round(e.episode_start().min(at));
                    self.episodes.push(ep);
                    self.open.insert((*key).clone(), self.episodes.len() - 1);
                    self.episodes.len() - 1
                }
            };
            self.episodes[idx].take(&e.finding, first);
        }
        for idx in taken {
            let Some(old) = self.episodes[idx].finding.clone() else {
                continue;
            };
            let heir = now_open
                .iter()
                .find(|(_, e)| e.finding.continues(&old) || e.finding.says(&old))
                .and_then(|(k, _)| self.open.get(*k).copied());
            match heir {
                Some(h) if h != idx => {
                    let (claims, opened) =
                        (self.episodes[idx].claims.clone(), self.episodes[idx].opened);
                    let heir = &mut self.episodes[h];
                    for (c, t) in claims {
                        let e = heir.claims.entry(c).or_insert(t);
                        *e = (*e).min(t);
                    }
                    if heir.rule == old.rule_id {
                        heir.opened = heir.opened.min(opened);
                    }
                    self.episodes[idx].merged = true;
                }
                _ => {
                    let ep = &mut self.episodes[idx];
                    ep.resolved = Some(first);
                    ep.note = Some("taken into its role's baseline".into());
                }
            }
        }
    }

    /// Every episode, in the order they opened.
    pub fn finish(self) -> Vec<Episode> {
        let mut out: Vec<Episode> = self.episodes.into_iter().filter(|e| !e.merged).collect();
        out.sort_by(|a, b| a.opened.cmp(&b.opened).then(a.rule.cmp(&b.rule)));
        out
    }
}

/// Why an episode about an expectation did not meet it.
#[derive(Debug, Clone, PartialEq)]
pub enum Misfit {
    Early {
        said: DateTime<Utc>,
        after: DateTime<Utc>,
    },
    Late {
        said: DateTime<Utc>,
        by: DateTime<Utc>,
    },
    /// Expected open at the end, it resolved.
    Flapped { resolved: DateTime<Utc> },
    /// Expected open at the end, it is an event.
    Event,
    /// Expected to resolve, it is still open.
    StillOpen,
    ResolvedEarly {
        resolved: DateTime<Utc>,
        after: DateTime<Utc>,
    },
    ResolvedLate {
        resolved: DateTime<Utc>,
        by: DateTime<Utc>,
    },
}

impl Misfit {
    pub fn describe(&self, tz: Tz) -> String {
        let t = |at: &DateTime<Utc>| stamp(*at, tz);
        match self {
            Misfit::Early { said, after } => {
                format!("early: said at {}, expected from {}", t(said), t(after))
            }
            Misfit::Late { said, by } => {
                format!("late: said at {}, expected by {}", t(said), t(by))
            }
            Misfit::Flapped { resolved } => format!(
                "flapped: resolved at {}, expected open at the end",
                t(resolved)
            ),
            Misfit::Event => "an event, expected open at the end".into(),
            Misfit::StillOpen => "still open at the end, expected to resolve".into(),
            Misfit::ResolvedEarly { resolved, after } => format!(
                "resolved early: at {}, expected from {}",
                t(resolved),
                t(after)
            ),
            Misfit::ResolvedLate { resolved, by } => {
                format!("resolved late: at {}, expected by {}", t(resolved), t(by))
            }
        }
    }
}

/// A time as keys write it, in the fleet's time zone.
pub fn stamp(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn rule_fits(rules: &[String], rule: &str) -> bool {
    rules.iter().any(|r| glob_match(r, rule))
}

fn subject_fits(subject: &Option<String>, s: &str) -> bool {
    subject.as_ref().is_none_or(|g| glob_match(g, s))
}

/// When the episode first said the expectation's rule about its node and subject, if it did.
fn said(ep: &Episode, x: &Expect) -> Option<DateTime<Utc>> {
    ep.claims
        .iter()
        .filter(|(c, _)| {
            rule_fits(&x.rules, &c.rule)
                && glob_match(&x.node, &c.node)
                && subject_fits(&x.subject, &c.subject)
        })
        .map(|(_, t)| *t)
        .min()
}

fn window_misfit(said: DateTime<Utc>, x: &Expect) -> Option<Misfit> {
    match (x.opens.after, x.opens.by) {
        (Some(after), _) if said < after => Some(Misfit::Early { said, after }),
        (_, Some(by)) if said > by => Some(Misfit::Late { said, by }),
        _ => None,
    }
}

fn lifecycle_misfit(ep: &Episode, x: &Expect) -> Option<Misfit> {
    match x.lifecycle {
        Lifecycle::Any => None,
        Lifecycle::Open if ep.event => Some(Misfit::Event),
        Lifecycle::Open => ep.resolved.map(|resolved| Misfit::Flapped { resolved }),
        Lifecycle::Resolved => {
            let resolved = match ep.resolved {
                Some(r) => r,
                None if ep.event => ep.opened,
                None => return Some(Misfit::StillOpen),
            };
            match (x.resolves.after, x.resolves.by) {
                (Some(after), _) if resolved < after => {
                    Some(Misfit::ResolvedEarly { resolved, after })
                }
                (_, Some(by)) if resolved > by => Some(Misfit::ResolvedLate { resolved, by }),
                _ => None,
            }
        }
    }
}

/// Why one episode about an expectation does not meet it (`None`: it does).
pub fn misfit(ep: &Episode, x: &Expect) -> Option<Misfit> {
    let said = said(ep, x)?;
    window_misfit(said, x).or_else(|| lifecycle_misfit(ep, x))
}

/// An expectation met.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub expect: String,
    /// The episodes that met it (indices into the score's episodes).
    pub episodes: Vec<usize>,
}

/// An expectation no episode met, with the nearest episode and why it did not count.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub expect: String,
    pub why: String,
    pub wanted: String,
    pub nearest: Option<usize>,
    pub reason: String,
}

/// An episode neither expected nor allowed, and why it did not count.
#[derive(Debug, Clone, Serialize)]
pub struct Extra {
    pub episode: usize,
    pub reason: String,
}

/// A key scored against the episodes of one replay.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub expectations: usize,
    pub hit: usize,
    pub episodes: Vec<Episode>,
    pub correct: usize,
    pub hits: Vec<Hit>,
    pub misses: Vec<Miss>,
    pub extras: Vec<Extra>,
}

/// `n / d` as a percentage; nothing to get wrong counts as 100 %.
pub fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        100.0
    } else {
        n as f64 * 100.0 / d as f64
    }
}

impl Score {
    pub fn recall(&self) -> f64 {
        pct(self.hit, self.expectations)
    }

    pub fn precision(&self) -> f64 {
        pct(self.correct, self.episodes.len())
    }
}

/// What an expectation asks for, in words.
pub fn wanted(x: &Expect, tz: Tz) -> String {
    let mut s = format!("{} about {}", x.rules.join(" or "), x.node);
    if let Some(subject) = &x.subject {
        s.push_str(&format!(" ({subject})"));
    }
    match (x.opens.after, x.opens.by) {
        (Some(a), Some(b)) => {
            s.push_str(&format!(", opening {} to {}", stamp(a, tz), stamp(b, tz)))
        }
        (Some(a), None) => s.push_str(&format!(", opening from {}", stamp(a, tz))),
        (None, Some(b)) => s.push_str(&format!(", opening by {}", stamp(b, tz))),
        (None, None) => {}
    }
    s.push_str(match x.lifecycle {
        Lifecycle::Open => ", open at the end",
        Lifecycle::Resolved => ", resolved",
        Lifecycle::Any => "",
    });
    if x.repeats {
        s.push_str(" (may repeat)");
    }
    s
}

/// Matches a key against a replay's episodes.
pub fn score(key: &Key, episodes: Vec<Episode>, tz: Tz) -> Score {
    let mut correct = vec![false; episodes.len()];
    let mut hits = Vec::new();
    let mut misses = Vec::new();
    for x in &key.expects {
        let mut about: Vec<(usize, DateTime<Utc>)> = episodes
            .iter()
            .enumerate()
            .filter_map(|(i, ep)| said(ep, x).map(|t| (i, t)))
            .collect();
        about.sort_by_key(|(i, t)| (*t, *i));
        let met: Vec<usize> = if x.repeats {
            // The problem comes and goes: every episode from its start is right; it is met
            // when the first opens in its window and the last ends as the key says.
            let from: Vec<(usize, DateTime<Utc>)> = about
                .iter()
                .copied()
                .filter(|(_, t)| x.opens.after.is_none_or(|a| *t >= a))
                .collect();
            for (i, _) in &from {
                correct[*i] = true;
            }
            let first = from
                .first()
                .and_then(|(i, t)| window_misfit(*t, x).map(|m| (*i, m)));
            let last = from
                .last()
                .and_then(|(i, _)| lifecycle_misfit(&episodes[*i], x).map(|m| (*i, m)));
            match first.or(last) {
                _ if from.is_empty() => Vec::new(),
                None => from.iter().map(|(i, _)| *i).collect(),
                Some((i, m)) => {
                    misses.push(Miss {
                        expect: x.id.clone(),
                        why: x.why.clone(),
                        wanted: wanted(x, tz),
                        nearest: Some(i),
                        reason: m.describe(tz),
                    });
                    continue;
                }
            }
        } else {
            about
                .iter()
                .filter(|(i, _)| misfit(&episodes[*i], x).is_none())
                .map(|(i, _)| *i)
                .collect()
        };
        for i in &met {
            correct[*i] = true;
        }
        if met.is_empty() {
            let (nearest, reason) = nearest(&episodes, x, tz);
            misses.push(Miss {
                expect: x.id.clone(),
                why: x.why.clone(),
                wanted: wanted(x, tz),
                nearest,
                reason,
            });
        } else {
            hits.push(Hit {
                expect: x.id.clone(),
                episodes: met,
            });
        }
    }
    for (i, ep) in episodes.iter().enumerate() {
        if !correct[i] && key.allows.iter().any(|a| allowed(ep, a)) {
            correct[i] = true;
        }
    }
    let extras = episodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !correct[*i])
        .map(|(i, ep)| Extra {
            episode: i,
            reason: key
                .expects
                .iter()
                .find_map(|x| {
                    let said = said(ep, x)?;
                    let m = if x.repeats {
                        window_misfit(said, x)?
                    } else {
                        misfit(ep, x)?
                    };
                    Some(format!("{} for `{}`", m.describe(tz), x.id))
                })
                .unwrap_or_else(|| "no expectation or allowance says it".into()),
        })
        .collect();
    Score {
        expectations: key.expects.len(),
        hit: hits.len(),
        correct: correct.iter().filter(|c| **c).count(),
        episodes,
        hits,
        misses,
        extras,
    }
}

fn allowed(ep: &Episode, a: &Allow) -> bool {
    ep.claims.iter().any(|(c, t)| {
        rule_fits(&a.rules, &c.rule)
            && a.nodes.iter().any(|n| glob_match(n, &c.node))
            && subject_fits(&a.subject, &c.subject)
            && a.opens.holds(*t)
    })
}

/// The episode nearest to meeting a missed expectation — about it but at the wrong time or in
/// the wrong state, else the right rule and node on another subject, else the rule on another
/// node, else another rule about the node — and why it did not count.
fn nearest(episodes: &[Episode], x: &Expect, tz: Tz) -> (Option<usize>, String) {
    let mut best: Option<(u8, i64, usize, String)> = None;
    for (i, ep) in episodes.iter().enumerate() {
        for (c, t) in &ep.claims {
            let (rule, node, subject) = (
                rule_fits(&x.rules, &c.rule),
                glob_match(&x.node, &c.node),
                subject_fits(&x.subject, &c.subject),
            );
            let (rank, reason) = match (rule, node, subject) {
                (true, true, true) => {
                    let reason = misfit(ep, x)
                        .map(|m| m.describe(tz))
                        .unwrap_or_else(|| "it does not fit".into());
                    (0, reason)
                }
                (true, true, false) => (1, format!("wrong subject: {}", c.subject)),
                (true, false, _) => (2, format!("wrong node: about {}", c.node)),
                (false, true, true) => (3, format!("another rule: {}", c.rule)),
                _ => continue,
            };
            let candidate = (rank, x.opens.distance(*t), i, reason);
            if best
                .as_ref()
                .is_none_or(|b| (candidate.0, candidate.1) < (b.0, b.1))
            {
                best = Some(candidate);
            }
        }
    }
    match best {
        Some((_, _, i, reason)) => (Some(i), reason),
        None => (
            None,
            format!(
                "no episode of {} and none about {}",
                x.rules.join(" or "),
                x.node
            ),
        ),
    }
}

#[cfg(test)]
mod tests;
