//! Counts over an episode. A counter finding ("delivered 10,810 messages since 17:30 while no
//! row was inserted") is read from a window that slides: read alone, its count shrinks while the
//! loss goes on and its "since" moves. The kind declares which value is cumulative (see
//! [`crate::model::Cumulative`]); the ledger keeps the episode's total, adding what the counter
//! advanced between two sightings, so the printed total always counts from the time it names.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Entry, Ledger, Status};
use crate::model::{EvidenceValue, Finding};

/// The running total of an open episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeCount {
    /// How far the counter advanced since `from`.
    pub total: f64,
    /// The counter's reading at the last sighting, and when that was.
    pub reading: f64,
    pub at: DateTime<Utc>,
    /// Where the count starts, as printed.
    pub from: EvidenceValue,
}

impl Ledger {
    /// For a finding with a cumulative value whose episode is open: its total since the
    /// episode's count started, and that start, to print instead of the window's; `None` for any
    /// other finding (a new episode counts what its kind saw).
    pub fn episode_count(
        &self,
        f: &Finding,
        now: DateTime<Utc>,
    ) -> Option<BTreeMap<String, EvidenceValue>> {
        let c = f.lifecycle.cumulative.as_ref()?;
        let e = self.entries.get(&f.key())?;
        if e.status != Status::Open {
            return None;
        }
        let kept = e.count.as_ref()?;
        let total = if now <= kept.at {
            // The same capture analysed again: it is already counted.
            kept.total
        } else {
            let reading = f.values.get(&c.reading)?.value?;
            // A counter that went down started again from zero.
            let advance = if reading >= kept.reading {
                reading - kept.reading
            } else {
                reading
            };
            kept.total + advance
        };
        Some(BTreeMap::from([
            (
                c.total.clone(),
                EvidenceValue {
                    value: Some(total),
                    text: crate::units::fmt_number(total, 0),
                },
            ),
            (c.from.clone(), kept.from.clone()),
        ]))
    }
}

/// Remembers the count a finding printed (already the episode's, see
/// [`Ledger::episode_count`]), for the next sighting to add to.
pub(super) fn remember(e: &mut Entry, now: DateTime<Utc>) {
    let Some(c) = &e.finding.lifecycle.cumulative else {
        return;
    };
    let value = |name: &str| e.finding.values.get(name).and_then(|v| v.value);
    let (Some(total), Some(reading), Some(from)) = (
        value(&c.total),
        value(&c.reading),
        e.finding.values.get(&c.from).cloned(),
    ) else {
        return;
    };
    e.count = Some(EpisodeCount {
        total,
        reading,
        at: now,
        from,
    });
}
