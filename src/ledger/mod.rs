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
mod resolution;

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
    pub first_seen: DateTime<Utc>,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity_history: Vec<SeverityChange>,
    /// Whether an acknowledgement held for it at the last analysis.
    #[serde(default)]
    pub acknowledged: bool,
    #[serde(default)]
    pub escalated: bool,
    /// Analysed captures in a row its rule saw it healthy (see [`resolution`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub healthy_streak: u32,
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
}

/// What one month of the rolling report holds, for its line in the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthCounts {
    pub sections: u32,
    /// Findings reported new or back after resolving.
    pub new: u32,
    pub resolved: u32,
}

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
    #[serde(skip)]
    pub policy: Policy,
    #[serde(skip)]
    pub acks: Acks,
}

/// Whether an open finding's evidence can be read at this analysis.
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
    /// Unchanged, repeated after the quiet period.
    Unchanged {
        since: DateTime<Utc>,
        nth: u32,
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
    /// Whether the recommendation can be seen deployed: "not yet deployed …" / "deployed on …".
    pub deployment: Option<Deployment>,
    /// For a finding that blinds patrol to its node ([`crate::model::Lifecycle::blinds`]): how
    /// many other open findings about the node could not be checked at this analysis.
    pub leaves_unchecked: usize,
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

/// The headline values of a finding.
fn headline(f: &Finding) -> BTreeMap<String, EvidenceValue> {
    f.lifecycle
        .headline
        .iter()
        .filter_map(|h| f.values.get(h).map(|v| (h.clone(), v.clone())))
        .filter(|(_, v)| v.value.is_some())
        .collect()
}

/// Why a seen, open finding is worth reporting again, if it is.
fn follow_up(e: &Entry, f: &Finding, now: DateTime<Utc>, policy: &Policy) -> Option<Reason> {
    if let Some(n) = f.lifecycle.escalate_after
        && !e.escalated
        && e.consecutive >= n
    {
        let span = crate::units::fmt_duration((now - e.first_seen).num_seconds() as f64);
        return Some(Reason::Escalated {
            why: format!("sustained for {span} ({} captures)", e.consecutive),
        });
    }
    let current = headline(f);
    for (name, was) in &e.reported_values {
        let (Some(old), Some(new)) = (was.value, current.get(name).and_then(|v| v.value)) else {
            continue;
        };
        let text_now = current
            .get(name)
            .map(|v| v.text.clone())
            .unwrap_or_default();
        let grew = old != 0.0 && new.signum() == old.signum() && new.abs() > old.abs();
        let change_pct = if old != 0.0 {
            ((new - old) / old.abs() * 100.0).abs()
        } else if new != 0.0 {
            100.0
        } else {
            0.0
        };
        if name == "rate" && grew && change_pct >= policy.worse_rate_pct {
            return Some(Reason::Escalated {
                why: format!("rate worse than before: {} → {text_now}", was.text),
            });
        }
        if change_pct >= policy.material_change_pct && was.text != text_now {
            return Some(Reason::Changed {
                what: format!("{name} was {}, now {text_now}", was.text),
            });
        }
    }
    let last = e.last_reported.unwrap_or(e.first_seen);
    if now - last >= policy.repeat_after {
        return Some(Reason::Unchanged {
            since: last,
            nth: e.reports + 1,
        });
    }
    None
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
            .map_err(|e| Error::Usage(format!("cannot serialise ledger: {e}")))?;
        // The ledger tells no more than the reports, but only patrol reads it.
        fsutil::write_atomic(path, &json, fsutil::Mode::Private)
    }

    /// A new or reopened finding: reported in full unless an acknowledgement holds for it.
    fn report_new(
        e: &mut Entry,
        reason: Reason,
        now: DateTime<Utc>,
        ack: Option<&acks::Ack>,
        outcome: &mut Outcome,
    ) {
        e.acknowledged = ack.is_some();
        if let Some(a) = ack {
            outcome.acknowledged.push(Acknowledged::new(&e.finding, a));
            return;
        }
        Ledger::report(e, reason, now, outcome);
    }

    /// Writes the finding in full now, and remembers that it was.
    fn report(e: &mut Entry, reason: Reason, now: DateTime<Utc>, outcome: &mut Outcome) {
        e.last_reported = Some(now);
        e.reports += 1;
        e.reported_values = headline(&e.finding);
        outcome.reported.push(Reported {
            finding: e.finding.clone(),
            reason,
            first_seen: e.first_seen,
            deployment: None,
            leaves_unchecked: 0,
        });
    }

    /// Folds one analysis into the ledger and says what to report.
    pub fn update(
        &mut self,
        findings: Vec<Finding>,
        now: DateTime<Utc>,
        mut recheck: impl FnMut(&Finding) -> Recheck,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let mut seen = std::collections::BTreeSet::new();
        // Analysing the same capture again (a repeated `patrol report --at`) is not another
        // capture: nothing is counted twice.
        let step = u32::from(self.last_analysis.is_none_or(|last| now > last));
        for f in findings {
            let key = f.key();
            seen.insert(key.clone());
            let ack = self.acks.holding(&f, now).cloned();
            let expired = self.acks.expired(&f, now).cloned();
            match self.entries.get_mut(&key) {
                Some(e) if e.finding.event => {
                    e.last_seen = now;
                    continue;
                }
                Some(e) if e.status == Status::Open => {
                    e.last_seen = now;
                    e.occurrences += step;
                    e.consecutive += step;
                    e.unchecked_since = None;
                    e.healthy_streak = 0;
                    if e.finding.severity != f.severity {
                        e.severity_history.push(SeverityChange {
                            at: now,
                            severity: f.severity,
                        });
                        let excess = e.severity_history.len().saturating_sub(SEVERITY_MEMORY);
                        e.severity_history.drain(..excess);
                    }
                    e.finding = resolution::keep_context(&e.finding, f);
                    let mut reason = follow_up(e, &e.finding, now, &self.policy);
                    if !matches!(reason, Some(Reason::Escalated { .. }))
                        && e.acknowledged
                        && ack.is_none()
                        && let Some(a) = &expired
                    {
                        reason = Some(Reason::AckExpired {
                            owner: a.owner.clone(),
                            reason: a.reason.clone(),
                        });
                    }
                    if matches!(reason, Some(Reason::Escalated { .. })) {
                        e.escalated = true;
                    }
                    // An acknowledged finding is only written again when it got worse.
                    let worse = matches!(reason, Some(Reason::Escalated { .. }));
                    e.acknowledged = ack.is_some();
                    if let Some(a) = &ack
                        && !worse
                    {
                        outcome.acknowledged.push(Acknowledged::new(&e.finding, a));
                        continue;
                    }
                    if let Some(reason) = reason {
                        Ledger::report(e, reason, now, &mut outcome);
                    }
                    continue;
                }
                Some(e) => {
                    // Resolved earlier and back again.
                    let after = e.resolved_at.unwrap_or(now);
                    e.status = Status::Open;
                    e.last_seen = now;
                    e.occurrences += 1;
                    e.consecutive = 1;
                    e.reopened += 1;
                    e.resolved_at = None;
                    e.unchecked_since = None;
                    e.healthy_streak = 0;
                    e.escalated = false;
                    e.finding = f;
                    e.severity_history.push(SeverityChange {
                        at: now,
                        severity: e.finding.severity,
                    });
                    let excess = e.severity_history.len().saturating_sub(SEVERITY_MEMORY);
                    e.severity_history.drain(..excess);
                    Ledger::report_new(
                        e,
                        Reason::Reopened { after },
                        now,
                        ack.as_ref(),
                        &mut outcome,
                    );
                    continue;
                }
                None => {
                    let e = self.entries.entry(key).or_insert(Entry {
                        severity_history: vec![SeverityChange {
                            at: now,
                            severity: f.severity,
                        }],
                        finding: f,
                        status: Status::Open,
                        first_seen: now,
                        last_seen: now,
                        occurrences: 1,
                        consecutive: 1,
                        resolved_at: None,
                        reopened: 0,
                        unchecked_since: None,
                        last_reported: None,
                        reports: 0,
                        reported_values: BTreeMap::new(),
                        acknowledged: false,
                        escalated: false,
                        healthy_streak: 0,
                    });
                    Ledger::report_new(e, Reason::New, now, ack.as_ref(), &mut outcome);
                    continue;
                }
            };
        }
        for (key, e) in self.entries.iter_mut() {
            if e.status != Status::Open || seen.contains(key) {
                continue;
            }
            if step == 1 {
                e.consecutive = 0;
            }
            if e.finding.event {
                // An event is told once; it does not stay open.
                e.status = Status::Resolved;
                e.resolved_at = Some(now);
                continue;
            }
            match resolution::step(e, recheck(&e.finding), now, step) {
                Some(resolved) => outcome.resolved.push(resolved),
                None => {
                    if let Some(a) = self.acks.holding(&e.finding, now) {
                        outcome.acknowledged.push(Acknowledged::new(&e.finding, a));
                    }
                }
            }
        }
        let horizon = now - Duration::days(EVENT_MEMORY_DAYS);
        self.entries
            .retain(|_, e| !(e.finding.event && e.last_seen < horizon));
        self.forget_resolved(now);
        // Recommendation tracking: a reported finding whose rule names a verifying rule.
        for r in &mut outcome.reported {
            r.deployment = self.deployment(&r.finding);
            r.leaves_unchecked = resolution::left_unchecked(&self.entries, &r.finding);
        }
        let reported: std::collections::BTreeSet<String> =
            outcome.reported.iter().map(|r| r.finding.key()).collect();
        outcome.still_open = self
            .entries
            .values()
            .filter(|e| e.status == Status::Open && !e.finding.event && !e.acknowledged)
            .filter(|e| !reported.contains(&e.finding.key()))
            .map(|e| StillOpen {
                finding: e.finding.clone(),
                unchecked_since: e.unchecked_since,
                first_seen: e.first_seen,
            })
            .collect();
        self.last_analysis = Some(now);
        outcome
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
        self.sections.push_back(SectionLog { at, rules });
        while self.sections.len() > SECTION_MEMORY {
            self.sections.pop_front();
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

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap() + Duration::minutes(m)
    }

    fn finding(rule: &str, event: bool) -> Finding {
        Finding {
            rule_id: rule.into(),
            kind: "threshold".into(),
            severity: Severity::Warning,
            nodes: vec!["vk01".into()],
            scope: None,
            entity: "gpu:0".into(),
            metric: "temp_c".into(),
            observed_at: t(0),
            title: "t".into(),
            evidence: "e".into(),
            recommendation: "r".into(),
            values: BTreeMap::new(),
            event,
            event_id: event.then(|| "1".into()),
            lifecycle: crate::model::Lifecycle {
                resolve_after: Some(1),
                ..Default::default()
            },
            context: BTreeMap::new(),
        }
    }

    fn with_rate(rate: f64) -> Finding {
        let mut f = finding("leak", false);
        f.lifecycle.headline = vec!["rate".into()];
        f.values.insert(
            "rate".into(),
            EvidenceValue {
                value: Some(rate),
                text: format!("+{rate}MB/h"),
            },
        );
        f
    }

    /// A ledger with one acknowledgement of rule `a`.
    fn acknowledging(reason: &str, owner: &str, expires: &str) -> Ledger {
        let text = format!(
            "[[ack]]\nrule = \"a\"\nreason = \"{reason}\"\nowner = \"{owner}\"\nexpires = \"{expires}\"\n"
        );
        Ledger {
            acks: acks::Acks::parse(Path::new("acknowledged.toml"), &text, chrono_tz::UTC).unwrap(),
            ..Ledger::default()
        }
    }

    fn reasons(o: &Outcome) -> Vec<Reason> {
        o.reported.iter().map(|r| r.reason.clone()).collect()
    }

    #[test]
    fn new_then_persisting_then_resolved_only_when_checkable() {
        let mut l = Ledger::default();
        let o = l.update(vec![finding("a", false)], t(0), |_| Recheck::CouldNotCheck);
        assert_eq!(reasons(&o), vec![Reason::New]);
        let o = l.update(vec![finding("a", false)], t(15), |_| Recheck::CouldNotCheck);
        assert!(o.is_empty(), "a persisting finding is not repeated");
        let o = l.update(vec![], t(30), |_| Recheck::CouldNotCheck);
        assert!(o.is_empty(), "missing data does not resolve");
        assert_eq!(o.still_open[0].unchecked_since, Some(t(30)));
        assert_eq!(l.worst_open(), Some(Severity::Warning));
        let o = l.update(vec![], t(45), |_| Recheck::Gone {
            now: Some("36°C".into()),
        });
        assert_eq!(o.resolved.len(), 1);
        assert_eq!(l.worst_open(), None);
        let o = l.update(vec![finding("a", false)], t(60), |_| Recheck::CouldNotCheck);
        assert_eq!(reasons(&o), vec![Reason::Reopened { after: t(45) }]);
    }

    #[test]
    fn events_are_reported_once() {
        let mut l = Ledger::default();
        let o = l.update(vec![finding("r", true)], t(0), |_| Recheck::CouldNotCheck);
        assert_eq!(o.reported.len(), 1);
        let o = l.update(vec![finding("r", true)], t(15), |_| Recheck::CouldNotCheck);
        assert!(o.reported.is_empty() && o.resolved.is_empty());
    }

    #[test]
    fn sustained_escalates_once() {
        let mut l = Ledger::default();
        let mut f = finding("null", false);
        f.lifecycle.escalate_after = Some(2);
        assert_eq!(
            reasons(&l.update(vec![f.clone()], t(0), |_| Recheck::CouldNotCheck)),
            vec![Reason::New]
        );
        let o = l.update(vec![f.clone()], t(15), |_| Recheck::CouldNotCheck);
        assert!(
            matches!(&reasons(&o)[..], [Reason::Escalated { why }] if why.contains("2 captures"))
        );
        let o = l.update(vec![f.clone()], t(30), |_| Recheck::CouldNotCheck);
        assert!(o.reported.is_empty(), "escalated once, not every capture");
    }

    #[test]
    fn a_worse_rate_escalates_a_small_change_does_not_and_unchanged_repeats_daily() {
        let mut l = Ledger::default();
        l.update(vec![with_rate(10.0)], t(0), |_| Recheck::CouldNotCheck);
        let o = l.update(vec![with_rate(11.0)], t(15), |_| Recheck::CouldNotCheck);
        assert!(o.reported.is_empty(), "10% is not material");
        let o = l.update(vec![with_rate(16.0)], t(30), |_| Recheck::CouldNotCheck);
        assert!(
            matches!(&reasons(&o)[..], [Reason::Escalated { why }] if why.contains("+10MB/h → +16MB/h"))
        );
        let o = l.update(vec![with_rate(12.0)], t(45), |_| Recheck::CouldNotCheck);
        assert!(
            matches!(&reasons(&o)[..], [Reason::Changed { .. }]),
            "{:?}",
            reasons(&o)
        );
        let o = l.update(vec![with_rate(12.0)], t(60 * 20), |_| {
            Recheck::CouldNotCheck
        });
        assert!(o.reported.is_empty());
        let o = l.update(vec![with_rate(12.0)], t(45 + 60 * 24), |_| {
            Recheck::CouldNotCheck
        });
        assert_eq!(
            reasons(&o),
            vec![Reason::Unchanged {
                since: t(45),
                nth: 4
            }]
        );
    }

    #[test]
    fn an_acknowledged_finding_waits_and_comes_back_when_it_expires() {
        let mut l = acknowledging("known, fix planned", "ana", "2026-02-19");
        let o = l.update(vec![finding("a", false)], t(0), |_| Recheck::CouldNotCheck);
        assert!(o.reported.is_empty());
        assert_eq!(o.acknowledged.len(), 1);
        assert_eq!(
            l.worst_open(),
            None,
            "acknowledged findings do not set the heading"
        );
        let o = l.update(vec![finding("a", false)], t(60 * 24), |_| {
            Recheck::CouldNotCheck
        });
        assert!(matches!(&reasons(&o)[..], [Reason::AckExpired { owner, .. }] if owner == "ana"));
        assert_eq!(l.worst_open(), Some(Severity::Warning));
    }

    #[test]
    fn a_past_expiry_never_hides_a_finding() {
        let mut l = acknowledging("old", "bo", "2026-01-01");
        let o = l.update(vec![finding("a", false)], t(0), |_| Recheck::CouldNotCheck);
        assert_eq!(reasons(&o), vec![Reason::New]);
        assert!(o.acknowledged.is_empty());
    }

    #[test]
    fn a_recommendation_is_tracked_through_its_verifying_rule() {
        let mut l = Ledger::default();
        let mut leak = finding("leak", false);
        leak.lifecycle.verify = Some("no-limit".into());
        let limit = finding("no-limit", false);
        let o = l.update(vec![leak.clone(), limit.clone()], t(0), |_| {
            Recheck::CouldNotCheck
        });
        assert!(matches!(
            o.reported[0].deployment,
            Some(Deployment::NotYet { .. })
        ));
        l.update(vec![leak.clone()], t(15), |_| Recheck::Gone { now: None });
        assert_eq!(
            l.deployment(&leak),
            Some(Deployment::Deployed { on: t(15) })
        );
    }

    #[test]
    fn resolved_findings_are_forgotten_after_keep_resolved_but_come_back_as_back_inside_it() {
        let mut l = Ledger::default();
        l.policy.keep_resolved = Duration::days(30);
        let day = 24 * 60;
        l.update(vec![finding("a", false)], t(0), |_| Recheck::CouldNotCheck);
        l.update(vec![], t(15), |_| Recheck::Gone { now: None });
        // Back inside the period: the reader is told it had resolved.
        let o = l.update(vec![finding("a", false)], t(29 * day), |_| {
            Recheck::CouldNotCheck
        });
        assert_eq!(
            reasons(&o),
            vec![Reason::Reopened { after: t(15) }],
            "recurring inside keep_resolved"
        );
        l.update(vec![], t(29 * day + 15), |_| Recheck::Gone { now: None });
        // Quiet for longer than the period: the entry goes, the ledger shrinks.
        l.update(vec![finding("b", false)], t(60 * day), |_| {
            Recheck::CouldNotCheck
        });
        assert!(
            l.entry(&finding("a", false).key()).is_none(),
            "resolved 31 days ago: forgotten"
        );
        assert_eq!(l.entries.len(), 1);
        let o = l.update(
            vec![finding("a", false), finding("b", false)],
            t(61 * day),
            |_| Recheck::CouldNotCheck,
        );
        let a = o
            .reported
            .iter()
            .find(|r| r.finding.rule_id == "a")
            .map(|r| r.reason.clone());
        assert_eq!(a, Some(Reason::New), "after the period it is new");
    }

    #[test]
    fn forgetting_keeps_what_a_recommendation_and_an_acknowledgement_need() {
        let mut l = acknowledging("known", "ana", "2027-01-01");
        l.policy.keep_resolved = Duration::days(30);
        let day = 24 * 60;
        let mut leak = finding("leak", false);
        leak.lifecycle.verify = Some("no-limit".into());
        let limit = finding("no-limit", false);
        l.update(
            vec![leak.clone(), limit.clone(), finding("a", false)],
            t(0),
            |_| Recheck::CouldNotCheck,
        );
        l.update(vec![leak.clone()], t(15), |_| Recheck::Gone { now: None });
        l.update(vec![leak.clone()], t(90 * day), |_| Recheck::CouldNotCheck);
        assert_eq!(
            l.deployment(&leak),
            Some(Deployment::Deployed { on: t(15) }),
            "the verifying finding of an open one is kept past the period"
        );
        assert!(
            l.entry(&finding("a", false).key()).is_none(),
            "the acknowledged finding that resolved is forgotten"
        );
        let o = l.update(vec![leak, finding("a", false)], t(91 * day), |_| {
            Recheck::CouldNotCheck
        });
        assert!(
            !o.reported.iter().any(|r| r.finding.rule_id == "a"),
            "its acknowledgement still holds"
        );
        assert!(o.acknowledged.iter().any(|a| a.finding.rule_id == "a"));
    }

    #[test]
    fn a_finding_that_flaps_every_capture_keeps_a_bounded_history() {
        let mut l = Ledger::default();
        for i in 0..200 {
            l.update(vec![finding("a", false)], t(30 * i), |_| {
                Recheck::CouldNotCheck
            });
            l.update(vec![], t(30 * i + 15), |_| Recheck::Gone { now: None });
        }
        let e = l.entry(&finding("a", false).key()).unwrap();
        assert_eq!(e.reopened, 199);
        assert_eq!(e.severity_history.len(), SEVERITY_MEMORY);
        assert_eq!(e.severity_history.last().map(|c| c.at), Some(t(30 * 199)));
    }
}
