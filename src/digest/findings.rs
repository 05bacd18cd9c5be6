//! What the findings did in the week, from the ledger of the fleet's reports: how many opened,
//! resolved and stayed open by severity, the drift and the recommendations not yet deployed
//! still open at the week's end, and the one action to take first.
//!
//! The action to take first is the open, unacknowledged finding of highest *importance*:
//! severity (warning 3, info 2, suggestion 1) × what it costs if nobody acts
//! ([`Impact::weight`]: a node dark or data lost 5, memory heading for a kill 4, a service down
//! or a resource filling 3, degraded 2, hygiene 1). Among equals, the one on more nodes, then
//! the one open longer in the week (its current episode), comes first. What it costs decides:
//! an admin page down all week (3 × 3 = 9) does not outrank a leak heading for its kill since
//! yesterday (3 × 4 = 12) nor a day of lost inspection data (15), and no number of nodes lifts
//! an info above a warning of the same cost. A finding whose rule left the library is passed
//! over: nothing judges it any more.

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
    /// Per node, the unacknowledged warnings open about it at the week's end.
    pub warnings_by_node: BTreeMap<String, usize>,
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
    let mut warnings_by_node = BTreeMap::new();
    for e in open
        .iter()
        .filter(|e| !e.acknowledged && e.finding.severity == Severity::Warning)
    {
        for n in &e.finding.nodes {
            *warnings_by_node.entry(n.clone()).or_default() += 1;
        }
    }
    WeekFindings {
        counts,
        drift: titles_of(drift_across_nodes::SPEC.name),
        not_deployed: titles_of(config_missing::SPEC.name),
        top_action: top
            .as_ref()
            .map(|(e, _)| format!("{}: {}", title_in(e, week), e.finding.recommendation)),
        top_action_reason: top.map(|(_, why)| why.text),
        warnings_by_node,
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

/// An open finding's importance at the week's end: severity × what it costs decides; among
/// equals, more nodes, then longer open in the week (its current episode), come first.
pub(super) struct Importance {
    /// Severity weight × impact weight.
    pub score: u32,
    pub nodes: usize,
    /// Seconds its current episode was open within the week.
    pub open_s: i64,
    pub text: String,
}

impl Importance {
    fn rank(&self) -> (u32, usize, i64) {
        (self.score, self.nodes, self.open_s)
    }
}

fn severity_weight(s: Severity) -> u32 {
    match s {
        Severity::Warning => 3,
        Severity::Info => 2,
        Severity::Suggestion => 1,
    }
}

/// What a finding costs: its rule's in the library as it is now (a fleet that re-declares a
/// rule's impact re-ranks what is already open). `None` for a finding whose rule is no longer
/// in the library: nothing will judge it again, so it is no action to take first.
fn impact_of(f: &crate::model::Finding, library: &Library) -> Option<Impact> {
    let r = library.get(&f.rule_id)?;
    Some(
        r.impact
            .unwrap_or_else(|| Impact::of_kind(r.kind_name, r.blinds)),
    )
}

pub(super) fn importance(e: &Entry, impact: Impact, week: &Week) -> Importance {
    let f = &e.finding;
    let from = e.episode_start().max(week.start);
    let to = e.resolved_at.unwrap_or(week.end).min(week.end);
    let open_s = (to - from).num_seconds().max(0);
    let severity = severity_weight(f.severity);
    let score = severity * impact.weight();
    let nodes = f.nodes.len().max(1);
    let on = if nodes > 1 {
        format!(", on {nodes} nodes")
    } else {
        String::new()
    };
    let text = format!(
        "importance {score} = {} ({severity}) × {} ({}); open {} of the week{on}",
        f.severity.label().to_ascii_lowercase(),
        impact.label(),
        impact.weight(),
        crate::units::fmt_duration(open_s as f64),
    );
    Importance {
        score,
        nodes,
        open_s,
        text,
    }
}

/// The unacknowledged finding open at the week's end with the highest [`importance`] (then the
/// oldest, then by key, among equals), with why it comes first.
fn top_action<'e>(
    open: &[&'e Entry],
    library: &Library,
    week: &Week,
) -> Option<(&'e Entry, Importance)> {
    open.iter()
        .filter(|e| !e.acknowledged)
        .filter_map(|e| Some((*e, importance(e, impact_of(&e.finding, library)?, week))))
        .max_by(|(a, ia), (b, ib)| {
            ia.rank()
                .cmp(&ib.rank())
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
    fn importance_is_severity_times_cost_then_breadth_then_how_long() {
        let w = week();
        let admin_page = importance(
            &entry(Severity::Warning, Impact::Outage, 10, 1),
            Impact::Outage,
            &w,
        );
        assert_eq!(admin_page.score, 9);
        let leak = importance(
            &entry(Severity::Warning, Impact::Oom, 1, 1),
            Impact::Oom,
            &w,
        );
        let lost = importance(
            &entry(Severity::Warning, Impact::DataLoss, 1, 1),
            Impact::DataLoss,
            &w,
        );
        assert!(lost.rank() > leak.rank() && leak.rank() > admin_page.rank());
        assert_eq!(
            lost.text,
            "importance 15 = warning (3) × work or data being lost (5); open 24 h of the week"
        );
        // Breadth and duration only order equals: a creep on five nodes stays under a node dark.
        let wide = importance(&entry(Severity::Info, Impact::Oom, 7, 5), Impact::Oom, &w);
        let dark = importance(
            &entry(Severity::Warning, Impact::NodeDark, 1, 1),
            Impact::NodeDark,
            &w,
        );
        assert!(dark.rank() > wide.rank());
        assert!(
            wide.text.ends_with("; open 7 days of the week, on 5 nodes"),
            "{}",
            wide.text
        );
        let longer = importance(
            &entry(Severity::Warning, Impact::Oom, 3, 1),
            Impact::Oom,
            &w,
        );
        assert!(longer.rank() > leak.rank());
    }
}
