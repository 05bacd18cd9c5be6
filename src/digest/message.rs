//! The digest as Telegram HTML lines, most important first and read on a phone: the week and how
//! much of it patrol saw, the top action and why, one short line per node (✅ ⚠️ ❌, its score
//! and what holds it back, at most [`PHONE_LINE`] characters), the findings, containers in
//! trouble, what is not deployed, then each node's details and the growers.
//! `crate::telegram` splits the lines into messages.

use super::view::{bytes, counts_text, pct};
use super::{Digest, Grower, NodeDigest};
use crate::telegram::escape;
use crate::units::fmt_number;

/// The digest as Telegram HTML lines.
pub fn telegram_lines(d: &Digest) -> Vec<String> {
    let mut lines = vec![format!(
        "<b>{} — week {}</b> ({} to {})",
        escape(&d.fleet),
        escape(&d.week),
        escape(&d.from),
        escape(&d.to)
    )];
    if let Some(c) = &d.coverage {
        lines.push(format!(
            "patrol saw {} of {} capture rounds ({})",
            c.captured,
            c.expected,
            pct(Some(c.captured as f64 / c.expected.max(1) as f64 * 100.0))
        ));
    }
    if let Some(action) = &d.top_action {
        lines.push(format!(
            "<b>Top action:</b> {}",
            escape(&strip_backticks(action))
        ));
        if let Some(why) = &d.top_action_reason {
            lines.push(format!("<i>Why first: {}</i>", escape(why)));
        }
    }
    lines.push(String::new());
    lines.push("<b>Nodes</b>".into());
    lines.extend(d.nodes.iter().map(status_line));
    lines.push(String::new());
    finding_lines(d, &mut lines);
    lines.push(String::new());
    lines.push("<b>Details</b>".into());
    for n in &d.nodes {
        lines.push(score_line(n));
        lines.push(node_line(n));
    }
    if !d.growers.is_empty() {
        lines.push(String::new());
        lines.push("<b>Top memory growers</b>".into());
        lines.extend(d.growers.iter().map(grower_line));
    }
    lines
}

/// The longest a node's status line may be, in characters: what a phone shows on one line.
pub const PHONE_LINE: usize = 40;

/// How a node's week went, at a glance: ❌ up under half the rounds or scoring under 50; ⚠️ up
/// under 95 % of them, scoring under 80, a container unhealthy, restarting or OOM-killed, or its
/// disk full within 30 days; ✅ otherwise.
pub fn status(n: &NodeDigest) -> &'static str {
    let up = n.availability_pct.unwrap_or(0.0);
    let score = n.score.unwrap_or(0);
    if up < 50.0 || (n.score.is_some() && score < 50) {
        "❌"
    } else if up < 95.0
        || n.score.is_none_or(|s| s < 80)
        || n.trouble
            .iter()
            .any(|t| t.unhealthy_s > 0 || t.restarting_s > 0 || t.oom_kills > 0)
        || n.disk_full_in_days.is_some_and(|d| d < 30.0)
    {
        "⚠️"
    } else {
        "✅"
    }
}

/// "⚠️ vk01 82/100 · Disk 0/15": the mark, the node, its score and what holds it back most;
/// a node not up says how much it was up instead. Cut to [`PHONE_LINE`] characters.
fn status_line(n: &NodeDigest) -> String {
    let mark = status(n);
    let score = n
        .score
        .map(|s| format!("{s}/100"))
        .unwrap_or_else(|| "no score".into());
    let up = n.availability_pct.unwrap_or(0.0);
    let why = if up < 95.0 {
        if n.up == 0 && n.ran_nothing > 0 {
            "ran nothing".to_string()
        } else {
            format!("up {}", pct(n.availability_pct))
        }
    } else if let Some(d) = n.disk_full_in_days.filter(|d| *d < 30.0) {
        format!("disk full in {} d", fmt_number(d, 0))
    } else {
        n.weakest_short.clone().unwrap_or_default()
    };
    let mut line = format!("{mark} {} {score}", n.node);
    if !why.is_empty() {
        line.push_str(" · ");
        line.push_str(&why);
    }
    escape(&cut(&line, PHONE_LINE))
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A node's score, its trend on last week, and its weakest dimension.
fn score_line(n: &NodeDigest) -> String {
    let trend = match (n.score, n.score_last_week) {
        (Some(a), Some(b)) if a > b => format!(" (▲ +{} on last week)", a - b),
        (Some(a), Some(b)) if a < b => format!(" (▼ -{} on last week)", b - a),
        (Some(_), Some(_)) => " (= last week)".into(),
        _ => String::new(),
    };
    let why = match (&n.weakest, &n.unscored) {
        (Some(w), _) => format!(" — weakest {}", escape(w)),
        (None, Some(u)) => format!(" — {}", escape(u)),
        _ => String::new(),
    };
    format!(
        "{}: {}/100{trend}{why}",
        escape(&n.node),
        n.score.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
    )
}

/// The findings' counts, then containers in trouble, what is not deployed and drift.
fn finding_lines(d: &Digest, lines: &mut Vec<String>) {
    lines.push(format!(
        "<b>Findings</b> opened {}; resolved {}; still open {}",
        counts_text(&d.findings.opened),
        counts_text(&d.findings.resolved),
        counts_text(&d.findings.still_open)
    ));
    let troubled: Vec<String> = d
        .nodes
        .iter()
        .flat_map(|n| {
            n.trouble.iter().map(move |t| {
                format!(
                    "{} <code>{}</code> {}",
                    escape(&n.node),
                    escape(&t.container),
                    escape(&t.text())
                )
            })
        })
        .collect();
    if !troubled.is_empty() {
        lines.push("<b>Containers in trouble</b>".into());
        lines.extend(troubled);
    }
    for t in &d.not_deployed {
        lines.push(format!("Not deployed: {}", escape(&strip_backticks(t))));
    }
    for t in &d.drift {
        lines.push(format!("Drift: {}", escape(&strip_backticks(t))));
    }
}

/// A node's week in one line; what did not happen (no reboot, no GPU) is left out.
fn node_line(n: &NodeDigest) -> String {
    let mut parts = vec![format!("up {}", super::view::availability_text(n))];
    if let Some(c) = n.coverage.as_ref().filter(|c| c.missed > 0) {
        parts.push(format!("missed {} of {} rounds", c.missed, c.expected));
    }
    if n.reboots > 0 {
        parts.push(format!(
            "{} reboot{}",
            n.reboots,
            if n.reboots == 1 { "" } else { "s" }
        ));
    }
    parts.push(format!("steal {}", pct(n.steal_avg_pct)));
    parts.push(format!("mem avail {}", bytes(n.mem_available_avg)));
    parts.push(format!("swap peak {}", bytes(n.swap_peak)));
    if let (Some(m), Some(p)) = (&n.disk_mount, n.disk_used_pct) {
        let full = n
            .disk_full_in_days
            .map(|d| format!(", full in {} days", fmt_number(d, 0)))
            .unwrap_or_default();
        parts.push(format!("disk {} {}{full}", escape(m), pct(Some(p))));
    }
    if let Some(h) = n.gpu_idle_hours {
        parts.push(format!("GPU idle {} h", fmt_number(h, 1)));
    }
    if let (Some(a), Some(b)) = (n.gpu_temp_min, n.gpu_temp_max) {
        parts.push(format!("GPU {}-{}°C", fmt_number(a, 0), fmt_number(b, 0)));
    }
    format!("{}: {}", escape(&n.node), parts.join(", "))
}

fn grower_line(g: &Grower) -> String {
    format!(
        "{} <code>{}</code> {}",
        escape(&g.node),
        escape(&g.container),
        escape(&super::view::grower_numbers(g))
    )
}

/// Finding titles carry markdown code spans; in a Telegram line they are plain text.
fn strip_backticks(text: &str) -> String {
    text.replace('`', "")
}
