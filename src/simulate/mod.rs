//! The scenario simulator: turns a declarative scenario into the snapshots a real fleet would
//! have produced, capture by capture. The demo fleet, the rule fixtures and the benchmarks are
//! all scenarios, and so is any fleet a user wants to test a rule against before trusting it.
//!
//! Same scenario and seed, same snapshots, byte for byte: randomness comes from a stable hash
//! of (seed, node, series, time), never from a global generator or map order.

mod containers;
mod lifecycle;
mod logs;
pub mod scenario;
mod sections;
mod services;
mod trajectory;
mod workload;

use std::path::Path;

use chrono::Utc;

use crate::error::{Error, Result};
use crate::model::{Snapshot, validate_node_name};
use scenario::{NodeSpec, Scenario};
use sections::node_snapshot;
use trajectory::{Clock, NodeState, hash, unit_noise};

/// Reads and checks a scenario file; mistakes come back with line and column.
pub fn load(path: &Path) -> Result<Scenario> {
    let text = crate::fsutil::read_to_string(path)?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Scenario> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        Error::bad_file(
            path,
            format!("line {line}, column {col}: {}", e.message().trim()),
        )
    })?;
    let problems = scenario::check(text, &scenario);
    if !problems.is_empty() {
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            problems,
        });
    }
    for node in expand_nodes(&scenario) {
        validate_node_name(&node.name).map_err(|m| Error::bad_file(path, m))?;
    }
    if scenario.scenario.interval.0 < 1.0 {
        return Err(Error::bad_file(
            path,
            "scenario.interval must be at least 1s",
        ));
    }
    Ok(scenario)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before.len() - i)
        .unwrap_or(before.len() + 1);
    (line, col)
}

/// Nodes written out plus nodes stamped from templates.
pub fn expand_nodes(s: &Scenario) -> Vec<NodeSpec> {
    let mut nodes = s.node.clone();
    for t in &s.node_template {
        let width = t.count.to_string().len().max(3);
        for i in 1..=t.count {
            let mut n = t.node.clone();
            n.name = format!("{}{:0width$}", t.prefix, i);
            if let Some(first) = t.node.container.first() {
                for k in 1..=t.extra_containers {
                    let mut c = first.clone();
                    c.name = format!("{}-{k}", first.name);
                    n.container.push(c);
                }
            }
            nodes.push(n);
        }
    }
    nodes
}

/// Capture round times of the whole fleet (before per-node jitter).
fn round_times(s: &Scenario, clock: &Clock) -> Vec<f64> {
    let h = &s.scenario;
    let (start, end) = (clock.at(&h.start), clock.at(&h.end));
    let mut out = Vec::new();
    let mut t = start;
    while t <= end {
        if !clock.active(&h.gaps, t) {
            out.push(t);
        }
        t += h.interval.0;
    }
    for extra in &h.extra_captures {
        out.push(clock.at(extra));
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    out
}

/// Builds every snapshot of the scenario, oldest first (then by node).
pub fn generate(s: &Scenario) -> Result<Vec<Snapshot>> {
    let mut out = Vec::new();
    generate_each(s, |snap| out.push(snap))?;
    out.sort_by(|a, b| {
        a.captured_at
            .cmp(&b.captured_at)
            .then_with(|| a.node.cmp(&b.node))
    });
    Ok(out)
}

/// Builds the snapshots node by node (each node's oldest first) and hands each to `emit`, so a
/// large fleet need not be held in memory.
pub fn generate_each(s: &Scenario, mut emit: impl FnMut(Snapshot)) -> Result<()> {
    let h = &s.scenario;
    let start = h.start.resolve(h.timezone.0, Utc::now());
    let clock = Clock {
        tz: h.timezone.0,
        start,
    };
    if clock.at(&h.end) < clock.at(&h.start) {
        return Err(Error::Usage("scenario.end is before scenario.start".into()));
    }
    let rounds = round_times(s, &clock);
    for (index, node) in expand_nodes(s).iter().enumerate() {
        let mut state = NodeState::new(h.seed, &node.name, &clock, clock.at(&h.start));
        for round in &rounds {
            let jitter = if h.jitter.0 > 0.0 {
                let j = unit_noise(hash(&[
                    &h.seed.to_le_bytes(),
                    b"jitter",
                    node.name.as_bytes(),
                    &(*round as i64).to_le_bytes(),
                ]));
                ((j + 1.0) / 2.0 * h.jitter.0).floor()
            } else {
                0.0
            };
            let t = (round + jitter + (index % 30) as f64 * 2.0).floor();
            emit(node_snapshot(s, node, &mut state, t));
            state.last_capture = Some(t);
        }
    }
    Ok(())
}

/// A one-node scenario of one hour at 15-minute captures, for the simulator's unit tests: `run`
/// appends the node's keys (`body`) and generates its snapshots.
#[cfg(test)]
pub(crate) mod one_node {
    use crate::model::Snapshot;

    pub const HEADER: &str = "[scenario]\nfleet = \"f\"\nstart = \"2026-02-18T00:00:00Z\"\nend = \"2026-02-18T01:00:00Z\"\ninterval = \"15m\"\n[[node]]\nname = \"n1\"\n";

    pub fn run(body: &str) -> Vec<Snapshot> {
        let text = format!("{HEADER}{body}");
        let s = match crate::simulate::parse(std::path::Path::new("s.toml"), &text) {
            Ok(s) => s,
            Err(e) => panic!("scenario refused: {e}"),
        };
        match crate::simulate::generate(&s) {
            Ok(snaps) => snaps,
            Err(e) => panic!("not generated: {e}"),
        }
    }
}
