//! The resolution step: an open finding its rule did not raise resolves only after its rule
//! saw the subject healthy on fresh readings for `resolve_after` analysed captures in a row.
//! One quiet capture could be the gap between two bad ones, and a capture that could not check
//! it (node silent, source failing, states changed) is not a healthy one: it starts the count
//! again and the finding shows as "could not check since …".

use chrono::{DateTime, Utc};

use std::collections::BTreeMap;

use super::{Entry, Episode, Recheck, Resolved, Status};
use crate::model::Finding;

/// The finding seen again, with the derived states of when its episode was raised: seen bad
/// again in another state (a log line read after production stopped) says nothing about
/// whether its absence in that state means it is fixed.
pub(super) fn keep_context(open: &Finding, mut seen: Finding) -> Finding {
    if !open.context.is_empty() {
        seen.context = open.context.clone();
        seen.raised_in_steady_rest = open.raised_in_steady_rest.clone();
    }
    seen
}

/// For a finding that blinds patrol to its nodes: how many other open findings about them
/// could not be checked at this analysis (0 for any other finding).
pub(super) fn left_unchecked(entries: &BTreeMap<String, Entry>, f: &Finding) -> usize {
    if !f.lifecycle.blinds {
        return 0;
    }
    let key = f.key();
    entries
        .values()
        .filter(|e| e.status == Status::Open && !e.finding.event && e.unchecked_since.is_some())
        .filter(|e| e.finding.key() != key)
        .filter(|e| e.finding.nodes.iter().any(|n| f.nodes.contains(n)))
        .count()
}

/// Folds one recheck of an open entry into its healthy streak; returns the resolution once the
/// streak reaches the finding's `resolve_after`. `step` is 0 when the same capture is analysed
/// again, so nothing is counted twice.
pub(super) fn step(
    e: &mut Entry,
    recheck: Recheck,
    now: DateTime<Utc>,
    step: u32,
) -> Option<Resolved> {
    match recheck {
        Recheck::Gone { now: current } => {
            e.unchecked_since = None;
            e.healthy_streak += step;
            if e.healthy_streak < e.finding.lifecycle.resolve_after() {
                return None;
            }
            e.healthy_streak = 0;
            e.status = Status::Resolved;
            e.resolved_at = Some(now);
            e.acknowledged = false;
            Some(Resolved {
                finding: e.finding.clone(),
                first_seen: e.first_seen,
                episode: Episode::of(e),
                resolved_at: now,
                now: current,
            })
        }
        Recheck::CouldNotCheck => {
            e.healthy_streak = 0;
            e.unchecked_since.get_or_insert(now);
            None
        }
        Recheck::Holds => {
            e.healthy_streak = 0;
            e.unchecked_since = None;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Ledger, Recheck};
    use crate::model::{Finding, Lifecycle, Severity};
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use std::collections::BTreeMap;

    fn t(m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 22, 0, 0, 0).unwrap() + Duration::minutes(m)
    }

    fn limit_missing(line: &str) -> Finding {
        Finding {
            rule_id: "no-limit".into(),
            kind: "config-missing".into(),
            severity: Severity::Suggestion,
            nodes: vec!["vk01".into()],
            scope: None,
            entity: "container:db".into(),
            metric: "config:mem_limit".into(),
            observed_at: t(0),
            title: "vk01 `db` has no memory limit".into(),
            evidence: String::new(),
            recommendation: String::new(),
            values: BTreeMap::new(),
            event: false,
            event_id: None,
            lifecycle: Lifecycle::default(),
            context: BTreeMap::from([("vk01/line".to_string(), line.to_string())]),
            raised_in_steady_rest: Default::default(),
            members: Vec::new(),
            facets: Vec::new(),
        }
    }

    fn gone() -> Recheck {
        Recheck::Gone { now: None }
    }

    #[test]
    fn a_finding_resolves_after_resolve_after_healthy_captures_in_a_row() {
        let mut l = Ledger::default();
        l.update(vec![limit_missing("production")], t(0), |_| gone());
        let o = l.update(vec![], t(15), |_| gone());
        assert!(o.resolved.is_empty(), "one healthy capture is not enough");
        assert_eq!(o.still_open.len(), 1);
        assert_eq!(
            o.still_open[0].unchecked_since, None,
            "checked, and healthy"
        );
        let o = l.update(vec![], t(30), |_| gone());
        assert_eq!(o.resolved.len(), 1, "two in a row resolve (default)");
    }

    #[test]
    fn a_capture_that_cannot_check_or_holds_or_sees_it_starts_the_count_again() {
        for interruption in [Recheck::CouldNotCheck, Recheck::Holds] {
            let mut l = Ledger::default();
            l.update(vec![limit_missing("production")], t(0), |_| gone());
            l.update(vec![], t(15), |_| gone());
            let holds = matches!(interruption, Recheck::Holds);
            let mut once = Some(interruption);
            let o = l.update(vec![], t(30), |_| once.take().unwrap_or(Recheck::Holds));
            assert!(o.resolved.is_empty());
            assert_eq!(o.still_open[0].unchecked_since.is_none(), holds);
            let o = l.update(vec![], t(45), |_| gone());
            assert!(o.resolved.is_empty(), "the count started again");
            let o = l.update(vec![], t(60), |_| gone());
            assert_eq!(o.resolved.len(), 1);
        }
        let mut l = Ledger::default();
        l.update(vec![limit_missing("production")], t(0), |_| gone());
        l.update(vec![], t(15), |_| gone());
        l.update(vec![limit_missing("production")], t(30), |_| gone());
        let o = l.update(vec![], t(45), |_| gone());
        assert!(
            o.resolved.is_empty(),
            "seen bad again: the count starts again"
        );
    }

    #[test]
    fn the_same_capture_analysed_again_counts_once_and_resolve_after_is_the_rules() {
        let mut l = Ledger::default();
        let mut f = limit_missing("production");
        f.lifecycle.resolve_after = Some(3);
        l.update(vec![f], t(0), |_| gone());
        l.update(vec![], t(15), |_| gone());
        assert!(l.update(vec![], t(15), |_| gone()).resolved.is_empty());
        assert!(l.update(vec![], t(30), |_| gone()).resolved.is_empty());
        assert_eq!(l.update(vec![], t(45), |_| gone()).resolved.len(), 1);
    }

    #[test]
    fn a_finding_keeps_the_states_it_was_raised_in_until_it_resolves() {
        let mut l = Ledger::default();
        l.update(vec![limit_missing("production")], t(0), |_| gone());
        l.update(vec![limit_missing("idle")], t(15), |_| gone());
        let e = l.entries.values().next().unwrap();
        assert_eq!(e.finding.context["vk01/line"], "production");
        l.update(vec![], t(30), |_| gone());
        l.update(vec![], t(45), |_| gone());
        // Back after resolving: a new episode, raised in the states of now.
        l.update(vec![limit_missing("idle")], t(60), |_| gone());
        let e = l.entries.values().next().unwrap();
        assert_eq!(e.finding.context["vk01/line"], "idle");
    }

    #[test]
    fn a_blinding_finding_counts_the_open_findings_it_leaves_unchecked() {
        let mut l = Ledger::default();
        let mut other = limit_missing("production");
        other.entity = "container:web".into();
        l.update(vec![limit_missing("production"), other], t(0), |_| gone());
        let mut dark = limit_missing("production");
        dark.rule_id = "containers-all-gone".into();
        dark.entity = "docker".into();
        dark.lifecycle.blinds = true;
        let o = l.update(vec![dark], t(15), |_| Recheck::CouldNotCheck);
        assert_eq!(o.reported.len(), 1);
        assert_eq!(o.reported[0].leaves_unchecked, 2);
    }
}
