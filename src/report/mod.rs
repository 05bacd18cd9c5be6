//! The improvements report: each analysis that has something to say appends one section to the
//! rolling `improvements.md` of the fleet and writes the same section alone to a dated file.
//!
//! Sections are rendered by minijinja templates (report-templates/); the binary carries copies
//! so it works from any directory, and a `report-templates/` directory next to where patrol runs
//! overrides them.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::ledger::{Deployment, Outcome, PendingSection, Reason};
use crate::model::Severity;
use crate::units::fmt_duration;

pub const HEADER_TEMPLATE: &str = "improvements-header.md.j2";
pub const SECTION_TEMPLATE: &str = "section.md.j2";

const BUILTIN: &[(&str, &str)] = &[
    (
        HEADER_TEMPLATE,
        include_str!("../../report-templates/improvements-header.md.j2"),
    ),
    (
        SECTION_TEMPLATE,
        include_str!("../../report-templates/section.md.j2"),
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub severity: String,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// "2026-02-18 21:53" in the fleet's time zone.
    pub heading_time: String,
    pub severity: String,
    pub items: Vec<Item>,
    /// One line per open finding not repeated in full.
    pub still_open: Vec<String>,
    /// One line per acknowledged finding.
    pub acknowledged: Vec<String>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Counts {
    pub new: usize,
    pub escalated: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub resolved: usize,
    pub still_open: usize,
    pub acknowledged: usize,
}

/// Where a fleet's reports go.
pub struct Output {
    pub dir: PathBuf,
}

impl Output {
    pub fn rolling(&self) -> PathBuf {
        self.dir.join("improvements.md")
    }

    pub fn ledger(&self) -> PathBuf {
        self.dir.join("ledger.json")
    }

    pub fn dated(&self, local: &DateTime<Tz>) -> PathBuf {
        self.dir
            .join("reports")
            .join(format!("{}.md", local.format("%Y-%m-%d_%H%M")))
    }
}

fn environment(template_dir: Option<&Path>) -> Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| Error::Template {
            name: "syntax".into(),
            message: e.to_string(),
        })?;
    env.set_syntax(syntax);
    for (name, builtin) in BUILTIN {
        let source = match template_dir.map(|d| d.join(name)) {
            Some(p) if p.exists() => fsutil::read_to_string(&p)?,
            _ => builtin.to_string(),
        };
        env.add_template_owned(name.to_string(), source)
            .map_err(|e| Error::Template {
                name: name.to_string(),
                message: e.to_string(),
            })?;
    }
    Ok(env)
}

/// Turns what the ledger says into a section; `None` when there is nothing new to say.
pub fn build_section(
    outcome: &Outcome,
    worst_open: Option<Severity>,
    at: DateTime<Utc>,
    tz: Tz,
) -> Option<Section> {
    if outcome.is_empty() {
        return None;
    }
    let local_date = |t: DateTime<Utc>| t.with_timezone(&tz).format("%b %-d %H:%M").to_string();
    let mut items = Vec::new();
    for r in &outcome.reported {
        let f = &r.finding;
        let mut title = f.title.clone();
        let mut body = f.evidence.clone();
        match &r.reason {
            Reason::New => {}
            Reason::Reopened { after } => {
                body = format!("Back after resolving at {}. {body}", local_date(*after));
            }
            Reason::Escalated { why } => {
                title = format!("{title} — escalated: {why}");
                body = format!("Open since {}. {body}", local_date(r.first_seen));
            }
            Reason::Changed { what } => {
                title = format!("{title} — changed: {what}");
                body = format!("Open since {}. {body}", local_date(r.first_seen));
            }
            Reason::Unchanged { since, nth } => {
                title = format!(
                    "{title} — unchanged since {}, {} report",
                    local_date(*since),
                    ordinal(*nth)
                );
            }
            Reason::AckExpired { owner, reason } => {
                body = format!(
                    "The acknowledgement by {owner} ({reason}) has expired and it still holds. {body}"
                );
            }
        }
        if !f.recommendation.is_empty() {
            body.push(' ');
            body.push_str(&f.recommendation);
        }
        match &r.deployment {
            Some(Deployment::NotYet { missing, since }) => body.push_str(&format!(
                " Recommendation not yet deployed: {missing} (since {}).",
                local_date(*since)
            )),
            Some(Deployment::Deployed { on }) => {
                body.push_str(&format!(" Recommendation deployed on {}.", local_date(*on)))
            }
            None => {}
        }
        items.push(Item {
            severity: f.severity.label().to_string(),
            title,
            body,
        });
    }
    for r in &outcome.resolved {
        let open_for = fmt_duration((r.resolved_at - r.first_seen).num_seconds() as f64);
        let now = match &r.now {
            Some(n) => format!("Now {n}. "),
            None => String::new(),
        };
        items.push(Item {
            severity: Severity::Info.label().to_string(),
            title: format!("Resolved: {}", r.finding.title),
            body: format!(
                "{now}The condition first reported at {} no longer holds; it was open for {open_for}.",
                local_date(r.first_seen)
            ),
        });
    }
    let reported_worst = outcome
        .reported
        .iter()
        .map(|n| n.finding.severity)
        .chain(std::iter::once(Severity::Info).filter(|_| !outcome.resolved.is_empty()))
        .max();
    let severity = worst_open.max(reported_worst).unwrap_or(Severity::Info);
    let still_open: Vec<String> = outcome
        .still_open
        .iter()
        .map(|o| {
            let f = &o.finding;
            match o.unchecked_since {
                Some(t) => format!(
                    "[{}] {} (could not check since {})",
                    f.severity.label(),
                    f.title,
                    local_date(t)
                ),
                None => format!(
                    "[{}] {} (since {})",
                    f.severity.label(),
                    f.title,
                    local_date(o.first_seen)
                ),
            }
        })
        .collect();
    let acknowledged: Vec<String> = outcome
        .acknowledged
        .iter()
        .map(|a| {
            format!(
                "[{}] {} ({}: {}; until {})",
                a.finding.severity.label(),
                a.finding.title,
                a.owner,
                a.reason,
                a.expires
            )
        })
        .collect();
    let count = |pred: fn(&Reason) -> bool| outcome.count(pred);
    Some(Section {
        heading_time: at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        severity: severity.label().to_string(),
        counts: Counts {
            new: count(|r| matches!(r, Reason::New | Reason::Reopened { .. })),
            escalated: count(|r| matches!(r, Reason::Escalated { .. })),
            changed: count(|r| matches!(r, Reason::Changed { .. })),
            unchanged: count(|r| matches!(r, Reason::Unchanged { .. } | Reason::AckExpired { .. })),
            resolved: outcome.resolved.len(),
            still_open: still_open.len(),
            acknowledged: acknowledged.len(),
        },
        items,
        still_open,
        acknowledged,
    })
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn tz_label(tz: Tz, at: DateTime<Utc>) -> String {
    let offset = at.with_timezone(&tz).format("%:z").to_string();
    format!("{} (UTC{})", tz.name(), offset)
}

/// Renders a section into the text appended to the rolling report (with its header when the
/// report does not exist yet) and the text of its dated file. Nothing is written.
pub fn render_section(
    output: &Output,
    fleet: &str,
    tz: Tz,
    at: DateTime<Utc>,
    section: &Section,
    template_dir: Option<&Path>,
) -> Result<PendingSection> {
    let env = environment(template_dir)?;
    let render = |name: &str, ctx: minijinja::Value| -> Result<String> {
        env.get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| Error::Template {
                name: name.to_string(),
                message: e.to_string(),
            })
    };
    let body = render(
        SECTION_TEMPLATE,
        minijinja::context! { section => minijinja::Value::from(minijinja::value::Serde(section)) },
    )?;
    let header = render(
        HEADER_TEMPLATE,
        minijinja::context! { fleet => fleet, timezone => tz_label(tz, at) },
    )?;
    let mut rolling_text = String::new();
    if !output.rolling().exists() {
        rolling_text.push_str(&header);
    }
    rolling_text.push('\n');
    rolling_text.push_str(&body);
    let dated = output.dated(&at.with_timezone(&tz));
    Ok(PendingSection {
        at,
        rolling_text,
        dated_path: dated.to_string_lossy().to_string(),
        dated_text: format!("{header}\n{body}"),
    })
}

/// Writes a rendered section: its dated file, and its text appended to the rolling report
/// unless the report already ends with it (a run that crashed after writing it). Safe to call
/// twice. Returns the dated file.
pub fn commit_section(output: &Output, pending: &PendingSection) -> Result<PathBuf> {
    let dated = PathBuf::from(&pending.dated_path);
    fsutil::write_atomic(&dated, pending.dated_text.as_bytes())?;
    let rolling = output.rolling();
    let already = match std::fs::read_to_string(&rolling) {
        Ok(text) => text.ends_with(&pending.rolling_text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io(&rolling, e)),
    };
    if !already {
        fsutil::append_atomic(&rolling, &pending.rolling_text)?;
    }
    Ok(dated)
}
