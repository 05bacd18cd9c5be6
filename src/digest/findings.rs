//! What the findings did in the week, from the ledger of the fleet's reports: how many opened,
//! resolved and stayed open by severity, the drift and the recommendations not yet deployed
//! still open at the week's end, and the one action to take first.
//!
//! The action to take first is the open finding of highest *importance*: severity (warning 3,
//! info 2, suggestion 1) × what it costs if nobody acts ([`Impact::weight`]: a node dark or
//! data lost 5, memory heading for a kill 4, a service down or a resource filling 3, degraded
//! 2, hygiene 1) × how long it was open in the week (up to ×1.25 for all of it) × how many
//! nodes it is on (×1.25 for each more, up to ×2). What it costs comes first: an admin page
//! down all week (3 × 3 × 1.25 = 11.3) does not outrank a leak heading for its kill since
//! yesterday (3 × 4 × 1.04 = 12.4) nor a day of lost inspection data (15.5).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{FindingCounts, Week};
use crate::ledger::{Entry, Ledger, Status};
use crate::model::{Impact, Severity};
use crate::rules::Library;
use crate::rules::kinds::{config_missing, drift_across_nodes};

/// The ledger's part of the digest.
pub(super) struct WeekFindings {
    pub counts: FindingCounts,
    /// Titles of drift findings open at the week's end.
    pub drift: Vec<String>,
    /// Titles of findings about something not deployed, open at the week's end.
    pub not_deployed: Vec<String>,
    pub top_action: Option<String>,
    /// Why it comes first: its importance and the factors behind it.
    pub top_action_reason: Option<String>,
}

fn severity_counts<'a>(entries: impl Iterator<Item = Severity> + 'a) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in entries {
        *out.entry(s.label().to_string()).or_default() += 1;
    }
    out
}

pub(super) fn week_findings(ledger: &Ledger, library: &Library, week: &Week) -> WeekFindings {
    // Only conditions open and resolve; events (a reboot, a drop) do neither.
    let conditions = || ledger.entries.values().filter(|e| !e.finding.event);
    let open_at_end = |e: &&Entry| {
        e.first_seen < week.end
            && (e.status == Status::Open || e.resolved_at.is_some_and(|r| r >= week.end))
    };
    // What the week's sections said, when the ledger counted them; else from its entries.
    let counts = match ledger.weeks.get(&week.label) {
        Some(w) => FindingCounts {
            opened: w.opened.clone(),
            resolved: w.resolved.clone(),
            still_open: w.still_open.clone(),
        },
        None => counts_from_entries(ledger, week),
    };
    let open: Vec<&Entry> = conditions().filter(open_at_end).collect();
    let titles_of = |kind: &str| -> Vec<String> {
        open.iter()
            .filter(|e| e.finding.kind == kind)
            .map(|e| title_in(e, week).to_string())
            .collect()
    };
    let top = top_action(&open, library, week);
    WeekFindings {
        counts,
        drift: titles_of(drift_across_nodes::SPEC.name),
        not_deployed: titles_of(config_missing::SPEC.name),
        top_action: top
            .as_ref()
            .map(|(e, _)| format!("{}: {}", title_in(e, week), e.finding.recommendation)),
        top_action_reason: top.map(|(_, why)| why.text),
    }
}

/// The counts from the ledger's entries, for a week whose sections it did not count (a ledger
/// written before it did): opened in the week, resolved in it, open at its end.
fn counts_from_entries(ledger: &Ledger, week: &Week) -> FindingCounts {
    let in_week = |t: DateTime<Utc>| t >= week.start && t < week.end;
    let conditions = || ledger.entries.values().filter(|e| !e.finding.event);
    let open_at_end = |e: &&Entry| {
        e.first_seen < week.end
            && (e.status == Status::Open || e.resolved_at.is_some_and(|r| r >= week.end))
    };
    FindingCounts {
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
    }
}

/// A finding's title as the week ended: the ledger keeps it for the last few weeks, so a digest
/// made after later runs prints that week's numbers (a leak's 4.54GB, not the next week's 11.5GB).
fn title_in<'e>(e: &'e Entry, week: &Week) -> &'e str {
    e.week_titles
        .get(&week.label)
        .map(String::as_str)
        .unwrap_or(&e.finding.title)
}

/// An open finding's importance at the week's end, and the factors that make it.
pub(super) struct Importance {
    pub score: f64,
    pub text: String,
}

fn severity_weight(s: Severity) -> f64 {
    match s {
        Severity::Warning => 3.0,
        Severity::Info => 2.0,
        Severity::Suggestion => 1.0,
    }
}

/// What a finding costs: its rule's in the library as it is now (a fleet that re-declares a
/// rule's impact re-ranks what is already open), else what the ledger recorded, else its kind's.
fn impact_of(f: &crate::model::Finding, library: &Library) -> Impact {
    match library.get(&f.rule_id) {
        Some(r) => r
            .impact
            .unwrap_or_else(|| Impact::of_kind(r.kind_name, r.blinds)),
        None => f
            .lifecycle
            .impact
            .unwrap_or_else(|| Impact::of_kind(&f.kind, f.lifecycle.blinds)),
    }
}

pub(super) fn importance(e: &Entry, impact: Impact, week: &Week) -> Importance {
    let f = &e.finding;
    let from = e.first_seen.max(week.start);
    let to = e.resolved_at.unwrap_or(week.end).min(week.end);
    let days = ((to - from).num_seconds().max(0) as f64 / 86_400.0).min(7.0);
    let how_long = 1.0 + 0.25 * days / 7.0;
    let more_nodes = f.nodes.len().saturating_sub(1).min(4);
    let how_wide = 1.0 + 0.25 * more_nodes as f64;
    let severity = severity_weight(f.severity);
    let score = severity * impact.weight() * how_long * how_wide;
    let wide = if more_nodes > 0 {
        format!(" × on {} nodes ({how_wide:.2})", f.nodes.len())
    } else {
        String::new()
    };
    let text = format!(
        "importance {}: {} ({}) × {} ({}) × open {} of the week's 7 days ({how_long:.2}){wide}",
        crate::units::fmt_number(score, 1),
        f.severity.label().to_ascii_lowercase(),
        severity,
        impact.label(),
        impact.weight(),
        crate::units::fmt_number(days, 1),
    );
    Importance { score, text }
}

/// The unacknowledged finding open at the week's end with the highest [`importance`] (the
/// more severe, then the oldest, among equals), with why it comes first.
fn top_action<'e>(
    open: &[&'e Entry],
    library: &Library,
    week: &Week,
) -> Option<(&'e Entry, Importance)> {
    open.iter()
        .filter(|e| !e.acknowledged)
        .map(|e| (*e, importance(e, impact_of(&e.finding, library), week)))
        .max_by(|(a, ia), (b, ib)| {
            ia.score
                .total_cmp(&ib.score)
                .then(a.finding.severity.cmp(&b.finding.severity))
                .then(b.first_seen.cmp(&a.first_seen))
                .then(b.finding.key().cmp(&a.finding.key()))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ledger::Entry;
    use crate::model::{Finding, Lifecycle};
    use chrono::TimeZone;

    fn entry(severity: Severity, impact: Impact, open_days: i64, nodes: usize) -> Entry {
        let end = Utc.with_ymd_and_hms(2026, 2, 23, 3, 0, 0).unwrap();
        let finding = Finding {
            rule_id: "r".into(),
            kind: "threshold".into(),
            severity,
            nodes: (0..nodes).map(|i| format!("n{i}")).collect(),
            scope: None,
            entity: "host".into(),
            metric: "m".into(),
            observed_at: end,
            title: "t".into(),
            evidence: String::new(),
            recommendation: String::new(),
            values: BTreeMap::new(),
            event: false,
            event_id: None,
            lifecycle: Lifecycle {
                impact: Some(impact),
                ..Lifecycle::default()
            },
            context: BTreeMap::new(),
            raised_in_steady_rest: Default::default(),
            members: Vec::new(),
            facets: Vec::new(),
        };
        let since = end - chrono::Duration::days(open_days);
        serde_json::from_value(serde_json::json!({
            "finding": finding,
            "status": Status::Open,
            "first_seen": since,
            "last_seen": end,
            "occurrences": 1,
        }))
        .unwrap()
    }

    fn week() -> Week {
        Week::parse("2026-W08", chrono_tz::America::Sao_Paulo).unwrap()
    }

    #[test]
    fn importance_is_severity_times_cost_times_how_long_and_how_wide() {
        let w = week();
        let admin_page = importance(
            &entry(Severity::Warning, Impact::Outage, 10, 1),
            Impact::Outage,
            &w,
        );
        assert!(
            (admin_page.score - 11.25).abs() < 1e-9,
            "{}",
            admin_page.text
        );
        let leak = importance(
            &entry(Severity::Warning, Impact::Oom, 1, 1),
            Impact::Oom,
            &w,
        );
        assert!((leak.score - 3.0 * 4.0 * (1.0 + 0.25 / 7.0)).abs() < 1e-9);
        let lost = importance(
            &entry(Severity::Warning, Impact::DataLoss, 1, 1),
            Impact::DataLoss,
            &w,
        );
        assert!(lost.score > leak.score && leak.score > admin_page.score);
        assert_eq!(
            lost.text,
            "importance 15.5: warning (3) × work or data being lost (5) × open 1 of the week's 7 days (1.04)"
        );
        let wide = importance(
            &entry(Severity::Info, Impact::Hygiene, 7, 9),
            Impact::Hygiene,
            &w,
        );
        assert!(
            (wide.score - 2.0 * 1.25 * 2.0).abs() < 1e-9,
            "{}",
            wide.text
        );
        assert!(wide.text.ends_with("× on 9 nodes (2.00)"), "{}", wide.text);
    }
}
