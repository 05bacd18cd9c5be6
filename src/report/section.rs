//! A section from what the ledger says: one item per finding reported (new, escalated,
//! changed, unchanged, back, acknowledgement expired) or resolved, a short summary of the
//! findings still open, the acknowledged ones, the counts, and a heading time that stays unique
//! across a fall-back hour.
//!
//! The heading tells what this section brings, not what the fleet carries: the worst severity of
//! its new, reopened and escalated items, or, when it has none, of its repeats and resolutions
//! (a resolution counts as INFO). A WARNING that is merely still open does not head every
//! section; it is in the summary and in `open.md`.
//!
//! The summary says how many findings are still open by severity and by node (every open one,
//! those reported in the section included: the same number `open.md`, the next section and the
//! weekly digest give), then the five most important of those not reported above, then links `open.md` for the rest. Importance, in order: severity (worst
//! first); then a finding whose evidence was read at this analysis before one that could not be
//! checked (that one is a last-known state, and what blinds patrol is an open finding of its
//! own); then a finding that escalated in its episode (it got worse while open); then the
//! newest episode first (the reader has seen it in fewer sections than a long-standing one);
//! then the title, so the order is total and the same run gives the same lines. `open.md`
//! lists every open and acknowledged finding by node in the same order.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Counts, Item, Section};
use crate::ledger::{
    Acknowledged, Deployment, Episode, Ledger, Outcome, Reason, Reported, Resolved,
};
use crate::markdown::{escape_inline, one_line};
use crate::model::{Finding, Severity};
use crate::units::fmt_duration;

/// "Feb 19 00:30", with the UTC offset when the local time happens twice (clocks falling back).
fn local_date(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    let text = local.format("%b %-d %H:%M").to_string();
    if is_ambiguous(&local) {
        format!("{text} (UTC{})", local.format("%:z"))
    } else {
        text
    }
}

/// Whether this local time is read twice on the clock (the hour repeated when clocks fall back).
fn is_ambiguous(local: &DateTime<Tz>) -> bool {
    use chrono::TimeZone;
    matches!(
        local.timezone().from_local_datetime(&local.naive_local()),
        chrono::LocalResult::Ambiguous(..)
    )
}

/// A section's heading time: local, with the UTC offset in force then, and with seconds when the
/// previous section was written in the same minute (two runs in one minute stay two headings).
pub fn heading_time(at: DateTime<Utc>, tz: Tz, previous: Option<DateTime<Utc>>) -> String {
    let local = at.with_timezone(&tz);
    let same_minute =
        previous.is_some_and(|p| p.timestamp().div_euclid(60) == at.timestamp().div_euclid(60));
    let clock = if same_minute {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M"
    };
    format!("{} (UTC{})", local.format(clock), local.format("%:z"))
}

/// How many still-open findings a section names; the rest are in `open.md`.
pub const OPEN_SHOWN: usize = 5;

/// Turns what the ledger says into a section; `None` when there is nothing new to say.
/// `previous` is when the last section was written; `ledger` (already updated) tells which
/// open findings escalated in their episode.
pub fn build_section(
    outcome: &Outcome,
    ledger: &Ledger,
    at: DateTime<Utc>,
    tz: Tz,
    previous: Option<DateTime<Utc>>,
) -> Option<Section> {
    if outcome.is_empty() {
        return None;
    }
    let local_date = |t: DateTime<Utc>| local_date(t, tz);
    let mut items: Vec<Item> = outcome
        .reported
        .iter()
        .map(|r| reported_item(r, &local_date))
        .collect();
    items.extend(
        outcome
            .resolved
            .iter()
            .map(|r| resolved_item(r, &local_date)),
    );
    let severity = heading_severity(outcome);
    let open = still_open(outcome, ledger);
    let every_open = all_open(outcome, ledger);
    let still_open: Vec<String> = open.iter().map(|o| open_line(o, &local_date)).collect();
    let acknowledged = acknowledged_lines(&outcome.acknowledged);
    let count = |pred: fn(&Reason) -> bool| outcome.count(pred);
    let counts = Counts {
        new: count(|r| matches!(r, Reason::New | Reason::Reopened { .. })),
        escalated: count(|r| matches!(r, Reason::Escalated { .. })),
        changed: count(|r| match r {
            Reason::Changed { .. } => true,
            Reason::Unchanged { then, .. } => !then.is_empty(),
            _ => false,
        }),
        unchanged: count(|r| match r {
            Reason::Unchanged { then, .. } => then.is_empty(),
            Reason::AckExpired { .. } => true,
            _ => false,
        }),
        resolved: outcome.resolved.len(),
        still_open: still_open.len(),
        acknowledged: acknowledged.len(),
    };
    Some(Section {
        heading_time: heading_time(at, tz, previous),
        severity: severity.label().to_string(),
        counts_text: counts_text(&counts),
        counts,
        items,
        // Every open finding, those reported above included: the number the next section's
        // "the same N", open.md and the weekly digest say.
        open_summary: open_summary(&every_open),
        open_top_same_as: match ledger.sections.back() {
            Some(last) if !last.top.is_empty() && last.top == top_keys(&open) => {
                local_date(last.at)
            }
            _ => String::new(),
        },
        open_top_keys: top_keys(&open),
        open_hash: open_hash(&every_open),
        open_same_as: match ledger.sections.back() {
            Some(last) if last.open_hash == Some(open_hash(&every_open)) => local_date(last.at),
            _ => String::new(),
        },
        open_top: still_open.iter().take(OPEN_SHOWN).cloned().collect(),
        open_more: still_open.len().saturating_sub(OPEN_SHOWN),
        open_total: every_open.len(),
        still_open,
        acknowledged,
    })
}

/// The findings a section names as the most important still open, by identity: when the next
/// section's are the same findings, it points back instead of naming them again.
fn top_keys(open: &[OpenFinding]) -> Vec<String> {
    open.iter()
        .take(OPEN_SHOWN)
        .map(|o| o.finding.key())
        .collect()
}

/// A fingerprint of which findings are open (FNV-1a over their sorted keys): when the next
/// section's is the same, it need not list them again. Stable across builds, unlike std's
/// hasher, because the ledger keeps it.
fn open_hash(open: &[OpenFinding]) -> u64 {
    let mut keys: Vec<String> = open.iter().map(|o| o.finding.key()).collect();
    keys.sort();
    crate::fnv::fnv1a(keys.join("\n").as_bytes())
}

/// "New 1, escalated 1": the counts that are not zero (still open is the summary's).
pub fn counts_text(c: &Counts) -> String {
    let told: Vec<String> = [
        ("New", c.new),
        ("escalated", c.escalated),
        ("changed", c.changed),
        ("repeated unchanged", c.unchanged),
        ("resolved", c.resolved),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what} {n}"))
    .collect();
    // A section of new findings only says so in its items.
    if c.new > 0 && told.len() == 1 && c.acknowledged == 0 {
        return String::new();
    }
    let mut text = told.join(", ");
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    // What is still open is said by the summary above it.
    if c.acknowledged > 0 {
        let acknowledged = format!("acknowledged {}", c.acknowledged);
        text = if text.is_empty() {
            "A".to_string() + &acknowledged[1..]
        } else {
            format!("{text}; {acknowledged}")
        };
    }
    text
}

/// The heading's severity: the worst new, reopened or escalated item; without one, the worst
/// repeat or resolution (INFO). What is merely still open never counts.
fn heading_severity(outcome: &Outcome) -> Severity {
    let news = outcome
        .reported
        .iter()
        .filter(|r| {
            matches!(
                r.reason,
                Reason::New | Reason::Reopened { .. } | Reason::Escalated { .. }
            )
        })
        .map(|r| r.finding.severity)
        .max();
    news.or_else(|| {
        outcome
            .reported
            .iter()
            .map(|r| r.finding.severity)
            .chain(std::iter::once(Severity::Info).filter(|_| !outcome.resolved.is_empty()))
            .max()
    })
    .unwrap_or(Severity::Info)
}

/// An open finding as the still-open summary and `open.md` show it.
pub(super) struct OpenFinding<'a> {
    pub finding: &'a Finding,
    pub unchecked_since: Option<DateTime<Utc>>,
    pub episode: Episode,
    pub escalated: bool,
}

impl OpenFinding<'_> {
    /// The node it is listed under; `None` for a finding about several nodes or a peer group
    /// (listed under "fleet").
    pub fn node(&self) -> Option<&str> {
        node_of(self.finding)
    }
}

/// The node a finding is listed under; `None` for one about several nodes or a peer group.
pub(super) fn node_of(f: &Finding) -> Option<&str> {
    match (f.nodes.as_slice(), &f.scope) {
        ([node], None) => Some(node.as_str()),
        _ => None,
    }
}

/// The order of importance the module doc gives.
fn by_importance(a: &OpenFinding, b: &OpenFinding) -> std::cmp::Ordering {
    b.finding
        .severity
        .cmp(&a.finding.severity)
        .then_with(|| {
            a.unchecked_since
                .is_some()
                .cmp(&b.unchecked_since.is_some())
        })
        .then_with(|| b.escalated.cmp(&a.escalated))
        .then_with(|| b.episode.start.cmp(&a.episode.start))
        .then_with(|| a.finding.title.cmp(&b.finding.title))
}

/// Whether the ledger saw this open finding escalate in its episode.
fn escalated(ledger: &Ledger, f: &Finding) -> bool {
    ledger.entry(&f.key()).is_some_and(|e| e.escalated)
}

/// The open findings not repeated in full in this section, most important first.
fn still_open<'a>(outcome: &'a Outcome, ledger: &Ledger) -> Vec<OpenFinding<'a>> {
    let mut open: Vec<OpenFinding> = outcome
        .still_open
        .iter()
        .map(|o| OpenFinding {
            finding: &o.finding,
            unchecked_since: o.unchecked_since,
            episode: o.episode,
            escalated: escalated(ledger, &o.finding),
        })
        .collect();
    open.sort_by(by_importance);
    open
}

/// Every open finding after this analysis, those this section reports in full included (an
/// event is told once and does not stay open), most important first.
pub(super) fn all_open<'a>(outcome: &'a Outcome, ledger: &Ledger) -> Vec<OpenFinding<'a>> {
    let mut open = still_open(outcome, ledger);
    open.extend(
        outcome
            .reported
            .iter()
            .filter(|r| !r.finding.event)
            .map(|r| OpenFinding {
                finding: &r.finding,
                unchecked_since: None,
                episode: r.episode,
                escalated: matches!(r.reason, Reason::Escalated { .. })
                    || escalated(ledger, &r.finding),
            }),
    );
    open.sort_by(by_importance);
    open
}

/// "9 WARNING", "30 INFO": how many open findings of each severity, worst first, none of zero.
/// Every open finding after this analysis, counted by severity label: what the section's
/// "N still open: …" line says.
pub fn open_by_severity(
    outcome: &Outcome,
    ledger: &Ledger,
) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for o in all_open(outcome, ledger) {
        *out.entry(o.finding.severity.label().to_string())
            .or_default() += 1;
    }
    out
}

pub(super) fn by_severity(open: &[OpenFinding]) -> Vec<String> {
    [Severity::Warning, Severity::Info, Severity::Suggestion]
        .into_iter()
        .filter_map(|sev| {
            let n = open.iter().filter(|o| o.finding.severity == sev).count();
            (n > 0).then(|| format!("{n} {}", sev.label()))
        })
        .collect()
}

/// "41 still open: 9 WARNING, 30 INFO, 2 SUGGESTION — vk01 18, vk02 12, vk03 11, fleet 2";
/// empty when nothing is.
fn open_summary(open: &[OpenFinding]) -> String {
    if open.is_empty() {
        return String::new();
    }
    let by_severity = by_severity(open);
    let mut by_node: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut fleet = 0;
    for o in open {
        match o.node() {
            Some(node) => *by_node.entry(node).or_default() += 1,
            None => fleet += 1,
        }
    }
    let mut nodes: Vec<String> = by_node
        .into_iter()
        .map(|(node, n)| format!("{} {n}", escape_inline(node)))
        .collect();
    if fleet > 0 {
        nodes.push(format!("fleet {fleet}"));
    }
    one_line(&format!(
        "{} still open: {} — {}",
        open.len(),
        by_severity.join(", "),
        nodes.join(", ")
    ))
}

/// A finding reported in full: its title says why it is reported again, its body what holds,
/// what to do, and whether the recommendation was deployed.
fn reported_item(r: &Reported, local_date: &dyn Fn(DateTime<Utc>) -> String) -> Item {
    let f = &r.finding;
    let mut title = f.title.clone();
    let mut body = f.evidence.clone();
    let open_since = open_since(&r.episode, local_date);
    match &r.reason {
        Reason::New => {}
        Reason::Reopened { after } => {
            body = format!(
                "Back at {} after resolving at {}. {body}",
                local_date(r.episode.start),
                local_date(*after)
            );
        }
        Reason::Escalated { why } => {
            title = format!("{title} — escalated: {why}");
            body = format!("{open_since}. {body}");
        }
        Reason::Changed { what } => {
            title = format!("{title} — changed: {what}");
            body = format!("{open_since}. {body}");
        }
        Reason::Unchanged { since, nth, then } if then.is_empty() => {
            title = format!(
                "{title} — unchanged since {}, {} report",
                local_date(*since),
                ordinal(*nth)
            );
            // Its figures are those printed then: the reader has them.
            body = "As reported then.".to_string();
            if r.episode.back_after.is_some() {
                body = format!("{open_since}. {body}");
            }
        }
        Reason::Unchanged { since, nth, then } => {
            title = format!(
                "{title} — open since {} ({}), {} report",
                local_date(r.episode.start),
                values_then(then, *since, r.episode.start, local_date),
                ordinal(*nth)
            );
            if r.episode.back_after.is_some() {
                body = format!("{open_since}. {body}");
            }
        }
        Reason::AckExpired { owner, reason } => {
            body = format!(
                "The acknowledgement by {owner} ({reason}) has expired and it still holds. {body}"
            );
        }
    }
    if r.leaves_unchecked > 0 {
        body.push_str(&format!(
            " It leaves {} about it unchecked: they stay open until it is seen again.",
            crate::units::plural(r.leaves_unchecked, "open finding")
        ));
    }
    // A repeat does not say again what to do when the reader was told it in these words.
    if !f.recommendation.is_empty() && !r.recommendation_told {
        body.push(' ');
        body.push_str(&f.recommendation);
    }
    match &r.deployment {
        Some(Deployment::NotYet { missing, since }) => body.push_str(&format!(
            " Recommendation not yet deployed: {missing} (since {}).",
            local_date(*since)
        )),
        Some(Deployment::Deployed { on }) => {
            body.push_str(&format!(" Recommendation deployed on {}.", local_date(*on)))
        }
        None => {}
    }
    Item {
        severity: f.severity.label().to_string(),
        title: one_line(&title),
        body: one_line(&body),
    }
}

/// "Open since Feb 23 00:15", and for a finding that came back, when its last episode resolved.
fn open_since(episode: &Episode, local_date: &dyn Fn(DateTime<Utc>) -> String) -> String {
    match episode.back_after {
        Some(after) => format!(
            "Open since {}, back after resolving at {}",
            local_date(episode.start),
            local_date(after)
        ),
        None => format!("Open since {}", local_date(episode.start)),
    }
}

/// "1.02GB in use then" for the values printed at the last report that differ now.
fn values_then(
    then: &[(String, String)],
    at: DateTime<Utc>,
    episode_start: DateTime<Utc>,
    local_date: &dyn Fn(DateTime<Utc>) -> String,
) -> String {
    let when = if at == episode_start {
        "then".to_string()
    } else {
        format!("at {}", local_date(at))
    };
    let values: Vec<String> = then
        .iter()
        .map(|(name, text)| match name.as_str() {
            "title" => format!("“{text}”"),
            _ => format!("{} {text}", name.replace('_', " ")),
        })
        .collect();
    format!("{} {when}", values.join(", "))
}

fn resolved_item(r: &Resolved, local_date: &dyn Fn(DateTime<Utc>) -> String) -> Item {
    let open_for = fmt_duration((r.resolved_at - r.episode.start).num_seconds() as f64);
    let now = match &r.now {
        Some(n) => format!("Now {n}. "),
        None => String::new(),
    };
    Item {
        severity: Severity::Info.label().to_string(),
        title: one_line(&format!("Resolved: {}", r.finding.title)),
        body: one_line(&format!(
            "{now}The condition {} no longer holds; it was open for {open_for}.",
            match r.episode.back_after {
                None => format!("first reported at {}", local_date(r.episode.start)),
                Some(after) => format!(
                    "(back at {} after resolving at {})",
                    local_date(r.episode.start),
                    local_date(after)
                ),
            }
        )),
    }
}

/// One line of an open finding: severity, title, and since when it is open or could not be
/// checked.
pub(super) fn open_line(o: &OpenFinding, local_date: &dyn Fn(DateTime<Utc>) -> String) -> String {
    let f = o.finding;
    one_line(&match o.unchecked_since {
        Some(t) => format!(
            "[{}] {} (could not check since {})",
            f.severity.label(),
            f.title,
            local_date(t)
        ),
        None => format!(
            "[{}] {} ({})",
            f.severity.label(),
            f.title,
            match o.episode.back_after {
                None => format!("since {}", local_date(o.episode.start)),
                Some(after) => format!(
                    "since {}, back after resolving at {}",
                    local_date(o.episode.start),
                    local_date(after)
                ),
            }
        ),
    })
}

fn acknowledged_lines(acknowledged: &[Acknowledged]) -> Vec<String> {
    acknowledged.iter().map(acknowledged_line).collect()
}

/// One line of an acknowledged finding: severity, title, who acknowledged it, why, until when.
pub(super) fn acknowledged_line(a: &Acknowledged) -> String {
    one_line(&format!(
        "[{}] {} ({}: {}; until {})",
        a.finding.severity.label(),
        a.finding.title,
        escape_inline(&a.owner),
        escape_inline(&a.reason),
        a.expires
    ))
}

/// `local_date` for callers outside this module.
pub(super) fn local_date_in(tz: Tz) -> impl Fn(DateTime<Utc>) -> String {
    move |t| local_date(t, tz)
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
