//! The weekly digest: one ISO week of a fleet, per node and for the fleet, in numbers people read
//! on a phone (seed 002 §4.3): availability, reboots, CPU steal, memory, swap, disks and their
//! projection, GPU idle hours and temperatures, the top memory growers, containers in trouble,
//! what the findings did that week, the score card with its trend, and one top action.
//!
//! The week's captures are the columnar part of patrol: each node's daily rollups (`rollup`) go
//! into a polars frame and are aggregated there (means, peaks, first/last, least-squares
//! slopes), one node at a time so a fleet of hundreds of nodes never holds more than one node's
//! week in memory.

mod aggregate;
mod charts;
mod findings;
mod message;
mod node;
pub mod rollup;
pub mod rounds;
mod view;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::rules::Library;
use crate::rules::kinds::score_card;
use crate::store::{Archive, Entry};

pub use charts::charts;
pub use message::telegram_lines;
pub use view::{ChartView, NodeView, View, bytes, pct, view};

use node::{NodeWeek, WeekContext, node_week};

/// An ISO week in the fleet's time zone.
#[derive(Debug, Clone)]
pub struct Week {
    pub label: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Week {
    /// `2026-W08`.
    pub fn parse(text: &str, tz: Tz) -> Result<Week> {
        let bad = || {
            Error::Usage(format!(
                "`{text}` is not an ISO week: write it like 2026-W08"
            ))
        };
        let (year, week) = text.split_once("-W").ok_or_else(bad)?;
        // Years past chrono's range would overflow the week's end.
        let year: i32 = year
            .parse()
            .ok()
            .filter(|y| (1970..=9999).contains(y))
            .ok_or_else(bad)?;
        let week: u32 = week.parse().map_err(|_| bad())?;
        let monday = NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).ok_or_else(bad)?;
        let local = |d: NaiveDate| -> Result<DateTime<Utc>> {
            tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).ok_or_else(bad)?)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(bad)
        };
        Ok(Week {
            label: format!("{year}-W{week:02}"),
            start: local(monday)?,
            end: local(
                monday
                    .checked_add_signed(chrono::Duration::days(7))
                    .ok_or_else(bad)?,
            )?,
        })
    }

    /// The ISO week that contains `t`, in `tz`.
    pub fn containing(t: DateTime<Utc>, tz: Tz) -> Week {
        let iso = t.with_timezone(&tz).iso_week();
        let label = format!("{}-W{:02}", iso.year(), iso.week());
        Week::parse(&label, tz).unwrap_or(Week {
            label,
            start: t,
            end: t,
        })
    }

    pub fn previous(&self, tz: Tz) -> Week {
        Week::containing(self.start - chrono::Duration::hours(1), tz)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeDigest {
    pub node: String,
    pub captures: usize,
    /// Capture rounds of the week in which this node answered, of all rounds patrol ran.
    pub answered: usize,
    /// Rounds in which it answered and ran containers: up. A node that answers but runs
    /// nothing (its containers gone, its engine stopped) is not up.
    pub up: usize,
    /// Rounds in which it answered with its container list and nothing was running.
    pub ran_nothing: usize,
    /// Rounds in which it answered but its container list could not be read.
    pub no_container_list: usize,
    /// The rounds of its own schedule in the week (from its first capture; else the fleet's).
    pub rounds: usize,
    /// `up` of `rounds`.
    pub availability_pct: Option<f64>,
    /// When it rebooted in the week (unix s), for the charts.
    #[serde(skip)]
    pub reboot_times: Vec<i64>,
    /// When its last capture of the week was not up: since when (unix s) it has not been.
    pub down_since: Option<i64>,
    /// Open, unacknowledged warnings about it at the week's end.
    pub open_warnings: usize,
    pub reboots: usize,
    pub steal_avg_pct: Option<f64>,
    pub mem_available_avg: Option<f64>,
    pub swap_peak: Option<f64>,
    pub disk_used_pct: Option<f64>,
    pub disk_mount: Option<String>,
    /// Days until the fullest disk is full at the week's slope; `None` when not growing.
    pub disk_full_in_days: Option<f64>,
    /// Hours the GPU sat idle holding memory: each idle capture counts for its interval.
    pub gpu_idle_hours: Option<f64>,
    /// Rounds this node should have been captured in, from the interval its captures recorded.
    pub coverage: Option<rounds::Coverage>,
    pub gpu_temp_min: Option<f64>,
    pub gpu_temp_max: Option<f64>,
    /// Containers in trouble during the week, worst first.
    pub trouble: Vec<ContainerTrouble>,
    pub score: Option<u32>,
    pub score_last_week: Option<u32>,
    pub weakest: Option<String>,
    /// "Disk 0/15": the weakest dimension, short, for the phone line.
    pub weakest_short: Option<String>,
    /// The score card dimension by dimension (empty when the node could not be scored).
    pub dimensions: Vec<DimensionWeek>,
    /// Why the node has no score this week, when it has none.
    pub unscored: Option<String>,
}

/// One dimension of a node's score card at the week's end, with last week's points.
#[derive(Debug, Clone, Serialize)]
pub struct DimensionWeek {
    pub name: String,
    /// `None`: could not check (the total is scaled over the others).
    pub points: Option<u32>,
    pub max: u32,
    /// The reading behind the points ("steal 0.1%"), or why it could not be checked.
    pub reading: String,
    pub last_week: Option<u32>,
}

impl DimensionWeek {
    /// "15/20 ▲ +5 (3.2GB available)", "could not check (no cleanup job …)".
    pub fn text(&self) -> String {
        let Some(p) = self.points else {
            return format!("could not check ({})", self.reading);
        };
        let trend = match self.last_week {
            Some(b) if p > b => format!(" ▲ +{}", p - b),
            Some(b) if p < b => format!(" ▼ -{}", b - p),
            _ => String::new(),
        };
        format!("{p}/{}{trend} ({})", self.max, self.reading)
    }
}

/// One container's trouble over the week.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerTrouble {
    pub container: String,
    /// Seconds it was seen unhealthy (captures × the node's interval).
    pub unhealthy_s: u64,
    /// Seconds it was seen restarting.
    pub restarting_s: u64,
    /// How far its restart count rose.
    pub restarts: u64,
    pub oom_kills: u32,
}

impl ContainerTrouble {
    /// "restarting ~11 h, 60 restarts, 2 OOM kills, unhealthy ~45 min".
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if self.restarting_s > 0 {
            parts.push(format!(
                "restarting ~{}",
                crate::units::fmt_duration(self.restarting_s as f64)
            ));
        }
        if self.restarts > 0 {
            parts.push(format!(
                "{} restart{}",
                self.restarts,
                if self.restarts == 1 { "" } else { "s" }
            ));
        }
        if self.oom_kills > 0 {
            parts.push(format!(
                "{} OOM kill{}",
                self.oom_kills,
                if self.oom_kills == 1 { "" } else { "s" }
            ));
        }
        if self.unhealthy_s > 0 {
            parts.push(format!(
                "unhealthy ~{}",
                crate::units::fmt_duration(self.unhealthy_s as f64)
            ));
        }
        parts.join(", ")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Grower {
    pub node: String,
    pub container: String,
    /// Bytes per day its memory floor rose, over the runs of the week (see `node::growers`).
    pub slope_per_day: f64,
    /// Bytes its memory floor rose over the week, added up across resets.
    pub growth: f64,
    /// Restarts or reboots that reset it during the week.
    pub resets: usize,
    pub first: f64,
    pub last: f64,
    /// (unix s, bytes) for the chart.
    #[serde(skip)]
    pub points: Vec<(i64, f64)>,
    /// When its memory read null (unix s), marked on the chart.
    #[serde(skip)]
    pub nulls: Vec<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FindingCounts {
    pub opened: BTreeMap<String, usize>,
    pub resolved: BTreeMap<String, usize>,
    pub still_open: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    pub fleet: String,
    pub week: String,
    pub from: String,
    pub to: String,
    pub timezone: String,
    pub rounds: usize,
    /// The fleet's rounds against the interval its captures recorded (expected, missed).
    pub coverage: Option<rounds::Coverage>,
    pub nodes: Vec<NodeDigest>,
    pub growers: Vec<Grower>,
    pub findings: FindingCounts,
    pub drift: Vec<String>,
    pub not_deployed: Vec<String>,
    pub top_action: Option<String>,
    /// Why the top action comes first: its importance and the factors behind it.
    pub top_action_reason: Option<String>,
    /// Disk use per node over the week (unix s, percent), for the chart.
    #[serde(skip)]
    pub disk_series: Vec<(String, Vec<(i64, f64)>)>,
}

/// Builds the digest of `week` from the archive (and the ledger of its reports); nodes are
/// scored with the card of the library's score-card rule. Each node's days are read from their
/// daily rollups in `rollups` where saved and current, else built from the snapshots (and saved
/// there).
pub fn build(
    archive: &Archive,
    ledger: &Ledger,
    library: &Library,
    (fleet, tz): (&str, Tz),
    week: &Week,
    rollups: Option<rollup::RollupDir>,
) -> Result<Digest> {
    let interval_s = archive
        .read_meta()?
        .and_then(|m| m.interval_s)
        .filter(|i| *i > 0);
    // The day before the week too: each node's last capture before it, for last week's score
    // and the schedule's start, comes from the same listing.
    let mut entries = archive.list(
        Some(week.start - chrono::Duration::days(1)),
        Some(week.end - chrono::Duration::seconds(1)),
        None,
    )?;
    let mut last_before: BTreeMap<String, Entry> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.captured_at < week.start) {
        let newer = last_before
            .get(&e.node)
            .is_none_or(|b| b.captured_at < e.captured_at);
        if newer {
            last_before.insert(e.node.clone(), e.clone());
        }
    }
    entries.retain(|e| e.captured_at >= week.start);
    let round_times = round_times(&entries);
    let ctx = WeekContext {
        round_count: round_times.len(),
        round_times: round_times.clone(),
        interval_s,
        week: week.clone(),
        previous: week.previous(tz),
        now: Utc::now().timestamp(),
        cleanup_job: score_card::cleanup_job(library),
        tz,
        rollups,
    };
    let mut nodes = Vec::new();
    let mut growers = Vec::new();
    let mut disk_series = Vec::new();
    let mut fleet_previous: Option<(i64, u64)> = None;
    for r in node_weeks(archive, &entries, &last_before, &ctx) {
        let w = r?;
        fleet_previous = fleet_previous.max(w.previous);
        nodes.push(w.digest);
        growers.extend(w.growers);
        disk_series.extend(w.disk);
    }
    let coverage = fleet_coverage(&nodes, &round_times, fleet_previous, &ctx);
    let findings = findings::week_findings(ledger, library, week);
    for n in &mut nodes {
        n.open_warnings = findings.warnings_by_node.get(&n.node).copied().unwrap_or(0);
    }
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d").to_string();
    Ok(Digest {
        fleet: fleet.to_string(),
        week: week.label.clone(),
        from: local(week.start),
        to: local(week.end - chrono::Duration::seconds(1)),
        timezone: tz.name().to_string(),
        rounds: ctx.round_count,
        coverage,
        nodes,
        growers: top_growers(growers),
        findings: findings.counts,
        drift: findings.drift,
        not_deployed: findings.not_deployed,
        top_action: findings.top_action,
        top_action_reason: findings.top_action_reason,
        disk_series,
    })
}

/// When each capture round of the week began.
fn round_times(entries: &[Entry]) -> Vec<i64> {
    crate::store::group_rounds(entries.iter(), |e| e.node.as_str(), |e| e.captured_at)
        .iter()
        .filter_map(|r| r.iter().map(|e| e.captured_at.timestamp()).min())
        .collect()
}

/// Every node's week, in node order. Nodes are independent: their weeks are read and
/// aggregated in parallel, one node per worker at a time.
fn node_weeks(
    archive: &Archive,
    entries: &[Entry],
    last_before: &BTreeMap<String, Entry>,
    ctx: &WeekContext,
) -> Vec<Result<NodeWeek>> {
    // Each node's captures, split once: a filter per node would compare every name of a
    // 300-node week 300 times.
    let mut by_node: BTreeMap<&str, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        by_node.entry(e.node.as_str()).or_default().push(e.clone());
    }
    let names: Vec<(&str, Vec<Entry>)> = by_node.into_iter().collect();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(names.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<(usize, Result<NodeWeek>)>> = Default::default();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((node, mine)) = names.get(i) else {
                        break;
                    };
                    let before = last_before.get(*node);
                    let week_of_node = node_week(archive, node, (mine, before), ctx);
                    if let Ok(mut r) = results.lock() {
                        r.push((i, week_of_node));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The five containers whose memory grew fastest across the fleet.
fn top_growers(mut growers: Vec<Grower>) -> Vec<Grower> {
    growers.sort_by(|a, b| {
        b.slope_per_day
            .total_cmp(&a.slope_per_day)
            .then(a.node.cmp(&b.node))
    });
    growers.retain(|g| g.slope_per_day > 0.0);
    growers.truncate(5);
    growers
}

/// The fleet's rounds at the interval most of its nodes recorded (their median), counted like a
/// node's: the rounds are the fleet's captures.
fn fleet_coverage(
    nodes: &[NodeDigest],
    round_times: &[i64],
    previous: Option<(i64, u64)>,
    ctx: &WeekContext,
) -> Option<rounds::Coverage> {
    let known: Vec<&rounds::Coverage> = nodes.iter().filter_map(|n| n.coverage.as_ref()).collect();
    let mut intervals: Vec<u64> = known.iter().map(|c| c.interval_s).collect();
    intervals.sort_unstable();
    let interval = *intervals.get(intervals.len() / 2)?;
    let source = if known
        .iter()
        .any(|c| c.source == rounds::IntervalSource::Inferred)
    {
        rounds::IntervalSource::Inferred
    } else {
        rounds::IntervalSource::Recorded
    };
    rounds::coverage(
        round_times,
        &vec![interval; round_times.len()],
        source,
        previous,
        ctx.week.start.timestamp(),
        ctx.week.end.timestamp(),
        ctx.now,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
