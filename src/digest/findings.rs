//! What the findings did in the week, from the ledger of the fleet's reports: how many opened,
//! resolved and stayed open by severity, the drift and the recommendations not yet deployed
//! still open at the week's end, and the one action to take first.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{FindingCounts, Week};
use crate::ledger::{Entry, Ledger, Status};
use crate::model::Severity;
use crate::rules::kinds::{config_missing, drift_across_nodes};

/// The ledger's part of the digest.
pub(super) struct WeekFindings {
    pub counts: FindingCounts,
    /// Titles of drift findings open at the week's end.
    pub drift: Vec<String>,
    /// Titles of findings about something not deployed, open at the week's end.
    pub not_deployed: Vec<String>,
    pub top_action: Option<String>,
}

fn severity_counts<'a>(entries: impl Iterator<Item = Severity> + 'a) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in entries {
        *out.entry(s.label().to_string()).or_default() += 1;
    }
    out
}

pub(super) fn week_findings(ledger: &Ledger, week: &Week) -> WeekFindings {
    let in_week = |t: DateTime<Utc>| t >= week.start && t < week.end;
    // Only conditions open and resolve; events (a reboot, a drop) do neither.
    let conditions = || ledger.entries.values().filter(|e| !e.finding.event);
    let open_at_end = |e: &&Entry| {
        e.first_seen < week.end
            && (e.status == Status::Open || e.resolved_at.is_some_and(|r| r >= week.end))
    };
    let counts = FindingCounts {
        opened: severity_counts(
            conditions()
                .filter(|e| in_week(e.first_seen))
                .map(|e| e.finding.severity),
        ),
        resolved: severity_counts(
            conditions()
                .filter(|e| e.resolved_at.is_some_and(in_week))
                .map(|e| e.finding.severity),
        ),
        still_open: severity_counts(conditions().filter(open_at_end).map(|e| e.finding.severity)),
    };
    let open: Vec<&Entry> = conditions().filter(open_at_end).collect();
    let titles_of = |kind: &str| -> Vec<String> {
        open.iter()
            .filter(|e| e.finding.kind == kind)
            .map(|e| e.finding.title.clone())
            .collect()
    };
    WeekFindings {
        counts,
        drift: titles_of(drift_across_nodes::SPEC.name),
        not_deployed: titles_of(config_missing::SPEC.name),
        top_action: top_action(&open),
    }
}

/// The worst unacknowledged finding open at the week's end (the oldest among equals), with
/// what to do about it.
fn top_action(open: &[&Entry]) -> Option<String> {
    open.iter()
        .filter(|e| !e.acknowledged)
        .max_by(|a, b| {
            a.finding
                .severity
                .cmp(&b.finding.severity)
                .then(b.first_seen.cmp(&a.first_seen))
        })
        .map(|e| format!("{}: {}", e.finding.title, e.finding.recommendation))
}
