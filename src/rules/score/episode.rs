//! Episodes: the ledger followed through a replay and cut into findings from when they opened
//! until they resolved, which is what an answer key is matched against.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ledger::{Ledger, Status};
use crate::model::Finding;

/// One thing an episode said: a rule about a node and a subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    pub rule: String,
    pub node: String,
    pub subject: String,
}

/// Everything a finding says: its rule about each of its nodes and subjects, and each facet's
/// rule about the facet's nodes and subject.
fn claims(f: &Finding) -> Vec<Claim> {
    let mut out = Vec::new();
    for node in f.all_nodes() {
        for subject in f.subjects() {
            out.push(Claim {
                rule: f.rule_id.clone(),
                node: node.clone(),
                subject: subject.to_string(),
            });
        }
    }
    for facet in &f.facets {
        for node in &facet.nodes {
            out.push(Claim {
                rule: facet.rule_id.clone(),
                node: node.clone(),
                subject: facet.entity.clone(),
            });
        }
    }
    out
}

/// One finding from when the ledger opened it until it resolved (or the replay ended).
#[derive(Debug, Clone, Serialize)]
pub struct Episode {
    pub rule: String,
    pub severity: String,
    pub nodes: Vec<String>,
    pub subject: String,
    pub title: String,
    pub opened: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    /// A one-off event (a reboot, a drop): told once, never open.
    pub event: bool,
    /// Why it ended without resolving, when it did (taken into a role's baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What it said over its life, each with when it first said it.
    #[serde(skip)]
    pub claims: BTreeMap<Claim, DateTime<Utc>>,
    #[serde(skip)]
    pub(super) finding: Option<Finding>,
    #[serde(skip)]
    pub(super) merged: bool,
}

impl Episode {
    /// An episode of `f` first said at `at` (for tests and hand-made episodes).
    pub fn of(f: &Finding, at: DateTime<Utc>) -> Episode {
        let mut e = Episode {
            rule: f.rule_id.clone(),
            severity: f.severity.label().to_string(),
            nodes: f.all_nodes().cloned().collect(),
            subject: f.entity.clone(),
            title: f.title.clone(),
            opened: at,
            resolved: None,
            event: f.event,
            note: None,
            claims: BTreeMap::new(),
            finding: None,
            merged: false,
        };
        e.take(f, at);
        e
    }

    /// Learns what `f` says now (a group grown, a facet added).
    fn take(&mut self, f: &Finding, at: DateTime<Utc>) {
        for c in claims(f) {
            let t = self.claims.entry(c).or_insert(at);
            *t = (*t).min(at);
        }
        let mut nodes: BTreeSet<String> = self.nodes.iter().cloned().collect();
        nodes.extend(f.all_nodes().cloned());
        self.nodes = nodes.into_iter().collect();
        self.severity = f.severity.label().to_string();
        self.title = f.title.clone();
        self.finding = Some(f.clone());
    }
}

/// Follows the ledger through a replay and cuts its entries into episodes. An entry the
/// ledger takes into another (a node's finding become part of a group, a finding folded into
/// another) is one episode with the entry that took it in, which keeps what it said.
#[derive(Default)]
pub struct Tracker {
    episodes: Vec<Episode>,
    open: BTreeMap<String, usize>,
}

impl Tracker {
    /// Reads the ledger after the analysis of the round whose captures ran from `first` to `at`.
    /// Whatever the ledger stamped within the round counts from `first`: a key says "by 15:00"
    /// of the 15:00 round, not of its last node captured seconds later.
    pub fn observe(&mut self, ledger: &Ledger, at: DateTime<Utc>, first: DateTime<Utc>) {
        let in_round = |t: DateTime<Utc>| if t >= first && t <= at { first } else { t };
        let now_open: BTreeMap<&String, &crate::ledger::Entry> = ledger
            .entries
            .iter()
            .filter(|(_, e)| e.status == Status::Open)
            .collect();
        let mut taken = Vec::new();
        let gone: Vec<String> = self
            .open
            .keys()
            .filter(|k| !now_open.contains_key(k))
            .cloned()
            .collect();
        for key in gone {
            let Some(idx) = self.open.remove(&key) else {
                continue;
            };
            match ledger.entries.get(&key) {
                Some(e) => {
                    self.episodes[idx].resolved = Some(in_round(e.resolved_at.unwrap_or(at)));
                }
                None => taken.push(idx),
            }
        }
        for (key, e) in &now_open {
            let idx = match self.open.get(*key) {
                Some(&i) => i,
                None => {
                    let mut ep = Episode::of(&e.finding, first);
                    ep.opened = in_round(e.episode_start().min(at));
                    self.episodes.push(ep);
                    self.open.insert((*key).clone(), self.episodes.len() - 1);
                    self.episodes.len() - 1
                }
            };
            self.episodes[idx].take(&e.finding, first);
        }
        for idx in taken {
            let Some(old) = self.episodes[idx].finding.clone() else {
                continue;
            };
            let heir = now_open
                .iter()
                .find(|(_, e)| e.finding.continues(&old) || e.finding.says(&old))
                .and_then(|(k, _)| self.open.get(*k).copied());
            match heir {
                Some(h) if h != idx => {
                    let (claims, opened) =
                        (self.episodes[idx].claims.clone(), self.episodes[idx].opened);
                    let heir = &mut self.episodes[h];
                    for (c, t) in claims {
                        let e = heir.claims.entry(c).or_insert(t);
                        *e = (*e).min(t);
                    }
                    if heir.rule == old.rule_id {
                        heir.opened = heir.opened.min(opened);
                    }
                    self.episodes[idx].merged = true;
                }
                _ => {
                    let ep = &mut self.episodes[idx];
                    ep.resolved = Some(first);
                    ep.note = Some("taken into its role's baseline".into());
                }
            }
        }
    }

    /// Every episode, in the order they opened.
    pub fn finish(self) -> Vec<Episode> {
        let mut out: Vec<Episode> = self.episodes.into_iter().filter(|e| !e.merged).collect();
        out.sort_by(|a, b| a.opened.cmp(&b.opened).then(a.rule.cmp(&b.rule)));
        out
    }
}
