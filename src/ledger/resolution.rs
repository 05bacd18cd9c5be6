//! The resolution step: an open finding its rule did not raise resolves only after its rule
//! saw the subject healthy on fresh readings for `resolve_after` analysed captures in a row.
//! One quiet capture could be the gap between two bad ones, and a capture that could not check
//! it (node silent, source failing, states changed) is not a healthy one: it starts the count
//! again and the finding shows as "could not check since …".

use chrono::{DateTime, Utc};

use std::collections::BTreeMap;

use super::{Entry, Recheck, Resolved, Status};
use crate::model::Finding;

/// The finding seen again, with the derived states of when its episode was raised: seen bad
/// again in another state (a log line read after production stopped) says nothing about
/// whether its absence in that state means it is fixed.
pub(super) fn keep_context(open: &Finding, mut seen: Finding) -> Finding {
    if !open.context.is_empty() {
        seen.context = open.context.clone();
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
