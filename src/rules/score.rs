//! Scoring the rule library against a story. An answer key (`*.key.toml`: `[[expect]]` findings
//! and `[[allow]]`ed extras, written from a scenario's story before patrol ran on it) is matched
//! against the finding *episodes* a replay gives — each time the ledger opened a finding until
//! it resolved — so a rule change is judged by what a reader would have been told, not by what
//! one rule computed once. Recall is the share of expectations some episode met; precision the
//! share of episodes that met an expectation or an allowance.
//!
//! The key is read in two steps: [`KeyFile::parse`] checks its syntax and times (every mistake
//! with line and column), [`KeyFile::resolve`] checks its rules and nodes against the library
//! and the fleet replayed, and fixes its times in the fleet's time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::select::glob_match;

/// Why an episode about an expectation did not meet it.
#[derive(Debug, Clone, PartialEq)]
pub enum Misfit {
    Early {
        said: DateTime<Utc>,
        after: DateTime<Utc>,
    },
    Late {
        said: DateTime<Utc>,
        by: DateTime<Utc>,
    },
    /// Expected open at the end, it resolved.
    Flapped { resolved: DateTime<Utc> },
    /// Expected open at the end, it is an event.
    Event,
    /// Expected to resolve, it is still open.
    StillOpen,
    ResolvedEarly {
        resolved: DateTime<Utc>,
        after: DateTime<Utc>,
    },
    ResolvedLate {
        resolved: DateTime<Utc>,
        by: DateTime<Utc>,
    },
}

impl Misfit {
    pub fn describe(&self, tz: Tz) -> String {
        let t = |at: &DateTime<Utc>| stamp(*at, tz);
        match self {
            Misfit::Early { said, after } => {
                format!("early: said at {}, expected from {}", t(said), t(after))
            }
            Misfit::Late { said, by } => {
                format!("late: said at {}, expected by {}", t(said), t(by))
            }
            Misfit::Flapped { resolved } => format!(
                "flapped: resolved at {}, expected open at the end",
                t(resolved)
            ),
            Misfit::Event => "an event, expected open at the end".into(),
            Misfit::StillOpen => "still open at the end, expected to resolve".into(),
            Misfit::ResolvedEarly { resolved, after } => format!(
                "resolved early: at {}, expected from {}",
                t(resolved),
                t(after)
            ),
            Misfit::ResolvedLate { resolved, by } => {
                format!("resolved late: at {}, expected by {}", t(resolved), t(by))
            }
        }
    }
}

/// A time as keys write it, in the fleet's time zone.
pub fn stamp(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn rule_fits(rules: &[String], rule: &str) -> bool {
    rules.iter().any(|r| glob_match(r, rule))
}

fn subject_fits(subject: &Option<String>, s: &str) -> bool {
    subject.as_ref().is_none_or(|g| glob_match(g, s))
}

/// When the episode first said the expectation's rule about its node and subject, if it did.
fn said(ep: &Episode, x: &Expect) -> Option<DateTime<Utc>> {
    ep.claims
        .iter()
        .filter(|(c, _)| {
            rule_fits(&x.rules, &c.rule)
                && glob_match(&x.node, &c.node)
                && subject_fits(&x.subject, &c.subject)
        })
        .map(|(_, t)| *t)
        .min()
}

fn window_misfit(said: DateTime<Utc>, x: &Expect) -> Option<Misfit> {
    match (x.opens.after, x.opens.by) {
        (Some(after), _) if said < after => Some(Misfit::Early { said, after }),
        (_, Some(by)) if said > by => Some(Misfit::Late { said, by }),
        _ => None,
    }
}

fn lifecycle_misfit(ep: &Episode, x: &Expect) -> Option<Misfit> {
    match x.lifecycle {
        Lifecycle::Any => None,
        Lifecycle::Open if ep.event => Some(Misfit::Event),
        Lifecycle::Open => ep.resolved.map(|resolved| Misfit::Flapped { resolved }),
        Lifecycle::Resolved => {
            let resolved = match ep.resolved {
                Some(r) => r,
                None if ep.event => ep.opened,
                None => return Some(Misfit::StillOpen),
            };
            match (x.resolves.after, x.resolves.by) {
                (Some(after), _) if resolved < after => {
                    Some(Misfit::ResolvedEarly { resolved, after })
                }
                (_, Some(by)) if resolved > by => Some(Misfit::ResolvedLate { resolved, by }),
                _ => None,
            }
        }
    }
}

/// Why one episode about an expectation does not meet it (`None`: it does).
pub fn misfit(ep: &Episode, x: &Expect) -> Option<Misfit> {
    let said = said(ep, x)?;
    window_misfit(said, x).or_else(|| lifecycle_misfit(ep, x))
}

/// An expectation met.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub expect: String,
    /// The episodes that met it (indices into the score's episodes).
    pub episodes: Vec<usize>,
}

/// An expectation no episode met, with the nearest episode and why it did not count.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub expect: String,
    pub why: String,
    pub wanted: String,
    pub nearest: Option<usize>,
    pub reason: String,
}

/// An episode neither expected nor allowed, and why it did not count.
#[derive(Debug, Clone, Serialize)]
pub struct Extra {
    pub episode: usize,
    pub reason: String,
}

/// A key scored against the episodes of one replay.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub expectations: usize,
    pub hit: usize,
    pub episodes: Vec<Episode>,
    pub correct: usize,
    pub hits: Vec<Hit>,
    pub misses: Vec<Miss>,
    pub extras: Vec<Extra>,
}

/// `n / d` as a percentage; nothing to get wrong counts as 100 %.
pub fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        100.0
    } else {
        n as f64 * 100.0 / d as f64
    }
}

impl Score {
    pub fn recall(&self) -> f64 {
        pct(self.hit, self.expectations)
    }

    pub fn precision(&self) -> f64 {
        pct(self.correct, self.episodes.len())
    }
}

/// What an expectation asks for, in words.
pub fn wanted(x: &Expect, tz: Tz) -> String {
    let mut s = format!("{} about {}", x.rules.join(" or "), x.node);
    if let Some(subject) = &x.subject {
        s.push_str(&format!(" ({subject})"));
    }
    match (x.opens.after, x.opens.by) {
        (Some(a), Some(b)) => {
            s.push_str(&format!(", opening {} to {}", stamp(a, tz), stamp(b, tz)))
        }
        (Some(a), None) => s.push_str(&format!(", opening from {}", stamp(a, tz))),
        (None, Some(b)) => s.push_str(&format!(", opening by {}", stamp(b, tz))),
        (None, None) => {}
    }
    s.push_str(match x.lifecycle {
        Lifecycle::Open => ", open at the end",
        Lifecycle::Resolved => ", resolved",
        Lifecycle::Any => "",
    });
    if x.repeats {
        s.push_str(" (may repeat)");
    }
    s
}

/// Matches a key against a replay's episodes.
pub fn score(key: &Key, episodes: Vec<Episode>, tz: Tz) -> Score {
    let mut correct = vec![false; episodes.len()];
    let mut hits = Vec::new();
    let mut misses = Vec::new();
    for x in &key.expects {
        let mut about: Vec<(usize, DateTime<Utc>)> = episodes
            .iter()
            .enumerate()
            .filter_map(|(i, ep)| said(ep, x).map(|t| (i, t)))
            .collect();
        about.sort_by_key(|(i, t)| (*t, *i));
        let met: Vec<usize> = if x.repeats {
            // The problem comes and goes: every episode from its start is right; it is met
            // when the first opens in its window and the last ends as the key says.
            let from: Vec<(usize, DateTime<Utc>)> = about
                .iter()
                .copied()
                .filter(|(_, t)| x.opens.after.is_none_or(|a| *t >= a))
                .collect();
            for (i, _) in &from {
                correct[*i] = true;
            }
            let first = from
                .first()
                .and_then(|(i, t)| window_misfit(*t, x).map(|m| (*i, m)));
            let last = from
                .last()
                .and_then(|(i, _)| lifecycle_misfit(&episodes[*i], x).map(|m| (*i, m)));
            match first.or(last) {
                _ if from.is_empty() => Vec::new(),
                None => from.iter().map(|(i, _)| *i).collect(),
                Some((i, m)) => {
                    misses.push(Miss {
                        expect: x.id.clone(),
                        why: x.why.clone(),
                        wanted: wanted(x, tz),
                        nearest: Some(i),
                        reason: m.describe(tz),
                    });
                    continue;
                }
            }
        } else {
            about
                .iter()
                .filter(|(i, _)| misfit(&episodes[*i], x).is_none())
                .map(|(i, _)| *i)
                .collect()
        };
        for i in &met {
            correct[*i] = true;
        }
        if met.is_empty() {
            let (nearest, reason) = nearest(&episodes, x, tz);
            misses.push(Miss {
                expect: x.id.clone(),
                why: x.why.clone(),
                wanted: wanted(x, tz),
                nearest,
                reason,
            });
        } else {
            hits.push(Hit {
                expect: x.id.clone(),
                episodes: met,
            });
        }
    }
    for (i, ep) in episodes.iter().enumerate() {
        if !correct[i] && key.allows.iter().any(|a| allowed(ep, a)) {
            correct[i] = true;
        }
    }
    let extras = episodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !correct[*i])
        .map(|(i, ep)| Extra {
            episode: i,
            reason: key
                .expects
                .iter()
                .find_map(|x| {
                    let said = said(ep, x)?;
                    let m = if x.repeats {
                        window_misfit(said, x)?
                    } else {
                        misfit(ep, x)?
                    };
                    Some(format!("{} for `{}`", m.describe(tz), x.id))
                })
                .unwrap_or_else(|| "no expectation or allowance says it".into()),
        })
        .collect();
    Score {
        expectations: key.expects.len(),
        hit: hits.len(),
        correct: correct.iter().filter(|c| **c).count(),
        episodes,
        hits,
        misses,
        extras,
    }
}

fn allowed(ep: &Episode, a: &Allow) -> bool {
    ep.claims.iter().any(|(c, t)| {
        rule_fits(&a.rules, &c.rule)
            && a.nodes.iter().any(|n| glob_match(n, &c.node))
            && subject_fits(&a.subject, &c.subject)
            && a.opens.holds(*t)
    })
}

/// The episode nearest to meeting a missed expectation — about it but at the wrong time or in
/// the wrong state, else the right rule and node on another subject, else the rule on another
/// node, else another rule about the node — and why it did not count.
fn nearest(episodes: &[Episode], x: &Expect, tz: Tz) -> (Option<usize>, String) {
    let mut best: Option<(u8, i64, usize, String)> = None;
    for (i, ep) in episodes.iter().enumerate() {
        for (c, t) in &ep.claims {
            let (rule, node, subject) = (
                rule_fits(&x.rules, &c.rule),
                glob_match(&x.node, &c.node),
                subject_fits(&x.subject, &c.subject),
            );
            let (rank, reason) = match (rule, node, subject) {
                (true, true, true) => {
                    let reason = misfit(ep, x)
                        .map(|m| m.describe(tz))
                        .unwrap_or_else(|| "it does not fit".into());
                    (0, reason)
                }
                (true, true, false) => (1, format!("wrong subject: {}", c.subject)),
                (true, false, _) => (2, format!("wrong node: about {}", c.node)),
                (false, true, true) => (3, format!("another rule: {}", c.rule)),
                _ => continue,
            };
            let candidate = (rank, x.opens.distance(*t), i, reason);
            if best
                .as_ref()
                .is_none_or(|b| (candidate.0, candidate.1) < (b.0, b.1))
            {
                best = Some(candidate);
            }
        }
    }
    match best {
        Some((_, _, i, reason)) => (Some(i), reason),
        None => (
            None,
            format!(
                "no episode of {} and none about {}",
                x.rules.join(" or "),
                x.node
            ),
        ),
    }
}

mod episode;
mod key;

pub use episode::{Claim, Episode, Tracker};
pub use key::*;

#[cfg(test)]
mod tests;
