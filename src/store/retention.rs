//! Keeping the archive in bounds: every capture for a while, then one an hour, then one a day,
//! then nothing, per node; captures that open findings still point to are always kept.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use super::Entry;

#[derive(Debug, Clone)]
pub struct Retention {
    /// Every capture younger than this is kept.
    pub full: Duration,
    /// Then one capture per hour until this age.
    pub hourly: Duration,
    /// Then one capture per day until this age; older ones go.
    pub daily: Duration,
}

impl Default for Retention {
    /// Two weeks whole, hourly to two months, daily to two years (docs/configuration.md).
    fn default() -> Self {
        Retention {
            full: Duration::days(14),
            hourly: Duration::days(60),
            daily: Duration::days(730),
        }
    }
}

/// What pruning would do (or did).
#[derive(Debug, Default)]
pub struct Plan {
    pub delete: Vec<Entry>,
    pub kept: usize,
    /// Kept only because an open finding points to them.
    pub protected: usize,
}

/// Chooses what to delete: per node, outside the `full` period, the first capture of each hour
/// (or day) stays; `protect` holds (node, time) of captures that must stay whatever their age.
pub fn plan(
    entries: &[Entry],
    now: DateTime<Utc>,
    retention: &Retention,
    protect: &BTreeSet<(String, i64)>,
) -> Plan {
    let mut plan = Plan::default();
    let mut seen_buckets: BTreeSet<(String, i64, u8)> = BTreeSet::new();
    for e in entries {
        let age = now - e.captured_at;
        let t = e.captured_at.timestamp();
        let keep_bucket = if age < retention.full {
            true
        } else if age < retention.hourly {
            seen_buckets.insert((e.node.clone(), t.div_euclid(3600), 0))
        } else if age < retention.daily {
            seen_buckets.insert((e.node.clone(), t.div_euclid(86400), 1))
        } else {
            false
        };
        if keep_bucket {
            plan.kept += 1;
        } else if protect.contains(&(e.node.clone(), t)) {
            plan.kept += 1;
            plan.protected += 1;
        } else {
            plan.delete.push(e.clone());
        }
    }
    plan
}

/// The capture of each (node, time) pair nearest to that time: what a finding's evidence
/// points to.
pub fn nearest_captures(
    entries: &[Entry],
    wanted: &[(String, DateTime<Utc>)],
) -> BTreeSet<(String, i64)> {
    let mut by_node: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        by_node.entry(e.node.as_str()).or_default().push(e);
    }
    let mut out = BTreeSet::new();
    for (node, at) in wanted {
        if let Some(list) = by_node.get(node.as_str())
            && let Some(e) = super::closest(list.iter().copied(), *at)
        {
            out.insert((node.clone(), e.captured_at.timestamp()));
        }
    }
    out
}

/// One node's share of the archive.
#[derive(Debug, Default)]
pub struct NodeStats {
    pub captures: usize,
    pub bytes: u64,
    pub oldest: Option<DateTime<Utc>>,
    pub newest: Option<DateTime<Utc>>,
}

/// Size of the archive per node and per day.
#[derive(Debug, Default)]
pub struct Stats {
    pub nodes: BTreeMap<String, NodeStats>,
    /// day (UTC) -> (captures, bytes)
    pub days: BTreeMap<String, (usize, u64)>,
}

pub fn stats(entries: &[Entry]) -> Stats {
    let mut s = Stats::default();
    for e in entries {
        let bytes = e.stored_bytes();
        let n = s.nodes.entry(e.node.clone()).or_default();
        n.captures += 1;
        n.bytes += bytes;
        n.oldest = Some(n.oldest.map_or(e.captured_at, |o| o.min(e.captured_at)));
        n.newest = Some(n.newest.map_or(e.captured_at, |o| o.max(e.captured_at)));
        let d = s
            .days
            .entry(e.captured_at.format("%Y-%m-%d").to_string())
            .or_insert((0, 0));
        d.0 += 1;
        d.1 += bytes;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(node: &str, minutes_ago: i64, now: DateTime<Utc>) -> Entry {
        Entry {
            captured_at: now - Duration::minutes(minutes_ago),
            node: node.into(),
            location: super::super::Location::File(
                format!("/nonexistent/{node}/{minutes_ago}").into(),
            ),
        }
    }

    #[test]
    fn thins_to_hourly_then_daily_and_keeps_what_findings_point_to() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let r = Retention {
            full: Duration::days(1),
            hourly: Duration::days(3),
            daily: Duration::days(10),
        };
        // Every 15 minutes for 12 days, oldest first.
        let mut entries: Vec<Entry> = (0..12 * 96)
            .rev()
            .map(|i| entry("vk01", i * 15, now))
            .collect();
        entries.sort();
        let protected_at = now - Duration::days(11);
        let protect = nearest_captures(&entries, &[("vk01".into(), protected_at)]);
        let p = plan(&entries, now, &r, &protect);
        let kept: Vec<&Entry> = entries
            .iter()
            .filter(|e| !p.delete.iter().any(|d| d == *e))
            .collect();
        let young = kept
            .iter()
            .filter(|e| now - e.captured_at < Duration::days(1))
            .count();
        assert_eq!(young, 96, "every capture of the last day");
        let hourly = kept
            .iter()
            .filter(|e| {
                let age = now - e.captured_at;
                age >= Duration::days(1) && age < Duration::days(3)
            })
            .count();
        assert!(
            (48..=49).contains(&hourly),
            "one an hour for two days: {hourly}"
        );
        let daily = kept
            .iter()
            .filter(|e| {
                let age = now - e.captured_at;
                age >= Duration::days(3) && age < Duration::days(10)
            })
            .count();
        assert!((7..=8).contains(&daily), "one a day: {daily}");
        assert_eq!(
            p.protected, 1,
            "the capture an open finding points to stays"
        );
        assert!(kept.iter().any(|e| e.captured_at == protected_at));
    }
}
