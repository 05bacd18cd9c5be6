//! Answer keys: read in two steps, [`KeyFile::parse`] (syntax and times, every mistake with line
//! and column) and [`KeyFile::resolve`] (rules and nodes against the library and the fleet, times
//! fixed in the fleet's time zone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::error::{Error, Problem, Result, did_you_mean};
use crate::rules::select::glob_match;
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
    pub(super) fn holds(&self, t: DateTime<Utc>) -> bool {
        self.after.is_none_or(|a| t >= a) && self.by.is_none_or(|b| t <= b)
    }

    /// How far `t` lies outside the bounds (zero inside).
    pub(super) fn distance(&self, t: DateTime<Utc>) -> i64 {
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
        ctx.into_result(path)?;
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
