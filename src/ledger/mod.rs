//! The ledger: what patrol has already told the reader, so each report says only what is new,
//! what changed or got worse, what is unchanged after a quiet period, and what resolved, with
//! the worst of what is still open in the heading. Keyed by [`Finding::key`].
//!
//! A finding resolves only when the evidence that raised it can be read again and no longer
//! shows the problem, for its rule's `resolve_after` captures in a row ([`resolution`]); if the
//! node or source is silent, the finding stays open ("could not check"), because silence is
//! not a fix. The ledger also holds the section being written
//! (`pending`) so that a crash between the report and the ledger loses or repeats nothing.
//!
//! It stays small over years: events are forgotten after two weeks, resolved findings after
//! `keep_resolved` (30 days by default; one that comes back later is new again), the section
//! log after 500 sections; what grows is one line of counts per month of the report's index.

pub mod acks;
pub mod count;
mod resolution;
mod update;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::{EvidenceValue, Finding, Severity};
use acks::Acks;

const LEDGER_VERSION: u32 = 2;
/// Events are remembered this long so they are not reported twice, then forgotten.
const EVENT_MEMORY_DAYS: i64 = 14;
/// Sections remembered for `patrol rules noise`.
const SECTION_MEMORY: usize = 500;
/// Severity changes remembered per finding: one that flaps every capture would otherwise add one
/// each time it comes back, for ever.
const SEVERITY_MEMORY: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Resolved,
}

/// When an open finding is worth telling again.
#[derive(Debug, Clone)]
pub struct Policy {
    /// An unchanged open finding is repeated after this long ("unchanged since …, Nth report").
    pub repeat_after: Duration,
    /// A headline value that moved by at least this share (percent) since it was last reported.
    pub material_change_pct: f64,
    /// A rate that grew by at least this share (percent) since it was last reported escalates.
    pub worse_rate_pct: f64,
    /// A resolved finding is forgotten this long after it resolved: within it, one that comes
    /// back is "back after resolving at …"; after it, it is new.
    pub keep_resolved: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            repeat_after: Duration::hours(24),
            material_change_pct: 25.0,
            worse_rate_pct: 50.0,
            keep_resolved: Duration::days(30),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeverityChange {
    pub at: DateTime<Utc>,
    pub severity: Severity,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub finding: Finding,
    pub status: Status,
    /// The first time it was ever seen.
    pub first_seen: DateTime<Utc>,
    /// When its current episode began: when it was first seen, or when it last came back after
    /// resolving. Every "since" and "open for" the reader sees counts from here (ledgers written
    /// before it was kept read it as `first_seen`: see [`Entry::episode_start`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode_start: Option<DateTime<Utc>>,
    /// When the episode before the current one resolved, for a finding that came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_after: Option<DateTime<Utc>>,
    pub last_seen: DateTime<Utc>,
    pub occurrences: u32,
    /// Captures in a row it has been seen (reset when it is not).
    #[serde(default)]
    pub consecutive: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// How many times it came back after resolving.
    #[serde(default)]
    pub reopened: u32,
    /// Set while its evidence cannot be read (node dark, too few readings since a reboot): the
    /// finding stays open, and the report says since when it could not be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchecked_since: Option<DateTime<Utc>>,
    /// When it was last written in full, and how many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reported: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reports: u32,
    /// Its headline values as last reported, to tell a material change.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reported_values: BTreeMap<String, EvidenceValue>,
    /// All its values and its title as last reported: a repeat says "unchanged since" only
    /// when what it prints now is what it printed then.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub printed_values: BTreeMap<String, EvidenceValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printed_title: Option<String>,
    /// For a finding whose kind counts a cumulative value: the episode's total so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<count::EpisodeCount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity_history: Vec<SeverityChange>,
    /// Its title as each of the last few ISO weeks ended, while it was open then: a weekly
    /// digest made after later runs prints the week's numbers, not today's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub week_titles: BTreeMap<String, String>,
    /// Whether an acknowledgement held for it at the last analysis.
    #[serde(default)]
    pub acknowledged: bool,
    #[serde(default)]
    pub escalated: bool,
    /// Analysed captures in a row its rule saw it healthy (see [`resolution`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub healthy_streak: u32,
    /// The nodes it was about when it was last reported in full, so a node joining or leaving
    /// a finding grouped across nodes is told as a change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reported_nodes: Vec<String>,
    /// What changed in the subjects it is told with, when it took over another entry in this
    /// analysis: said once as its change, then forgotten.
    #[serde(skip)]
    pub note: Option<String>,
    /// Its recommendation as last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printed_recommendation: Option<String>,
}

impl Entry {
    /// When the current episode began.
    pub fn episode_start(&self) -> DateTime<Utc> {
        self.episode_start.unwrap_or(self.first_seen)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A section written to the report, remembered for the noise report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SectionLog {
    pub at: DateTime<Utc>,
    /// Rule ids of the findings reported in full or resolved in it.
    pub rules: Vec<String>,
    /// The still-open findings it named (their keys), so the next section need not name the
    /// same ones again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<String>,
    /// A fingerprint of which findings were open after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_hash: Option<u64>,
}

/// What one month of the rolling report holds, for its line in the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthCounts {
    pub sections: u32,
    /// Findings reported new or back after resolving.
    pub new: u32,
    pub resolved: u32,
}

/// What the report's sections of one ISO week said, by severity label: the weekly digest's
/// counts are these, so they equal what a reader of that week's sections counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekCounts {
    pub sections: u32,
    /// Reported new or back after resolving (the sections' "New").
    pub opened: BTreeMap<String, usize>,
    pub resolved: BTreeMap<String, usize>,
    /// Still open after the week's last section ("N still open: …").
    pub still_open: BTreeMap<String, usize>,
}

/// How many weeks of section counts the ledger keeps.
const WEEK_COUNT_MEMORY: usize = 12;

/// A section about to be written: saved in the ledger before the report files, cleared after.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSection {
    pub at: DateTime<Utc>,
    /// The month's rolling file it is appended to (absent in ledgers written before monthly
    /// files: then the single `improvements.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_path: Option<String>,
    /// Text appended to the rolling report.
    pub rolling_text: String,
    /// The whole index (`improvements.md`) as it reads once the section is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_text: Option<String>,
    /// The dated file and its whole text.
    pub dated_path: String,
    pub dated_text: String,
}

/// How many ended weeks an entry keeps its title of ([`Entry::week_titles`]).
const WEEK_TITLE_MEMORY: usize = 4;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    pub version: u32,
    #[serde(default)]
    pub last_analysis: Option<DateTime<Utc>>,
    pub entries: BTreeMap<String, Entry>,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub sections: VecDeque<SectionLog>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingSection>,
    /// Counts per month ("2026-02", the fleet's time zone) of the rolling report, for its index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub months: BTreeMap<String, MonthCounts>,
    /// When the archive was last thinned (capture time), so pruning runs at most once a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_prune: Option<DateTime<Utc>>,
    /// The ISO week (fleet's time zone, "2026-W08") of the newest analysis: when the next one is
    /// in a later week, the open findings' titles are kept as that week ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub week: Option<String>,
    /// Each node's score card line as of the newest analysis, for the site's index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub score_card: Vec<crate::model::ScoreRow>,
    /// Per ISO week ("2026-W08"), what its sections said (the newest [`WEEK_COUNT_MEMORY`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weeks: BTreeMap<String, WeekCounts>,
    #[serde(skip)]
    pub policy: Policy,
    #[serde(skip)]
    pub acks: Acks,
}

/// Whether an open finding's evidence can be read at this analysis.
#[derive(Debug, Clone)]
pub enum Recheck {
    /// The data is there and the rule no longer fires; `now` says what it reads now.
    Gone { now: Option<String> },
    /// The data is missing: keep it open.
    CouldNotCheck,
    /// The rule says the condition still holds (a setting still missing): keep it open.
    Holds,
}

/// Why a finding is written in full in this section.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    New,
    /// It had resolved, and came back.
    Reopened {
        after: DateTime<Utc>,
    },
    /// Sustained past its rule's `escalate_after`, or its rate got worse.
    Escalated {
        why: String,
    },
    /// A headline value moved materially since it was last reported.
    Changed {
        what: String,
    },
    /// Repeated after the quiet period. `since` is when it was last reported; `then` names
    /// the values printed then that differ now, with their text then (empty: unchanged).
    Unchanged {
        since: DateTime<Utc>,
        nth: u32,
        then: Vec<(String, String)>,
    },
    /// Its acknowledgement expired.
    AckExpired {
        owner: String,
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct Reported {
    pub finding: Finding,
    pub reason: Reason,
    pub first_seen: DateTime<Utc>,
    /// When the current episode began, and when the one before it resolved.
    pub episode: Episode,
    /// Whether the recommendation can be seen deployed: "not yet deployed …" / "deployed on …".
    pub deployment: Option<Deployment>,
    /// For a finding that blinds patrol to its node ([`crate::model::Lifecycle::blinds`]): how
    /// many other open findings about the node could not be checked at this analysis.
    pub leaves_unchecked: usize,
    /// Its recommendation reads as when it was last reported: a repeat need not say it again.
    pub recommendation_told: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Deployment {
    /// The verifying finding is open: the recommended setting is still missing.
    NotYet {
        missing: String,
        since: DateTime<Utc>,
    },
    Deployed {
        on: DateTime<Utc>,
    },
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub finding: Finding,
    pub first_seen: DateTime<Utc>,
    pub episode: Episode,
    pub resolved_at: DateTime<Utc>,
    pub now: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Acknowledged {
    pub finding: Finding,
    pub owner: String,
    pub reason: String,
    /// The day it expires, in the fleet's time zone.
    pub expires: String,
}

impl Acknowledged {
    fn new(f: &Finding, a: &acks::Ack) -> Acknowledged {
        Acknowledged {
            finding: f.clone(),
            owner: a.owner.clone(),
            reason: a.reason.clone(),
            expires: a.expires.format("%Y-%m-%d").to_string(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub reported: Vec<Reported>,
    pub resolved: Vec<Resolved>,
    /// Still open conditions, not repeated in full, with when they could last not be checked.
    pub still_open: Vec<StillOpen>,
    pub acknowledged: Vec<Acknowledged>,
}

#[derive(Debug, Clone)]
pub struct StillOpen {
    pub finding: Finding,
    pub unchecked_since: Option<DateTime<Utc>>,
    pub first_seen: DateTime<Utc>,
    pub episode: Episode,
}

/// The current episode of a finding: since when it has been open this time, and, when it came
/// back after resolving, when the previous episode resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    pub start: DateTime<Utc>,
    pub back_after: Option<DateTime<Utc>>,
}

impl Episode {
    pub fn of(e: &Entry) -> Episode {
        Episode {
            start: e.episode_start(),
            back_after: e.back_after,
        }
    }
}

impl Outcome {
    /// Nothing to write: no finding reported in full and none resolved.
    pub fn is_empty(&self) -> bool {
        self.reported.is_empty() && self.resolved.is_empty()
    }

    pub fn count(&self, pred: impl Fn(&Reason) -> bool) -> usize {
        self.reported.iter().filter(|r| pred(&r.reason)).count()
    }
}

impl Ledger {
    pub fn load(path: &Path) -> Result<Ledger> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Ledger {
                    version: LEDGER_VERSION,
                    ..Ledger::default()
                });
            }
            Err(e) => return Err(fsutil::io_error(path, e)),
        };
        let mut ledger: Ledger = serde_json::from_str(&text).map_err(|e| {
            Error::bad_file(
                path,
                format!(
                    "not a valid ledger (line {}): {e}; move it aside to start afresh",
                    e.line()
                ),
            )
        })?;
        // Version 1 lacked the lifecycle fields; they default, so it reads as version 2.
        if ledger.version > LEDGER_VERSION || ledger.version == 0 {
            return Err(Error::bad_file(
                path,
                format!(
                    "ledger version {} is not supported (this patrol reads 1 to {LEDGER_VERSION})",
                    ledger.version
                ),
            ));
        }
        ledger.version = LEDGER_VERSION;
        Ok(ledger)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Runtime(format!("cannot serialise ledger: {e}")))?;
        // The ledger tells no more than the reports, but only patrol reads it.
        fsutil::write_atomic(path, &json, fsutil::Mode::Private)
    }

    /// Whether a finding's recommendation shows as deployed, through its rule's `verify`.
    pub fn deployment(&self, f: &Finding) -> Option<Deployment> {
        let verify = f.lifecycle.verify.as_ref()?;
        let e = self
            .entries
            .values()
            .filter(|e| {
                &e.finding.rule_id == verify
                    && e.finding.nodes == f.nodes
                    && e.finding.entity == f.entity
            })
            .max_by_key(|e| e.last_seen)?;
        Some(match (e.status, e.resolved_at) {
            (Status::Resolved, Some(on)) => Deployment::Deployed { on },
            _ => Deployment::NotYet {
                missing: e.finding.title.clone(),
                since: e.first_seen,
            },
        })
    }

    /// Drops resolved findings older than `keep_resolved`, except one whose rule verifies an
    /// open finding's recommendation ("deployed on …" reads its resolution).
    fn forget_resolved(&mut self, now: DateTime<Utc>) {
        let horizon = now - self.policy.keep_resolved;
        let verifiers: std::collections::BTreeSet<(&str, &[String], &str)> = self
            .entries
            .values()
            .filter(|e| e.status == Status::Open)
            .filter_map(|e| {
                e.finding
                    .lifecycle
                    .verify
                    .as_deref()
                    .map(|v| (v, e.finding.nodes.as_slice(), e.finding.entity.as_str()))
            })
            .collect();
        let forget: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.status == Status::Resolved
                    && !e.finding.event
                    && e.resolved_at.is_some_and(|r| r < horizon)
                    && !verifiers.contains(&(
                        e.finding.rule_id.as_str(),
                        e.finding.nodes.as_slice(),
                        e.finding.entity.as_str(),
                    ))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in forget {
            self.entries.remove(&key);
        }
    }

    /// Notes that an analysis of `week` ("2026-W09") is about to update the ledger: when it is
    /// later than the week of the previous analysis, every open condition keeps its title as
    /// that week ended (the newest [`WEEK_TITLE_MEMORY`] weeks are kept).
    pub fn enter_week(&mut self, week: &str) {
        let ended = match &self.week {
            Some(w) if w.as_str() < week => w.clone(),
            Some(_) => return,
            None => {
                self.week = Some(week.to_string());
                return;
            }
        };
        for e in self.entries.values_mut() {
            if e.status == Status::Open && !e.finding.event {
                e.week_titles.insert(ended.clone(), e.finding.title.clone());
            }
            while e.week_titles.len() > WEEK_TITLE_MEMORY {
                e.week_titles.pop_first();
            }
        }
        self.week = Some(week.to_string());
    }

    /// Counts a section into its week: what it reported new and resolved, and what is still
    /// open after it (`still_open`, by severity label, as its summary line says).
    pub fn count_week(
        &mut self,
        week: &str,
        outcome: &Outcome,
        still_open: BTreeMap<String, usize>,
    ) {
        let w = self.weeks.entry(week.to_string()).or_default();
        w.sections += 1;
        for r in &outcome.reported {
            if matches!(r.reason, Reason::New | Reason::Reopened { .. }) {
                *w.opened
                    .entry(r.finding.severity.label().to_string())
                    .or_default() += 1;
            }
        }
        for r in &outcome.resolved {
            *w.resolved
                .entry(r.finding.severity.label().to_string())
                .or_default() += 1;
        }
        w.still_open = still_open;
        while self.weeks.len() > WEEK_COUNT_MEMORY {
            self.weeks.pop_first();
        }
    }

    /// Counts a section into its month's line of the index.
    pub fn count_month(&mut self, month: &str, outcome: &Outcome) {
        let m = self.months.entry(month.to_string()).or_default();
        m.sections += 1;
        m.new += outcome.count(|r| matches!(r, Reason::New | Reason::Reopened { .. })) as u32;
        m.resolved += outcome.resolved.len() as u32;
    }

    /// Records a written section for the noise report.
    pub fn log_section(&mut self, at: DateTime<Utc>, outcome: &Outcome) {
        let mut rules: Vec<String> = outcome
            .reported
            .iter()
            .map(|r| r.finding.rule_id.clone())
            .chain(outcome.resolved.iter().map(|r| r.finding.rule_id.clone()))
            .collect();
        rules.sort();
        rules.dedup();
        self.sections.push_back(SectionLog {
            at,
            rules,
            top: Vec::new(),
            open_hash: None,
        });
        while self.sections.len() > SECTION_MEMORY {
            self.sections.pop_front();
        }
    }

    /// Remembers which still-open findings the section just logged named.
    pub fn log_top(&mut self, top: &[String], open_hash: u64) {
        if let Some(last) = self.sections.back_mut() {
            last.top = top.to_vec();
            last.open_hash = Some(open_hash);
        }
    }

    /// The worst severity among open, unacknowledged conditions.
    pub fn worst_open(&self) -> Option<Severity> {
        self.entries
            .values()
            .filter(|e| e.status == Status::Open && !e.finding.event && !e.acknowledged)
            .map(|e| e.finding.severity)
            .max()
    }

    /// The findings open now (acknowledged ones included), as last told.
    pub fn open_findings(&self) -> impl Iterator<Item = &Finding> {
        self.entries
            .values()
            .filter(|e| e.status == Status::Open)
            .map(|e| &e.finding)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }
}

#[cfg(test)]
mod tests;
