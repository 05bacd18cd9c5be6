//! A digest turned into printed text: the numbers as the markdown template (`digest.md.j2`)
//! shows them, formatted here so the template only lays them out.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Digest, Grower, NodeDigest, rounds};
use crate::markdown::escape_inline;
use crate::units::{self, fmt_bytes, fmt_number};

/// Helpers to print digest numbers the way the report does.
pub fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{}%", fmt_number(x, 1)))
        .unwrap_or_else(|| "-".into())
}

pub fn bytes(v: Option<f64>) -> String {
    v.map(fmt_bytes).unwrap_or_else(|| "-".into())
}

/// A digest turned into printed text: what the markdown template and the Telegram message show.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub fleet: String,
    pub week: String,
    pub from: String,
    pub to: String,
    pub timezone: String,
    pub coverage: String,
    pub top_action: String,
    /// The score card's dimensions with their points ("CPU efficiency (20)"), as the nodes'
    /// cards name them; empty when no node was scored.
    pub dimension_names: Vec<String>,
    /// Why it comes first ("importance 15.6: warning (3) × …"), empty when nothing is open.
    pub top_action_reason: String,
    pub nodes: Vec<NodeView>,
    pub opened: String,
    pub resolved: String,
    pub still_open: String,
    pub trouble: Vec<String>,
    pub drift: Vec<String>,
    pub not_deployed: Vec<String>,
    pub growers: Vec<String>,
    pub charts: Vec<ChartView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// ✅ ⚠️ ❌ (see [`super::message::status`]).
    pub status: String,
    /// What gave it the mark ("down since Sun 19:30", "2 warnings open").
    pub status_reason: String,
    /// Its score card, one cell per dimension of [`View::dimension_names`] ("-" unscored).
    pub dimensions: Vec<String>,
    pub node: String,
    pub score: String,
    pub score_last_week: String,
    pub trend: String,
    pub weakest: String,
    pub availability: String,
    pub missed: String,
    pub reboots: String,
    pub steal: String,
    pub mem_available: String,
    pub swap_peak: String,
    pub disk: String,
    pub disk_full: String,
    pub gpu_idle: String,
    pub gpu_temp: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChartView {
    pub file: String,
    pub alt: String,
}

/// How the interval that rounds are counted at was known.
fn interval_note(source: rounds::IntervalSource) -> &'static str {
    match source {
        rounds::IntervalSource::Recorded => "(the interval the captures recorded)",
        rounds::IntervalSource::Inferred => {
            "(inferred from the median spacing of captures: this archive's captures do not record their interval)"
        }
    }
}

/// "2 warning, 1 info", or "none": shared with the Telegram message.
pub(super) fn counts_text(c: &BTreeMap<String, usize>) -> String {
    if c.is_empty() {
        return "none".into();
    }
    ["WARNING", "INFO", "SUGGESTION"]
        .iter()
        .filter_map(|s| c.get(*s).map(|n| format!("{n} {}", s.to_ascii_lowercase())))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn view(d: &Digest, charts: Vec<ChartView>) -> View {
    View {
        fleet: escape_inline(&d.fleet),
        week: d.week.clone(),
        from: d.from.clone(),
        to: d.to.clone(),
        timezone: d.timezone.clone(),
        coverage: coverage_text(d),
        top_action: d
            .top_action
            .clone()
            .unwrap_or_else(|| "nothing open; keep it that way.".into()),
        top_action_reason: d.top_action_reason.clone().unwrap_or_default(),
        dimension_names: dimension_names(d),
        nodes: d
            .nodes
            .iter()
            .map(|n| node_view(n, d.timezone.parse().unwrap_or(chrono_tz::UTC)))
            .collect(),
        opened: counts_text(&d.findings.opened),
        resolved: counts_text(&d.findings.resolved),
        still_open: counts_text(&d.findings.still_open),
        trouble: trouble(&d.nodes),
        drift: d.drift.clone(),
        not_deployed: d.not_deployed.clone(),
        growers: d.growers.iter().map(grower_line).collect(),
        charts,
    }
}

/// The dimensions of the first scored node's card, "CPU efficiency (20)"; every card has the
/// same.
fn dimension_names(d: &Digest) -> Vec<String> {
    d.nodes
        .iter()
        .find(|n| !n.dimensions.is_empty())
        .map(|n| {
            n.dimensions
                .iter()
                .map(|dim| format!("{} ({})", dim.name, dim.max))
                .collect()
        })
        .unwrap_or_default()
}

/// The fleet's capture rounds against its schedule, as one sentence.
fn coverage_text(d: &Digest) -> String {
    match &d.coverage {
        Some(c) => format!(
            "patrol ran {} of {} capture rounds ({}; {} missed{}) at {} {}.",
            c.captured,
            c.expected,
            pct(Some(c.captured as f64 / c.expected.max(1) as f64 * 100.0)),
            c.missed,
            if c.extra > 0 {
                format!(", and {} off the schedule", c.extra)
            } else {
                String::new()
            },
            units::fmt_duration(c.interval_s as f64),
            interval_note(c.source)
        ),
        None => format!("patrol ran {} capture rounds.", d.rounds),
    }
}

/// A node's row of the table.
fn node_view(n: &NodeDigest, tz: chrono_tz::Tz) -> NodeView {
    NodeView {
        status: super::message::status(n).to_string(),
        status_reason: escape_inline(&super::message::status_reason(n, tz)),
        dimensions: n
            .dimensions
            .iter()
            // patrol's own words (a code span naming the cleanup job): only a pipe would break
            // the table.
            .map(|dim| dim.text().replace('|', "\\|"))
            .collect(),
        node: escape_inline(&n.node),
        score: n.score.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
        score_last_week: n
            .score_last_week
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        trend: match (n.score, n.score_last_week) {
            (Some(a), Some(b)) if a > b => format!("▲ +{}", a - b),
            (Some(a), Some(b)) if a < b => format!("▼ -{}", b - a),
            (Some(_), Some(_)) => "=".into(),
            _ => "-".into(),
        },
        weakest: n
            .weakest
            .as_deref()
            .or(n.unscored.as_deref())
            .map(escape_inline)
            .unwrap_or_else(|| "-".into()),
        availability: availability_text(n),
        missed: n
            .coverage
            .as_ref()
            .map(|c| format!("{} of {}", c.missed, c.expected))
            .unwrap_or_else(|| "-".into()),
        reboots: n.reboots.to_string(),
        steal: pct(n.steal_avg_pct),
        mem_available: bytes(n.mem_available_avg),
        swap_peak: bytes(n.swap_peak),
        disk: match (&n.disk_mount, n.disk_used_pct) {
            (Some(m), Some(p)) => format!("`{}` {}", m, pct(Some(p))),
            _ => "-".into(),
        },
        disk_full: match (n.disk_full_in_days, n.disk_used_pct) {
            (Some(d), _) => format!("{} days", fmt_number(d, 0)),
            (None, Some(_)) => "not filling".into(),
            (None, None) => "-".into(),
        },
        gpu_idle: n
            .gpu_idle_hours
            .map(|h| format!("{} h", fmt_number(h, 1)))
            .unwrap_or_else(|| "-".into()),
        gpu_temp: match (n.gpu_temp_min, n.gpu_temp_max) {
            (Some(a), Some(b)) => format!("{}-{}°C", fmt_number(a, 0), fmt_number(b, 0)),
            _ => "-".into(),
        },
    }
}

/// Up (answered and ran containers) of the week's rounds, and why a round that answered is not
/// counted: "0% (0/25; 25 answered with no container running)".
pub(super) fn availability_text(n: &NodeDigest) -> String {
    let mut why = Vec::new();
    if n.ran_nothing > 0 {
        why.push(format!(
            "{} answered with no container running",
            n.ran_nothing
        ));
    }
    if n.no_container_list > 0 {
        why.push(format!(
            "{} answered without its container list",
            n.no_container_list
        ));
    }
    let why = if why.is_empty() {
        String::new()
    } else {
        format!("; {}", why.join(", "))
    };
    format!("{} ({}/{}{why})", pct(n.availability_pct), n.up, n.rounds)
}

/// Containers in trouble during the week (restarting, restarted, OOM-killed, unhealthy, with
/// how long), node by node, worst first within a node.
fn trouble(nodes: &[NodeDigest]) -> Vec<String> {
    nodes
        .iter()
        .flat_map(|n| {
            n.trouble
                .iter()
                .map(move |t| format!("{} `{}` {}", escape_inline(&n.node), t.container, t.text()))
        })
        .collect()
}

fn grower_line(g: &Grower) -> String {
    format!(
        "{} `{}` {}",
        escape_inline(&g.node),
        g.container,
        grower_numbers(g)
    )
}

/// "+1.09GB/day (its floor rose 4.5GB over the week, 1.02GB → 5.5GB)", or "…, across 1 reset;
/// now 1.46GB)".
pub(super) fn grower_numbers(g: &Grower) -> String {
    // Across a reset, first and last say nothing of the growth: what it holds now does.
    let levels = match g.resets {
        0 => format!("{} → {}", fmt_bytes(g.first), fmt_bytes(g.last)),
        1 => format!("across 1 reset; now {}", fmt_bytes(g.last)),
        n => format!("across {n} resets; now {}", fmt_bytes(g.last)),
    };
    format!(
        "+{}/day (its floor rose {} over the week, {levels})",
        fmt_bytes(g.slope_per_day),
        fmt_bytes(g.growth),
    )
}
