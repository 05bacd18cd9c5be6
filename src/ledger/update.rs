//! Folding one analysis into the ledger, step by step: each finding is matched to its entry,
//! the re-emit policy decides whether an open one is worth telling again, the open findings not
//! seen this time are rechecked, those whose evidence is gone resolve, and the bookkeeping
//! (forgetting, recommendation tracking, what is still open) closes the analysis.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use super::acks::Ack;
use super::{
    Acknowledged, EVENT_MEMORY_DAYS, Entry, Episode, Ledger, Outcome, Policy, Reason, Recheck,
    Reported, SEVERITY_MEMORY, SeverityChange, Status, StillOpen, count, resolution,
};
use crate::model::{EvidenceValue, Finding, Severity};

/// What the acknowledgements say about a finding seen at this analysis.
struct Sighting {
    now: DateTime<Utc>,
    /// 1 for a new capture, 0 when the same capture is analysed again.
    step: u32,
    /// The acknowledgement holding for it now.
    ack: Option<Ack>,
    /// The acknowledgement of it that expired.
    expired: Option<Ack>,
}

impl Ledger {
    /// Folds one analysis into the ledger and says what to report.
    pub fn update(
        &mut self,
        findings: Vec<Finding>,
        now: DateTime<Utc>,
        mut recheck: impl FnMut(&Finding) -> Recheck,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let mut seen = BTreeSet::new();
        // Analysing the same capture again (a repeated `patrol report --at`) is not another
        // capture: nothing is counted twice.
        let step = u32::from(self.last_analysis.is_none_or(|last| now > last));
        for f in findings {
            let key = f.key();
            seen.insert(key.clone());
            self.match_finding(key, f, now, step, &mut outcome);
        }
        self.recheck_missing(&seen, now, step, &mut recheck, &mut outcome);
        self.close_analysis(now, &mut outcome);
        outcome
    }

    /// One finding of this analysis against its entry: an event already told, an open finding
    /// seen again, a resolved one back, or a new one.
    fn match_finding(
        &mut self,
        key: String,
        f: Finding,
        now: DateTime<Utc>,
        step: u32,
        outcome: &mut Outcome,
    ) {
        let sighting = Sighting {
            now,
            step,
            ack: self.acks.holding(&f, now).cloned(),
            expired: self.acks.expired(&f, now).cloned(),
        };
        match self.entries.get_mut(&key) {
            Some(e) if e.finding.event => e.last_seen = now,
            Some(e) if e.status == Status::Open => {
                follow_open(e, f, &sighting, &self.policy, outcome);
            }
            Some(e) => reopen(e, f, now, sighting.ack.as_ref(), outcome),
            None => {
                let e = self.entries.entry(key).or_insert(Entry::opened(f, now));
                count::remember(e, now);
                report_new(e, Reason::New, now, sighting.ack.as_ref(), outcome);
            }
        }
    }

    /// The open findings this analysis did not raise: an event closes; anything else is
    /// rechecked, and resolves only when its evidence can be read and no longer shows it.
    fn recheck_missing(
        &mut self,
        seen: &BTreeSet<String>,
        now: DateTime<Utc>,
        step: u32,
        recheck: &mut impl FnMut(&Finding) -> Recheck,
        outcome: &mut Outcome,
    ) {
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
    }

    /// The bookkeeping after every finding is placed: old events and resolved findings are
    /// forgotten, reported findings learn whether their recommendation is deployed, and the
    /// outcome lists what is still open.
    fn close_analysis(&mut self, now: DateTime<Utc>, outcome: &mut Outcome) {
        let horizon = now - Duration::days(EVENT_MEMORY_DAYS);
        self.entries
            .retain(|_, e| !(e.finding.event && e.last_seen < horizon));
        self.forget_resolved(now);
        // Recommendation tracking: a reported finding whose rule names a verifying rule.
        for r in &mut outcome.reported {
            r.deployment = self.deployment(&r.finding);
            r.leaves_unchecked = resolution::left_unchecked(&self.entries, &r.finding);
        }
        let reported: BTreeSet<String> = outcome.reported.iter().map(|r| r.finding.key()).collect();
        outcome.still_open = self
            .entries
            .values()
            .filter(|e| e.status == Status::Open && !e.finding.event && !e.acknowledged)
            .filter(|e| !reported.contains(&e.finding.key()))
            .map(|e| StillOpen {
                finding: e.finding.clone(),
                unchecked_since: e.unchecked_since,
                first_seen: e.first_seen,
                episode: Episode::of(e),
            })
            .collect();
        self.last_analysis = Some(now);
    }
}

impl Entry {
    /// The entry of a finding seen for the first time.
    fn opened(f: Finding, now: DateTime<Utc>) -> Entry {
        Entry {
            severity_history: vec![SeverityChange {
                at: now,
                severity: f.severity,
            }],
            finding: f,
            status: Status::Open,
            first_seen: now,
            episode_start: Some(now),
            back_after: None,
            last_seen: now,
            occurrences: 1,
            consecutive: 1,
            resolved_at: None,
            reopened: 0,
            unchecked_since: None,
            last_reported: None,
            reports: 0,
            reported_values: BTreeMap::new(),
            printed_values: BTreeMap::new(),
            printed_title: None,
            count: None,
            acknowledged: false,
            escalated: false,
            healthy_streak: 0,
        }
    }

    /// Remembers a severity change, keeping only the newest few.
    fn record_severity(&mut self, at: DateTime<Utc>, severity: Severity) {
        self.severity_history.push(SeverityChange { at, severity });
        let excess = self.severity_history.len().saturating_sub(SEVERITY_MEMORY);
        self.severity_history.drain(..excess);
    }
}

/// An open finding seen again: counted, and written again only when the re-emit policy says
/// so; an acknowledged one only when it got worse.
fn follow_open(e: &mut Entry, f: Finding, s: &Sighting, policy: &Policy, outcome: &mut Outcome) {
    e.last_seen = s.now;
    e.occurrences += s.step;
    e.consecutive += s.step;
    e.unchecked_since = None;
    e.healthy_streak = 0;
    if e.finding.severity != f.severity {
        e.record_severity(s.now, f.severity);
    }
    e.finding = resolution::keep_context(&e.finding, f);
    count::remember(e, s.now);
    let reason = re_emit_reason(e, s, policy);
    let worse = matches!(reason, Some(Reason::Escalated { .. }));
    if worse {
        e.escalated = true;
    }
    e.acknowledged = s.ack.is_some();
    if let Some(a) = &s.ack
        && !worse
    {
        outcome.acknowledged.push(Acknowledged::new(&e.finding, a));
        return;
    }
    if let Some(reason) = reason {
        report(e, reason, s.now, outcome);
    }
}

/// The re-emit policy: why an open finding seen again is worth writing in full, if it is.
/// An acknowledgement that expired since the last analysis counts unless it escalated anyway.
fn re_emit_reason(e: &Entry, s: &Sighting, policy: &Policy) -> Option<Reason> {
    let reason = follow_up(e, &e.finding, s.now, policy);
    if !matches!(reason, Some(Reason::Escalated { .. }))
        && e.acknowledged
        && s.ack.is_none()
        && let Some(a) = &s.expired
    {
        return Some(Reason::AckExpired {
            owner: a.owner.clone(),
            reason: a.reason.clone(),
        });
    }
    reason
}

/// A finding that had resolved and is back: open again, counted from one.
fn reopen(e: &mut Entry, f: Finding, now: DateTime<Utc>, ack: Option<&Ack>, outcome: &mut Outcome) {
    let after = e.resolved_at.unwrap_or(now);
    e.status = Status::Open;
    // A new episode: every "since" the reader sees counts from now.
    e.episode_start = Some(now);
    e.back_after = Some(after);
    e.last_reported = None;
    e.reports = 0;
    e.last_seen = now;
    e.occurrences += 1;
    e.consecutive = 1;
    e.reopened += 1;
    e.resolved_at = None;
    e.unchecked_since = None;
    e.healthy_streak = 0;
    e.escalated = false;
    e.finding = f;
    e.count = None;
    count::remember(e, now);
    e.record_severity(now, e.finding.severity);
    report_new(e, Reason::Reopened { after }, now, ack, outcome);
}

/// A new or reopened finding: reported in full unless an acknowledgement holds for it.
fn report_new(
    e: &mut Entry,
    reason: Reason,
    now: DateTime<Utc>,
    ack: Option<&Ack>,
    outcome: &mut Outcome,
) {
    e.acknowledged = ack.is_some();
    if let Some(a) = ack {
        outcome.acknowledged.push(Acknowledged::new(&e.finding, a));
        return;
    }
    report(e, reason, now, outcome);
}

/// Writes the finding in full now, and remembers that it was.
fn report(e: &mut Entry, reason: Reason, now: DateTime<Utc>, outcome: &mut Outcome) {
    e.last_reported = Some(now);
    e.reports += 1;
    e.reported_values = headline(&e.finding);
    e.printed_values = e.finding.values.clone();
    e.printed_title = Some(e.finding.title.clone());
    outcome.reported.push(Reported {
        finding: e.finding.clone(),
        reason,
        first_seen: e.first_seen,
        episode: Episode::of(e),
        deployment: None,
        leaves_unchecked: 0,
    });
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
        let span = crate::units::fmt_duration((now - e.episode_start()).num_seconds() as f64);
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
    // Only a report of this episode: one of an earlier episode says nothing about this one.
    let last = e
        .last_reported
        .filter(|t| *t >= e.episode_start())
        .unwrap_or(e.episode_start());
    if now - last >= policy.repeat_after {
        return Some(Reason::Unchanged {
            since: last,
            nth: e.reports + 1,
            then: printed_then(e, f, policy),
        });
    }
    None
}

/// The values printed at the last report that differ now, with their text then: a value whose
/// text changed and is printed in the title, or that moved by the material-change share or more
/// (any value, not only the headline ones). Empty: what it prints now is what it printed then.
fn printed_then(e: &Entry, f: &Finding, policy: &Policy) -> Vec<(String, String)> {
    let title_then = e.printed_title.as_deref().unwrap_or_default();
    let mut then: Vec<(String, String)> = e
        .printed_values
        .iter()
        .filter_map(|(name, was)| {
            let now = f.values.get(name)?;
            if now.text == was.text {
                return None;
            }
            // A text without a number (a time, a name) counts only where the title printed it.
            let material = match (was.value, now.value) {
                (Some(old), Some(new)) if old != 0.0 => {
                    ((new - old) / old.abs() * 100.0).abs() >= policy.material_change_pct
                }
                (Some(old), Some(new)) => old != new,
                _ => false,
            };
            let printed = !was.text.is_empty() && title_then.contains(&was.text);
            (material || printed).then(|| (name.clone(), was.text.clone()))
        })
        .collect();
    if then.is_empty() && e.printed_title.as_ref().is_some_and(|t| *t != f.title) {
        then.push(("title".into(), title_then.to_string()));
    }
    then
}
