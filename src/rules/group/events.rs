//! Events in grouping: one rule's event on several nodes is one problem only when the events
//! happened together, and an event is news only from a capture of the round being analysed.

use crate::history::Window;
use crate::model::Finding;

/// Whether `node`'s newest capture belongs to the round at `round` (within half its interval).
pub(super) fn in_round(window: &Window, node: &str, round: Option<i64>) -> bool {
    let Some(round) = round else { return true };
    window
        .node(node)
        .is_some_and(|n| n.captured_in_round(round))
}

/// Events of one rule are one problem only when they happened together (a site's power cut
/// rebooting its nodes in the same minute): their times, within this many seconds of the first.
pub const EVENTS_TOGETHER_S: i64 = 600;

/// Conditions as they are; events split into runs that happened together, by the time their
/// kind gives them (`event_id`, seconds). An event without a readable time stands alone.
pub(super) fn together(members: Vec<Finding>) -> Vec<Vec<Finding>> {
    if !members.iter().any(|f| f.event) {
        return vec![members];
    }
    let mut timed: Vec<(i64, Finding)> = Vec::new();
    let mut clusters: Vec<Vec<Finding>> = Vec::new();
    for f in members {
        match f.event_id.as_deref().and_then(|id| id.parse::<i64>().ok()) {
            Some(at) if f.event => timed.push((at, f)),
            _ => clusters.push(vec![f]),
        }
    }
    timed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.nodes.cmp(&b.1.nodes)));
    let mut start = None;
    for (at, f) in timed {
        match (start, clusters.last_mut()) {
            (Some(first), Some(last)) if at - first <= EVENTS_TOGETHER_S => last.push(f),
            _ => {
                start = Some(at);
                clusters.push(vec![f]);
            }
        }
    }
    clusters
}
