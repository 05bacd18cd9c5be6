//! Derived states at past captures, for kinds whose verdict spans a window.
//!
//! The engine checks a rule's gate (`when = { line = "idle" }`) on the node's newest capture
//! only. A kind that averages or fits readings over an hour would then mix readings taken in
//! another state into an "idle" verdict (a production hour still in the window of a node that
//! just went idle makes a false "six times its peer"). This module answers, from the same
//! `[[state]]` definitions, what a state was at any earlier capture of a node, so every such kind
//! asks the same question ("did the gate hold at every reading I use?") instead of each one
//! re-implementing it.

use crate::history::{NodeHistory, Window};
use crate::rules::select::glob_match;
use crate::rules::states::{Condition, Gate, StateDef};

/// One condition at the capture taken at `at` (the node's own capture time): as
/// [`Condition::holds`] does for the newest one. `tolerance` admits the newest reading up to that
/// many seconds before `at` (another node's capture near a moment, for fleet-wide states).
fn condition_at(c: &Condition, node: &NodeHistory, at: i64, tolerance: i64) -> Option<bool> {
    let mut seen = false;
    for (entity, series) in node.series_of(&c.metric) {
        if !glob_match(&c.entity, entity) {
            continue;
        }
        let upto = series.points.partition_point(|p| p.at <= at);
        let Some(point) = upto
            .checked_sub(1)
            .and_then(|i| series.points.get(i))
            .filter(|p| at - p.at <= tolerance)
        else {
            continue;
        };
        let Some(v) = point.value else { continue };
        seen = true;
        if c.above.is_none_or(|a| v > a) && c.below.is_none_or(|b| v < b) {
            return Some(true);
        }
    }
    seen.then_some(false)
}

/// A node-scoped state of `node` at its capture at `at`; `None` when nothing could be read.
fn node_state_at(def: &StateDef, node: &NodeHistory, at: i64, tolerance: i64) -> Option<String> {
    let mut judged = false;
    for case in &def.cases {
        for cond in &case.any {
            match condition_at(cond, node, at, tolerance) {
                Some(true) => return Some(case.value.clone()),
                Some(false) => judged = true,
                None => {}
            }
        }
    }
    judged.then(|| def.otherwise.clone())
}

/// The value of `def` for `node` at its capture at `at`. A fleet-wide state is, as at the
/// newest capture, the first case that holds on any node, each node read at its newest capture
/// no more than one capture interval before `at` (nodes are captured seconds apart).
pub fn state_at(def: &StateDef, window: &Window, node: &NodeHistory, at: i64) -> Option<String> {
    if !def.fleet {
        return node_state_at(def, node, at, 0);
    }
    let values: Vec<Option<String>> = window
        .nodes()
        .map(|n| {
            let tolerance = n.capture_interval().unwrap_or(0).max(0);
            node_state_at(def, n, at, tolerance)
        })
        .collect();
    def.fleet_value(values)
}

/// Whether `gate` held on `node` at its capture at `at`: every state it names had the value it
/// wants. A state that could not be read does not hold.
pub fn held_at(
    gate: &Gate,
    defs: &[StateDef],
    window: &Window,
    node: &NodeHistory,
    at: i64,
) -> bool {
    gate.require.iter().all(|(state, want)| {
        defs.iter()
            .find(|d| &d.id == state)
            .and_then(|d| state_at(d, window, node, at))
            .is_some_and(|v| &v == want)
    })
}

/// Whether `gate` held on `node` at every one of `times` (its own capture times, e.g. the
/// readings a kind averages). An empty gate always holds.
pub fn held_throughout(
    gate: &Gate,
    defs: &[StateDef],
    window: &Window,
    node: &NodeHistory,
    times: impl IntoIterator<Item = i64>,
) -> bool {
    gate.is_empty()
        || times
            .into_iter()
            .all(|at| held_at(gate, defs, window, node, at))
}

/// The earliest of `times` (ascending capture times of `node`) from which `gate` held at every
/// one up to the newest; `None` when it did not hold at the newest. A kind computes this once
/// per node and compares it with the start of the readings it uses.
pub fn held_since(
    gate: &Gate,
    defs: &[StateDef],
    window: &Window,
    node: &NodeHistory,
    times: &[i64],
) -> Option<i64> {
    if gate.is_empty() {
        return times.first().copied();
    }
    let mut since = None;
    for &at in times.iter().rev() {
        if !held_at(gate, defs, window, node, at) {
            break;
        }
        since = Some(at);
    }
    since
}
