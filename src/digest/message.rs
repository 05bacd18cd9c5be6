//! The digest as Telegram HTML lines, most important first and read on a phone: the week and how
//! much of it patrol saw, the top action and why, one short line per node (✅ ⚠️ ❌, its score
//! and what gave it the mark, at most [`PHONE_LINE`] characters), the findings, containers in
//! trouble, what is not deployed, then each node's details and the growers.
//! `crate::telegram` splits the lines into messages.

use super::view::{bytes, counts_text, pct};
use super::{Digest, Grower, NodeDigest};
use crate::markdown::cut;
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
    let tz: chrono_tz::Tz = d.timezone.parse().unwrap_or(chrono_tz::UTC);
    lines.extend(d.nodes.iter().map(|n| status_line(n, tz)));
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

/// How a node's week went, at a glance: ❌ down at the week's end (its last capture not up) or
/// up under half of its rounds; ⚠️ up under 95 % of them, a warning open about it, scoring under
/// 80 (or not scored), a container restarting, unhealthy or OOM-killed, or its disk full within
/// 30 days; ✅ otherwise.
pub fn status(n: &NodeDigest) -> &'static str {
    let up = n.availability_pct.unwrap_or(0.0);
    if n.down_since.is_some() || up < 50.0 {
        "❌"
    } else if up < 95.0
        || n.open_warnings > 0
        || n.score.is_none_or(|s| s < 80)
        || first_trouble(n).is_some()
        || disk_soon(n).is_some()
    {
        "⚠️"
    } else {
        "✅"
    }
}

/// The first container in trouble beyond a restart now and then.
fn first_trouble(n: &NodeDigest) -> Option<&super::ContainerTrouble> {
    n.trouble
        .iter()
        .find(|t| t.unhealthy_s > 0 || t.restarting_s > 0 || t.oom_kills > 0)
}

/// Days until its fullest disk is full, when that is within 30.
fn disk_soon(n: &NodeDigest) -> Option<f64> {
    n.disk_full_in_days.filter(|d| *d < 30.0)
}

/// What gave the node its mark, in a few words: why it is down, then why it is amber, in the
/// order [`status`] weighs them; for a green node the dimension that lost the most points.
pub fn status_reason(n: &NodeDigest, tz: chrono_tz::Tz) -> String {
    let up = n.availability_pct.unwrap_or(0.0);
    if let Some(since) = n.down_since {
        let at = chrono::DateTime::from_timestamp(since, 0)
            .map(|t| t.with_timezone(&tz).format("%a %H:%M").to_string())
            .unwrap_or_default();
        return format!("down since {at}");
    }
    if up < 95.0 {
        return format!("up {}", pct(n.availability_pct));
    }
    if n.open_warnings > 0 {
        let s = if n.open_warnings == 1 { "" } else { "s" };
        return format!("{} warning{s} open", n.open_warnings);
    }
    if let Some(t) = first_trouble(n) {
        let what = t.text();
        let first = what.split(", ").next().unwrap_or_default();
        return format!("{} {first}", t.container);
    }
    if let Some(d) = disk_soon(n) {
        return format!("disk full in {} d", fmt_number(d, 0));
    }
    match (&n.score, &n.weakest_short) {
        (None, _) => "no score".into(),
        (Some(_), Some(w)) => w.clone(),
        (Some(_), None) => String::new(),
    }
}

/// "⚠️ vk01 82/100 · 2 warnings open": the mark, the node, its score and what gave it the mark,
/// at most [`PHONE_LINE`] characters: a long node name is shortened first, then the reason.
fn status_line(n: &NodeDigest, tz: chrono_tz::Tz) -> String {
    let mark = status(n);
    let score = n
        .score
        .map(|s| format!("{s}/100"))
        .unwrap_or_else(|| "no score".into());
    let reason = status_reason(n, tz);
    let mut suffix = format!(" {score}");
    if !reason.is_empty() && reason != "no score" {
        suffix.push_str(" · ");
        suffix.push_str(&reason);
    }
    let fixed = mark.chars().count() + 1 + suffix.chars().count();
    // At least eight characters of the name stay, so lines can still be told apart.
    let room = PHONE_LINE.saturating_sub(fixed).max(8);
    let line = format!("{mark} {}{suffix}", cut(&n.node, room));
    escape(&cut(&line, PHONE_LINE))
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
