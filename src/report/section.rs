//! A section from what the ledger says: one item per finding reported (new, escalated,
//! changed, unchanged, back, acknowledgement expired) or resolved, one line per finding still
//! open or acknowledged, the counts, and a heading time that stays unique across a fall-back hour.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Counts, Item, Section};
use crate::ledger::{
    Acknowledged, Deployment, Episode, Outcome, Reason, Reported, Resolved, StillOpen,
};
use crate::markdown::{escape_inline, one_line};
use crate::model::Severity;
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

/// Turns what the ledger says into a section; `None` when there is nothing new to say.
/// `previous` is when the last section was written.
pub fn build_section(
    outcome: &Outcome,
    worst_open: Option<Severity>,
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
    let reported_worst = outcome
        .reported
        .iter()
        .map(|n| n.finding.severity)
        .chain(std::iter::once(Severity::Info).filter(|_| !outcome.resolved.is_empty()))
        .max();
    let severity = worst_open.max(reported_worst).unwrap_or(Severity::Info);
    let still_open = still_open_lines(&outcome.still_open, &local_date);
    let acknowledged = acknowledged_lines(&outcome.acknowledged);
    let count = |pred: fn(&Reason) -> bool| outcome.count(pred);
    Some(Section {
        heading_time: heading_time(at, tz, previous),
        severity: severity.label().to_string(),
        counts: Counts {
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
        },
        items,
        still_open,
        acknowledged,
    })
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
    if !f.recommendation.is_empty() {
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

/// One line per open finding not repeated in full, worst first.
fn still_open_lines(
    still_open: &[StillOpen],
    local_date: &dyn Fn(DateTime<Utc>) -> String,
) -> Vec<String> {
    let mut open_sorted: Vec<&StillOpen> = still_open.iter().collect();
    open_sorted.sort_by(|a, b| {
        b.finding
            .severity
            .cmp(&a.finding.severity)
            .then_with(|| a.finding.title.cmp(&b.finding.title))
    });
    open_sorted
        .into_iter()
        .map(|o| {
            let f = &o.finding;
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
        })
        .collect()
}

fn acknowledged_lines(acknowledged: &[Acknowledged]) -> Vec<String> {
    acknowledged
        .iter()
        .map(|a| {
            one_line(&format!(
                "[{}] {} ({}: {}; until {})",
                a.finding.severity.label(),
                a.finding.title,
                escape_inline(&a.owner),
                escape_inline(&a.reason),
                a.expires
            ))
        })
        .collect()
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
