//! The ledger: what patrol has already told the reader, so each report says only what is new,
//! what resolved, and the worst of what is still open. Keyed by [`Finding::key`].
//!
//! A finding resolves only when the evidence that raised it can be read again and no longer
//! shows the problem; if the node or source is silent, the finding stays open ("could not
//! check"), because silence is not a fix.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::{Finding, Severity};

const LEDGER_VERSION: u32 = 1;
/// Events are remembered this long so they are not reported twice, then forgotten.
const EVENT_MEMORY_DAYS: i64 = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Resolved,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub finding: Finding,
    pub status: Status,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub occurrences: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// How many times it came back after resolving.
    #[serde(default)]
    pub reopened: u32,
    /// Set while its evidence cannot be read (node dark, too few readings since a reboot): the
    /// finding stays open, and the report says since when it could not be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchecked_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    pub version: u32,
    #[serde(default)]
    pub last_analysis: Option<DateTime<Utc>>,
    pub entries: BTreeMap<String, Entry>,
}

/// Whether an open finding's evidence can be read at this analysis.
pub enum Recheck {
    /// The data is there and the rule no longer fires; `now` says what it reads now.
    Gone { now: Option<String> },
    /// The data is missing: keep it open.
    CouldNotCheck,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub finding: Finding,
    pub first_seen: DateTime<Utc>,
    pub resolved_at: DateTime<Utc>,
    pub now: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewFinding {
    pub finding: Finding,
    /// Set when it had resolved before and came back.
    pub reopened_after: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub new: Vec<NewFinding>,
    pub resolved: Vec<Resolved>,
    /// Still open conditions, not repeated in full, with when they could last not be checked.
    pub still_open: Vec<StillOpen>,
}

#[derive(Debug, Clone)]
pub struct StillOpen {
    pub finding: Finding,
    pub unchecked_since: Option<DateTime<Utc>>,
}

impl Outcome {
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.resolved.is_empty()
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
            Err(e) => return Err(Error::io(path, e)),
        };
        let ledger: Ledger = serde_json::from_str(&text).map_err(|e| {
            Error::bad_file(
                path,
                format!(
                    "not a valid ledger (line {}): {e}; move it aside to start afresh",
                    e.line()
                ),
            )
        })?;
        if ledger.version != LEDGER_VERSION {
            return Err(Error::bad_file(
                path,
                format!(
                    "ledger version {} is not supported (expected {LEDGER_VERSION})",
                    ledger.version
                ),
            ));
        }
        Ok(ledger)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Usage(format!("cannot serialise ledger: {e}")))?;
        fsutil::write_atomic(path, &json)
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
        for f in findings {
            let key = f.key();
            seen.insert(key.clone());
            match self.entries.get_mut(&key) {
                Some(e) if e.finding.event => e.last_seen = now,
                Some(e) if e.status == Status::Open => {
                    e.last_seen = now;
                    e.occurrences += 1;
                    e.unchecked_since = None;
                    e.finding = f;
                }
                Some(e) => {
                    // Resolved earlier and back again.
                    let after = e.resolved_at;
                    e.status = Status::Open;
                    e.last_seen = now;
                    e.occurrences += 1;
                    e.reopened += 1;
                    e.resolved_at = None;
                    e.unchecked_since = None;
                    e.finding = f.clone();
                    outcome.new.push(NewFinding {
                        finding: f,
                        reopened_after: after,
                    });
                }
                None => {
                    self.entries.insert(
                        key,
                        Entry {
                            finding: f.clone(),
                            status: Status::Open,
                            first_seen: now,
                            last_seen: now,
                            occurrences: 1,
                            resolved_at: None,
                            reopened: 0,
                            unchecked_since: None,
                        },
                    );
                    outcome.new.push(NewFinding {
                        finding: f,
                        reopened_after: None,
                    });
                }
            }
        }
        for (key, e) in self.entries.iter_mut() {
            if e.status != Status::Open || seen.contains(key) {
                continue;
            }
            if e.finding.event {
                // An event is told once; it does not stay open.
                e.status = Status::Resolved;
                e.resolved_at = Some(now);
                continue;
            }
            match recheck(&e.finding) {
                Recheck::Gone { now: current } => {
                    e.status = Status::Resolved;
                    e.resolved_at = Some(now);
                    outcome.resolved.push(Resolved {
                        finding: e.finding.clone(),
                        first_seen: e.first_seen,
                        resolved_at: now,
                        now: current,
                    });
                }
                Recheck::CouldNotCheck => {
                    e.unchecked_since.get_or_insert(now);
                }
            }
        }
        let horizon = now - Duration::days(EVENT_MEMORY_DAYS);
        self.entries
            .retain(|_, e| !(e.finding.event && e.last_seen < horizon));
        outcome.still_open = self
            .entries
            .values()
            .filter(|e| e.status == Status::Open && !e.finding.event)
            .filter(|e| {
                !outcome
                    .new
                    .iter()
                    .any(|n| n.finding.key() == e.finding.key())
            })
            .map(|e| StillOpen {
                finding: e.finding.clone(),
                unchecked_since: e.unchecked_since,
            })
            .collect();
        self.last_analysis = Some(now);
        outcome
    }

    /// The worst severity among open conditions.
    pub fn worst_open(&self) -> Option<Severity> {
        self.entries
            .values()
            .filter(|e| e.status == Status::Open && !e.finding.event)
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

    fn finding(rule: &str, event: bool) -> Finding {
        Finding {
            rule_id: rule.into(),
            kind: "threshold".into(),
            severity: Severity::Warning,
            nodes: vec!["vk01".into()],
            scope: None,
            entity: "gpu:0".into(),
            metric: "temp_c".into(),
            observed_at: Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap(),
            title: "t".into(),
            evidence: "e".into(),
            recommendation: "r".into(),
            values: BTreeMap::new(),
            event,
            event_id: event.then(|| "1".into()),
        }
    }

    #[test]
    fn new_then_persisting_then_resolved_only_when_checkable() {
        let mut l = Ledger::default();
        let t = |m: i64| Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap() + Duration::minutes(m);
        let o = l.update(vec![finding("a", false)], t(0), |_| Recheck::CouldNotCheck);
        assert_eq!(o.new.len(), 1);
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
        assert_eq!(o.new.len(), 1);
        assert!(o.new[0].reopened_after.is_some());
    }

    #[test]
    fn events_are_reported_once() {
        let mut l = Ledger::default();
        let t0 = Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap();
        assert_eq!(
            l.update(vec![finding("r", true)], t0, |_| Recheck::CouldNotCheck)
                .new
                .len(),
            1
        );
        let o = l.update(vec![finding("r", true)], t0 + Duration::minutes(15), |_| {
            Recheck::CouldNotCheck
        });
        assert!(o.new.is_empty() && o.resolved.is_empty());
    }
}
