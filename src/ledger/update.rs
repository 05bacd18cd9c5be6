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
    /// For a finding about several nodes: the nodes it was last reported about that it is not
    /// about now, with what their recheck says.
    left: Vec<(String, Recheck)>,
}

impl Ledger {
    /// Folds one analysis into the ledger and says what to report.
    pub fn update(
        &mut self,
        findings: Vec<Finding>,
        now: DateTime<Utc>,
        recheck: impl FnMut(&Finding) -> Recheck,
    ) -> Outcome {
        self.update_grouped(findings, &[], now, recheck)
    }

    /// As [`Ledger::update`], where findings may say what earlier ones said (grouped across
    /// nodes, or folded across rules: [`Finding::says`]), and `baseline` findings, not reported,
    /// say it too: an open finding one of them says is taken into it, never resolved.
    pub fn update_grouped(
        &mut self,
        findings: Vec<Finding>,
        baseline: &[Finding],
        now: DateTime<Utc>,
        mut recheck: impl FnMut(&Finding) -> Recheck,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let mut seen = BTreeSet::new();
        let mut sayers: Vec<Finding> = findings
            .iter()
            .filter(|f| !f.members.is_empty() || !f.facets.is_empty())
            .cloned()
            .collect();
        sayers.extend(baseline.iter().cloned());
        self.take_said(&findings, &sayers, now, &mut seen);
        let left = self.nodes_left(&findings, &mut recheck);
        // Analysing the same capture again (a repeated `patrol report --at`) is not another
        // capture: nothing is counted twice.
        let step = u32::from(self.last_analysis.is_none_or(|last| now > last));
        for f in findings {
            let key = f.key();
            seen.insert(key.clone());
            let left = left.get(&key).cloned().unwrap_or_default();
            self.match_finding(key, f, now, step, &left, &mut outcome);
        }
        self.recheck_missing(&seen, now, step, &mut recheck, &mut outcome);
        self.close_analysis(now, &mut outcome);
        outcome
    }

    /// Open findings that findings of this analysis now say (a node's finding now part of a
    /// group, a group shrunk to one node, a finding folded into another): they are taken out of
    /// the ledger without a word, and a new entry that takes them in inherits their history (its
    /// episode started with the earliest of them; the nodes they were reported about).
    fn take_said(
        &mut self,
        findings: &[Finding],
        sayers: &[Finding],
        now: DateTime<Utc>,
        seen: &mut BTreeSet<String>,
    ) {
        let raised: BTreeSet<String> = findings.iter().map(Finding::key).collect();
        let said: Vec<String> = self
            .entries
            .iter()
            .filter(|(key, e)| {
                e.status == Status::Open && !e.finding.event && !raised.contains(*key)
            })
            .filter(|(_, e)| {
                sayers.iter().any(|s| s.says(&e.finding))
                    || findings.iter().any(|f| f.continues(&e.finding))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in said {
            let Some(old) = self.entries.remove(&key) else {
                continue;
            };
            // A finding folded into another lives on as its facet: nothing to carry over.
            let Some(heir) = findings
                .iter()
                .chain(sayers)
                .find(|s| s.continues(&old.finding))
            else {
                continue;
            };
            let heir_key = heir.key();
            match self.entries.get_mut(&heir_key) {
                Some(e) if e.status == Status::Open => e.inherit(&old),
                Some(_) => {}
                None if raised.contains(&heir_key) => {
                    let mut e = Entry::opened(heir.clone(), now);
                    e.inherit(&old);
                    self.entries.insert(heir_key, e);
                }
                // A baseline is not reported: it keeps no entry.
                None => {
                    seen.insert(key);
                }
            }
        }
    }

    /// For each finding about several nodes whose open entry was reported about nodes it no
    /// longer names: those nodes, each rechecked on its own, so the report says "no longer on
    /// vk02" only when vk02 was seen without it, not when it could not be read.
    fn nodes_left(
        &self,
        findings: &[Finding],
        recheck: &mut impl FnMut(&Finding) -> Recheck,
    ) -> BTreeMap<String, Vec<(String, Recheck)>> {
        let mut out = BTreeMap::new();
        for f in findings {
            let key = f.key();
            let Some(e) = self.entries.get(&key).filter(|e| e.status == Status::Open) else {
                continue;
            };
            let now: BTreeSet<&String> = f.all_nodes().collect();
            let left: Vec<(String, Recheck)> = e
                .reported_nodes
                .iter()
                .filter(|n| !now.contains(n))
                .map(|n| (n.clone(), recheck(&f.on_node(n))))
                .collect();
            if !left.is_empty() {
                out.insert(key, left);
            }
        }
        out
    }

    /// One finding of this analysis against its entry: an event already told, an open finding
    /// seen again, a resolved one back, or a new one.
    fn match_finding(
        &mut self,
        key: String,
        f: Finding,
        now: DateTime<Utc>,
        step: u32,
        left: &[(String, Recheck)],
        outcome: &mut Outcome,
    ) {
        let sighting = Sighting {
            now,
            step,
            left: left.to_vec(),
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
    /// Takes in the history of an open entry whose finding this one now says: the episode
    /// starts with the earlier of the two, and it counts as reported about the nodes either was.
    fn inherit(&mut self, old: &Entry) {
        self.first_seen = self.first_seen.min(old.first_seen);
        self.episode_start = Some(self.episode_start().min(old.episode_start()));
        if old.last_reported.is_some() && self.last_reported.is_none() {
            // What the reader was told is what this one was told: a repeat compares with it.
            self.last_reported = old.last_reported;
            self.reports = old.reports;
            self.printed_title = old.printed_title.clone();
            self.printed_values = old.printed_values.clone();
            self.reported_values = old.reported_values.clone();
        }
        if old.last_reported.is_some() {
            let mut nodes: BTreeSet<String> = self.reported_nodes.iter().cloned().collect();
            nodes.extend(old.reported_nodes.iter().cloned());
            nodes.extend(old.finding.all_nodes().cloned());
            self.reported_nodes = nodes.into_iter().collect();
        }
        self.consecutive = self.consecutive.max(old.consecutive);
        self.escalated |= old.escalated;
        let (then, now) = (old.finding.subjects(), self.finding.subjects());
        let name = |s: &&str| format!("`{}`", s.split_once(':').map_or(*s, |(_, n)| n));
        let with: Vec<String> = now.difference(&then).map(name).collect();
        let without: Vec<String> = then.difference(&now).map(name).collect();
        let mut parts = Vec::new();
        if !with.is_empty() {
            parts.push(format!("now told with {}", with.join(", ")));
        }
        if !without.is_empty() {
            parts.push(format!("no longer told with {}", without.join(", ")));
        }
        if !parts.is_empty() {
            self.note = Some(parts.join("; "));
        }
    }

    /// The entry of a finding seen for the first time.
    fn opened(f: Finding, now: DateTime<Utc>) -> Entry {
        Entry {
            severity_history: vec![SeverityChange {
                at: now,
                severity: f.severity,
            }],
            week_titles: BTreeMap::new(),
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
            reported_nodes: Vec::new(),
            note: None,
            printed_recommendation: None,
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
    e.note = None;
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
    let reason = follow_up(e, &e.finding, s, policy);
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
    let recommendation_told = e.printed_recommendation.as_ref() == Some(&e.finding.recommendation)
        && !matches!(reason, Reason::New | Reason::Reopened { .. });
    e.printed_recommendation = Some(e.finding.recommendation.clone());
    e.reported_nodes = e
        .finding
        .all_nodes()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    outcome.reported.push(Reported {
        finding: e.finding.clone(),
        reason,
        first_seen: e.first_seen,
        episode: Episode::of(e),
        deployment: None,
        leaves_unchecked: 0,
        recommendation_told,
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
fn follow_up(e: &Entry, f: &Finding, s: &Sighting, policy: &Policy) -> Option<Reason> {
    let now = s.now;
    if let Some(n) = f.lifecycle.escalate_after
        && !e.escalated
        && e.consecutive >= n
    {
        let span = crate::units::fmt_duration((now - e.episode_start()).num_seconds() as f64);
        return Some(Reason::Escalated {
            why: format!("sustained for {span} ({} captures)", e.consecutive),
        });
    }
    if let Some(what) = members_changed(e, f, &s.left, policy) {
        return Some(Reason::Changed { what });
    }
    if let Some(note) = &e.note {
        return Some(Reason::Changed { what: note.clone() });
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

/// For a finding about several nodes: which nodes joined it or left it since it was last
/// reported. A node it no longer names is "no longer on" it only when its recheck saw it
/// healthy; one that could not be read, or that is now reported on its own, is said so.
fn members_changed(
    e: &Entry,
    f: &Finding,
    left: &[(String, Recheck)],
    policy: &Policy,
) -> Option<String> {
    if e.reported_nodes.is_empty() || (f.members.is_empty() && e.reported_nodes.len() < 2) {
        return None;
    }
    let then: BTreeSet<&String> = e.reported_nodes.iter().collect();
    let joined: Vec<&str> = f
        .all_nodes()
        .filter(|n| !then.contains(n))
        .map(|s| s.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let list = |nodes: &[&str]| match nodes.len() {
        0..=3 => nodes.join(", "),
        n => format!("{}, … ({n} nodes)", nodes[..3].join(", ")),
    };
    let left_as = |pred: fn(&Recheck) -> bool| -> Vec<&str> {
        left.iter()
            .filter(|(_, r)| pred(r))
            .map(|(n, _)| n.as_str())
            .collect()
    };
    let mut parts = Vec::new();
    if !joined.is_empty() {
        parts.push(format!("now also on {}", list(&joined)));
    }
    let gone = left_as(|r| matches!(r, Recheck::Gone { .. }));
    // A few nodes of a large group crossing a threshold back and forth are not news: the
    // change must be material against the nodes it was reported about.
    let moved = (joined.len() + gone.len()) as f64;
    if moved < policy.material_change_pct / 100.0 * then.len() as f64 {
        return None;
    }
    if !gone.is_empty() {
        parts.push(format!("no longer on {}", list(&gone)));
    }
    // A node that could not be read neither joined nor left: its own finding (dark, no
    // containers) says so; on its own it is no change.
    let unread = left_as(|r| matches!(r, Recheck::CouldNotCheck));
    if !unread.is_empty() && !parts.is_empty() {
        parts.push(format!("could not check {}", list(&unread)));
    }
    let apart = left_as(|r| matches!(r, Recheck::Holds));
    if !apart.is_empty() {
        parts.push(format!(
            "still holds on {}, reported on its own",
            list(&apart)
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
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
