//! `--format json`: the analysis as one document for other programs: every open finding with
//! its evidence and lifecycle, the events, and what resolved.

use std::path::Path;

use chrono_tz::Tz;

use crate::ledger::{Ledger, Outcome, Reason, Status};

/// Every open finding with its evidence and lifecycle, what this analysis reported and
/// resolved, as one JSON document.
pub fn json(
    fleet: &str,
    tz: Tz,
    outcome: &Outcome,
    ledger: &Ledger,
    section: Option<&Path>,
) -> serde_json::Value {
    use serde_json::json;
    let reason = |r: &Reason| -> serde_json::Value {
        match r {
            Reason::New => json!({ "status": "new" }),
            Reason::Reopened { after } => json!({ "status": "reopened", "resolved_at": after }),
            Reason::Escalated { why } => json!({ "status": "escalated", "why": why }),
            Reason::Changed { what } => json!({ "status": "changed", "what": what }),
            Reason::Unchanged { since, nth, then } if then.is_empty() => {
                json!({ "status": "unchanged", "since": since, "report": nth })
            }
            Reason::Unchanged { since, nth, then } => {
                let then: serde_json::Map<String, serde_json::Value> =
                    then.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                json!({ "status": "repeated", "since": since, "report": nth, "then": then })
            }
            Reason::AckExpired { owner, reason } => {
                json!({ "status": "acknowledgement-expired", "owner": owner, "reason": reason })
            }
        }
    };
    let reported: std::collections::BTreeMap<String, serde_json::Value> = outcome
        .reported
        .iter()
        .map(|r| (r.finding.key(), reason(&r.reason)))
        .collect();
    let open: Vec<serde_json::Value> = ledger
        .entries
        .iter()
        .filter(|(_, e)| e.status == Status::Open && !e.finding.event)
        .map(|(key, e)| {
            let lifecycle = reported.get(key).cloned().unwrap_or_else(
                || json!({ "status": if e.acknowledged { "acknowledged" } else { "persisting" } }),
            );
            json!({
                "key": key,
                "finding": e.finding,
                "lifecycle": lifecycle,
                "first_seen": e.first_seen,
                "episode_start": e.episode_start(),
                "back_after": e.back_after,
                "last_seen": e.last_seen,
                "occurrences": e.occurrences,
                "consecutive": e.consecutive,
                "reports": e.reports,
                "last_reported": e.last_reported,
                "reopened": e.reopened,
                "unchecked_since": e.unchecked_since,
                "acknowledged": e.acknowledged,
            })
        })
        .collect();
    let events: Vec<serde_json::Value> = outcome
        .reported
        .iter()
        .filter(|r| r.finding.event)
        .map(|r| json!({ "finding": r.finding, "lifecycle": reason(&r.reason) }))
        .collect();
    let resolved: Vec<serde_json::Value> = outcome
        .resolved
        .iter()
        .map(|r| {
            json!({
                "key": r.finding.key(),
                "finding": r.finding,
                "first_seen": r.first_seen,
                "episode_start": r.episode.start,
                "resolved_at": r.resolved_at,
                "now": r.now,
            })
        })
        .collect();
    json!({
        "fleet": fleet,
        "timezone": tz.name(),
        "analysed_at": ledger.last_analysis,
        "section": section.map(|p| p.display().to_string()),
        "worst_open": ledger.worst_open().map(|s| s.label()),
        "open": open,
        "events": events,
        "resolved": resolved,
    })
}
