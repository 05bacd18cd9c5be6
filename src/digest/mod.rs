//! The weekly digest: one ISO week of a fleet, per node and for the fleet, in numbers people read
//! on a phone (seed 002 §4.3): availability, reboots, CPU steal, memory, swap, disks and their
//! projection, GPU idle hours and temperatures, the top memory growers, containers in trouble,
//! what the findings did that week, the score card with its trend, and one top action.
//!
//! The week's captures are the columnar part of patrol: each node's readings go into a polars
//! frame and are aggregated there (means, peaks, first/last, least-squares slopes), one node at a
//! time so a fleet of hundreds of nodes never holds more than one node's week in memory.

pub mod rounds;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::history::catalogue;
use crate::history::metrics::readings;
use crate::ledger::{Ledger, Status};
use crate::model::{Health, Severity, Snapshot};
use crate::rules::kinds::score_card;
use crate::store::Archive;
use crate::units::{self, fmt_bytes, fmt_number};

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
    pub rounds: usize,
    pub availability_pct: Option<f64>,
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
    pub unhealthy: Vec<String>,
    pub restarted: Vec<String>,
    pub score: Option<u32>,
    pub score_last_week: Option<u32>,
    pub weakest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Grower {
    pub node: String,
    pub container: String,
    /// Bytes per day, least squares over the week (within the current run of the container).
    pub slope_per_day: f64,
    pub first: f64,
    pub last: f64,
    /// (unix s, bytes) for the chart.
    #[serde(skip)]
    pub points: Vec<(i64, f64)>,
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
    /// Disk use per node over the week (unix s, percent), for the chart.
    #[serde(skip)]
    pub disk_series: Vec<(String, Vec<(i64, f64)>)>,
}

fn polars_err(e: PolarsError) -> Error {
    Error::Usage(format!("digest aggregation failed: {e}"))
}

/// One row per (entity, metric) of a node's week.
struct Aggregate {
    entity: String,
    metric: String,
    mean: Option<f64>,
    max: Option<f64>,
    min: Option<f64>,
    first: Option<f64>,
    last: Option<f64>,
    slope_per_s: Option<f64>,
}

/// Aggregates one node's readings (at, entity, metric, value) with polars.
fn aggregate(
    at: Vec<i64>,
    entity: Vec<String>,
    metric: Vec<String>,
    value: Vec<f64>,
) -> Result<Vec<Aggregate>> {
    if at.is_empty() {
        return Ok(Vec::new());
    }
    let t0 = at[0];
    let x: Vec<f64> = at.iter().map(|t| (t - t0) as f64).collect();
    let df = df!(
        "entity" => entity,
        "metric" => metric,
        "x" => x,
        "y" => value,
    )
    .map_err(polars_err)?;
    let n = col("y").count().cast(DataType::Float64);
    let sx = col("x").sum();
    let sy = col("y").sum();
    let sxx = (col("x") * col("x")).sum();
    let sxy = (col("x") * col("y")).sum();
    let out = df
        .lazy()
        .group_by([col("entity"), col("metric")])
        .agg([
            col("y").mean().alias("mean"),
            col("y").max().alias("max"),
            col("y").min().alias("min"),
            col("y").first().alias("first"),
            col("y").last().alias("last"),
            ((n.clone() * sxy - sx.clone() * sy) / (n * sxx - sx.clone() * sx)).alias("slope"),
        ])
        .collect()
        .map_err(polars_err)?;
    let strs = |name: &str| -> Result<Vec<String>> {
        Ok(out
            .column(name)
            .map_err(polars_err)?
            .as_materialized_series()
            .str()
            .map_err(polars_err)?
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect())
    };
    let nums = |name: &str| -> Result<Vec<Option<f64>>> {
        let s = out
            .column(name)
            .map_err(polars_err)?
            .as_materialized_series()
            .cast(&DataType::Float64)
            .map_err(polars_err)?;
        Ok(s.f64()
            .map_err(polars_err)?
            .iter()
            .map(|v| v.filter(|x| x.is_finite()))
            .collect())
    };
    let (entities, metrics) = (strs("entity")?, strs("metric")?);
    let (mean, max, min, first, last, slope) = (
        nums("mean")?,
        nums("max")?,
        nums("min")?,
        nums("first")?,
        nums("last")?,
        nums("slope")?,
    );
    Ok((0..entities.len())
        .map(|i| Aggregate {
            entity: entities[i].clone(),
            metric: metrics[i].clone(),
            mean: mean[i],
            max: max[i],
            min: min[i],
            first: first[i],
            last: last[i],
            slope_per_s: slope[i],
        })
        .collect())
}

fn severity_counts<'a>(entries: impl Iterator<Item = Severity> + 'a) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in entries {
        *out.entry(s.label().to_string()).or_default() += 1;
    }
    out
}

/// Builds the digest of `week` from the archive (and the ledger of its reports).
pub fn build(
    archive: &Archive,
    ledger: &Ledger,
    fleet: &str,
    tz: Tz,
    week: &Week,
) -> Result<Digest> {
    let interval_s = archive
        .read_meta()?
        .and_then(|m| m.interval_s)
        .filter(|i| *i > 0);
    let entries = archive.list(
        Some(week.start),
        Some(week.end - chrono::Duration::seconds(1)),
        None,
    )?;
    let round_times: Vec<i64> =
        crate::store::group_rounds(entries.iter(), |e| e.node.as_str(), |e| e.captured_at)
            .iter()
            .filter_map(|r| r.iter().map(|e| e.captured_at.timestamp()).min())
            .collect();
    let round_count = round_times.len();
    let ctx = WeekContext {
        round_count,
        interval_s,
        week: week.clone(),
        previous: week.previous(tz),
        now: Utc::now().timestamp(),
    };
    let mut nodes = Vec::new();
    let mut growers = Vec::new();
    let mut disk_series = Vec::new();
    let node_names: BTreeSet<String> = entries.iter().map(|e| e.node.clone()).collect();
    // Nodes are independent: their weeks are read and aggregated in parallel, one node per
    // worker at a time.
    let names: Vec<&String> = node_names.iter().collect();
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
                    let Some(node) = names.get(i) else { break };
                    let week_of_node = node_week(archive, node, &entries, &ctx);
                    if let Ok(mut r) = results.lock() {
                        r.push((i, week_of_node));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    let mut fleet_previous: Option<(i64, u64)> = None;
    for (_, r) in results {
        let w = r?;
        fleet_previous = fleet_previous.max(w.previous);
        nodes.push(w.digest);
        growers.extend(w.growers);
        disk_series.extend(w.disk);
    }
    let coverage = fleet_coverage(&nodes, &round_times, fleet_previous, &ctx);
    growers.sort_by(|a, b| {
        b.slope_per_day
            .total_cmp(&a.slope_per_day)
            .then(a.node.cmp(&b.node))
    });
    growers.retain(|g| g.slope_per_day > 0.0);
    growers.truncate(5);

    // What the findings did this week, from the ledger.
    let in_week = |t: DateTime<Utc>| t >= week.start && t < week.end;
    let conditions = || ledger.entries.values().filter(|e| !e.finding.event);
    let findings = FindingCounts {
        opened: severity_counts(
            conditions()
                .filter(|e| in_week(e.first_seen))
                .map(|e| e.finding.severity),
        ),
        resolved: severity_counts(
            conditions()
                .filter(|e| e.resolved_at.is_some_and(in_week))
                .map(|e| e.finding.severity),
        ),
        still_open: severity_counts(
            conditions()
                .filter(|e| e.first_seen < week.end)
                .filter(|e| {
                    e.status == Status::Open || e.resolved_at.is_some_and(|r| r >= week.end)
                })
                .map(|e| e.finding.severity),
        ),
    };
    let open_at_end: Vec<&crate::ledger::Entry> = conditions()
        .filter(|e| e.first_seen < week.end)
        .filter(|e| e.status == Status::Open || e.resolved_at.is_some_and(|r| r >= week.end))
        .collect();
    let drift = open_at_end
        .iter()
        .filter(|e| e.finding.kind == "drift-across-nodes")
        .map(|e| e.finding.title.clone())
        .collect();
    let not_deployed = open_at_end
        .iter()
        .filter(|e| e.finding.kind == "config-missing")
        .map(|e| e.finding.title.clone())
        .collect();
    let top_action = open_at_end
        .iter()
        .filter(|e| !e.acknowledged)
        .max_by(|a, b| {
            a.finding
                .severity
                .cmp(&b.finding.severity)
                .then(b.first_seen.cmp(&a.first_seen))
        })
        .map(|e| format!("{}: {}", e.finding.title, e.finding.recommendation));
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d").to_string();
    Ok(Digest {
        fleet: fleet.to_string(),
        week: week.label.clone(),
        from: local(week.start),
        to: local(week.end - chrono::Duration::seconds(1)),
        timezone: tz.name().to_string(),
        rounds: round_count,
        coverage,
        nodes,
        growers,
        findings,
        drift,
        not_deployed,
        top_action,
        disk_series,
    })
}

/// One node's part of the digest.
struct NodeWeek {
    digest: NodeDigest,
    growers: Vec<Grower>,
    disk: Option<(String, Vec<(i64, f64)>)>,
    /// The node's capture before the week, with its interval.
    previous: Option<(i64, u64)>,
}

/// What every node's part needs to know about the week.
struct WeekContext {
    round_count: usize,
    /// The archive's metadata interval: for captures that do not record their own.
    interval_s: Option<u64>,
    week: Week,
    previous: Week,
    now: i64,
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

/// Reads one node's captures of the week and aggregates them.
fn node_week(
    archive: &Archive,
    node: &str,
    entries: &[crate::store::Entry],
    ctx: &WeekContext,
) -> Result<NodeWeek> {
    let round_count = ctx.round_count;
    let node = node.to_string();
    let node = &node;
    let mut node_growers = Vec::new();
    let mut disk = None;
    let mine: Vec<_> = entries
        .iter()
        .filter(|e| &e.node == node)
        .cloned()
        .collect();
    let (snaps, _skipped) = archive.load_entries(&mine);
    let mut at = Vec::new();
    let mut entity = Vec::new();
    let mut metric = Vec::new();
    let mut value = Vec::new();
    let mut answered = 0;
    let mut reboots = 0;
    let mut last_boot: Option<i64> = None;
    let mut unhealthy = BTreeSet::new();
    let mut mem_points: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let mut disk_points: Vec<(i64, f64)> = Vec::new();
    let mut gpu_idle = Vec::new();
    let mut gpu_seen = false;
    for (index, s) in snaps.iter().enumerate() {
        let t = s.captured_at.timestamp();
        if !s.is_dark() {
            answered += 1;
        }
        if let Some(boot) = s.host.as_ref().and_then(|h| {
            h.boot_time
                .map(|b| b.timestamp())
                .or_else(|| h.uptime_s.map(|u| t - u as i64))
        }) {
            if last_boot.is_some_and(|b| boot - b > 120) {
                reboots += 1;
            }
            last_boot = Some(boot);
        }
        for c in s.containers.iter().flatten() {
            if c.health == Health::Unhealthy {
                unhealthy.insert(c.name.clone());
            }
        }
        for g in s.gpus.iter().flatten() {
            if let (Some(u), Some(m)) = (g.util_pct, g.mem_used_pct) {
                gpu_seen = true;
                if u < 1.0 && m > 20.0 {
                    gpu_idle.push(index);
                }
            }
        }
        for r in readings(s) {
            let Some(v) = r.value else { continue };
            // Only the catalogue's digest metrics: a week of a big fleet stays small.
            if !catalogue::lookup(r.metric).is_some_and(|d| d.digest) {
                continue;
            }
            if r.metric == "mem_usage_bytes" {
                mem_points.entry(r.entity.clone()).or_default().push((t, v));
            }
            at.push(t);
            entity.push(r.entity);
            metric.push(r.metric.to_string());
            value.push(v);
        }
    }
    let aggs = aggregate(at, entity, metric, value)?;
    let find = |e: &str, m: &str| aggs.iter().find(|a| a.entity == e && a.metric == m);
    // The fullest disk at the end of the week.
    let fullest = aggs
        .iter()
        .filter(|a| a.metric == "used_pct" && a.entity.starts_with("disk:"))
        .max_by(|a, b| a.last.unwrap_or(0.0).total_cmp(&b.last.unwrap_or(0.0)));
    let (disk_used_pct, disk_mount, disk_full_in_days) = match fullest {
        Some(d) => {
            let used = find(&d.entity, "used_bytes");
            let size = find(&d.entity, "size_bytes").and_then(|s| s.last);
            let days = match (
                used.and_then(|u| u.slope_per_s),
                used.and_then(|u| u.last),
                size,
            ) {
                (Some(slope), Some(last), Some(size)) if slope > 0.0 && size > last => {
                    Some((size - last) / slope / 86400.0)
                }
                _ => None,
            };
            for s in &snaps {
                if let Some(h) = &s.host
                    && let Some(disk) = h
                        .disks
                        .iter()
                        .find(|x| format!("disk:{}", x.mount) == d.entity)
                    && let Some(p) = disk.used_pct
                {
                    disk_points.push((s.captured_at.timestamp(), p));
                }
            }
            (
                d.last,
                Some(d.entity.trim_start_matches("disk:").to_string()),
                days,
            )
        }
        None => (None, None, None),
    };
    let gpu_temps: Vec<&Aggregate> = aggs
        .iter()
        .filter(|a| a.metric == "temp_c" && a.entity.starts_with("gpu:"))
        .collect();
    let restarted: Vec<String> = aggs
        .iter()
        .filter(|a| a.metric == "restart_count")
        .filter(|a| matches!((a.first, a.last), (Some(f), Some(l)) if l > f))
        .map(|a| a.entity.trim_start_matches("container:").to_string())
        .collect();
    // Growers: slope within each container's current run (after its last reset), so a
    // reboot's drop does not hide a leak; ranked fleet-wide later.
    for (ent, pts) in mem_points {
        let start = pts
            .windows(2)
            .rposition(|w| w[1].1 < w[0].1 * 0.5)
            .map(|i| i + 1)
            .unwrap_or(0);
        let run = &pts[start..];
        if run.len() < 8 {
            continue;
        }
        let n = run.len() as f64;
        let t0 = run[0].0;
        let (mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0);
        for (t, v) in run {
            let x = (t - t0) as f64;
            sx += x;
            sy += v;
            sxx += x * x;
            sxy += x * v;
        }
        let denom = n * sxx - sx * sx;
        if denom <= 0.0 {
            continue;
        }
        let slope = (n * sxy - sx * sy) / denom;
        node_growers.push(Grower {
            node: node.clone(),
            container: ent.trim_start_matches("container:").to_string(),
            slope_per_day: slope * 86400.0,
            first: run[0].1,
            last: run[run.len() - 1].1,
            points: pts.clone(),
        });
    }
    let last_snapshot = snaps.iter().rev().find(|s| !s.is_dark());
    let card = last_snapshot.and_then(|s| score_card::score(s, "*cleanup*"));
    let score: Option<u32> = card.as_ref().map(|c| c.iter().map(|d| d.points).sum());
    let weakest = card.as_ref().and_then(|c| {
        c.iter()
            .max_by_key(|d| (d.max - d.points, std::cmp::Reverse(d.name)))
            .filter(|d| d.points < d.max)
            .map(|d| format!("{} {}/{} ({})", d.name, d.points, d.max, d.reading))
    });
    let before = last_capture_before(archive, node, ctx.previous.end)?;
    let score_last_week = before
        .as_ref()
        .and_then(|s| score_card::score(s, "*cleanup*"))
        .map(|c| c.iter().map(|d| d.points).sum());
    if !disk_points.is_empty() {
        disk = Some((node.clone(), disk_points));
    }
    // Each capture stands for the interval it was scheduled at: recorded in it, else in the
    // archive's metadata, else the median spacing of this node's captures.
    let times: Vec<i64> = snaps.iter().map(|s| s.captured_at.timestamp()).collect();
    let recorded: Vec<Option<u64>> = snaps.iter().map(|s| s.interval_s).collect();
    let intervals = rounds::intervals(&times, &recorded, ctx.interval_s);
    let previous = before.as_ref().and_then(|b| {
        let i = b
            .interval_s
            .or(ctx.interval_s)
            .or_else(|| intervals.as_ref().and_then(|(v, _)| v.first().copied()))?;
        Some((b.captured_at.timestamp(), i))
    });
    let coverage = intervals.as_ref().and_then(|(iv, source)| {
        rounds::coverage(
            &times,
            iv,
            *source,
            previous,
            ctx.week.start.timestamp(),
            ctx.week.end.timestamp(),
            ctx.now,
        )
    });
    // A capture off the schedule (a run by hand) stands for no time of its own.
    let gpu_idle_hours = intervals
        .as_ref()
        .zip(coverage.as_ref())
        .filter(|_| gpu_seen)
        .map(|((iv, _), c)| {
            rounds::hours(
                gpu_idle
                    .iter()
                    .filter(|i| c.fills.get(**i) == Some(&true))
                    .filter_map(|i| iv.get(*i).copied()),
            )
        });
    let digest = NodeDigest {
        node: node.clone(),
        captures: snaps.len(),
        answered,
        rounds: round_count,
        availability_pct: (round_count > 0).then(|| answered as f64 / round_count as f64 * 100.0),
        reboots,
        steal_avg_pct: find("host", "cpu_steal_pct").and_then(|a| a.mean),
        mem_available_avg: find("host", "mem_available_bytes").and_then(|a| a.mean),
        swap_peak: find("host", "swap_used_bytes").and_then(|a| a.max),
        disk_used_pct,
        disk_mount,
        disk_full_in_days,
        gpu_idle_hours,
        coverage,
        gpu_temp_min: gpu_temps.iter().filter_map(|a| a.min).reduce(f64::min),
        gpu_temp_max: gpu_temps.iter().filter_map(|a| a.max).reduce(f64::max),
        unhealthy: unhealthy.into_iter().collect(),
        restarted,
        score,
        score_last_week,
        weakest,
    };
    Ok(NodeWeek {
        digest,
        growers: node_growers,
        disk,
        previous,
    })
}

fn last_capture_before(
    archive: &Archive,
    node: &str,
    before: DateTime<Utc>,
) -> Result<Option<Snapshot>> {
    let entries = archive.list(
        Some(before - chrono::Duration::days(7)),
        Some(before - chrono::Duration::seconds(1)),
        Some(node),
    )?;
    let Some(last) = entries.last() else {
        return Ok(None);
    };
    let (snaps, _) = archive.load_entries(std::slice::from_ref(last));
    Ok(snaps.into_iter().next())
}

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

fn counts_text(c: &BTreeMap<String, usize>) -> String {
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
    use crate::markdown::escape_inline;
    let coverage = match &d.coverage {
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
    };
    let nodes = d
        .nodes
        .iter()
        .map(|n| NodeView {
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
                .map(escape_inline)
                .unwrap_or_else(|| "-".into()),
            availability: format!("{} ({}/{})", pct(n.availability_pct), n.answered, n.rounds),
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
            disk_full: n
                .disk_full_in_days
                .map(|d| format!("{} days", fmt_number(d, 0)))
                .unwrap_or_else(|| "not filling".into()),
            gpu_idle: n
                .gpu_idle_hours
                .map(|h| format!("{} h", fmt_number(h, 1)))
                .unwrap_or_else(|| "-".into()),
            gpu_temp: match (n.gpu_temp_min, n.gpu_temp_max) {
                (Some(a), Some(b)) => format!("{}-{}°C", fmt_number(a, 0), fmt_number(b, 0)),
                _ => "-".into(),
            },
        })
        .collect();
    let trouble = d
        .nodes
        .iter()
        .flat_map(|n| {
            n.unhealthy
                .iter()
                .map(move |c| format!("{} `{}` unhealthy", n.node, c))
                .chain(
                    n.restarted
                        .iter()
                        .map(move |c| format!("{} `{}` restarted", n.node, c)),
                )
        })
        .collect();
    let growers = d
        .growers
        .iter()
        .map(|g| {
            format!(
                "{} `{}` {}/day ({} → {})",
                escape_inline(&g.node),
                g.container,
                format_args!("+{}", fmt_bytes(g.slope_per_day)),
                fmt_bytes(g.first),
                fmt_bytes(g.last)
            )
        })
        .collect();
    View {
        fleet: escape_inline(&d.fleet),
        week: d.week.clone(),
        from: d.from.clone(),
        to: d.to.clone(),
        timezone: d.timezone.clone(),
        coverage,
        top_action: d
            .top_action
            .clone()
            .unwrap_or_else(|| "nothing open; keep it that way.".into()),
        nodes,
        opened: counts_text(&d.findings.opened),
        resolved: counts_text(&d.findings.resolved),
        still_open: counts_text(&d.findings.still_open),
        trouble,
        drift: d.drift.clone(),
        not_deployed: d.not_deployed.clone(),
        growers,
        charts,
    }
}

/// The week's charts as (file name, alt text, SVG).
pub fn charts(d: &Digest, tz: Tz, start: i64, end: i64) -> Vec<(String, String, String)> {
    let day = |t: i64| {
        Utc.timestamp_opt(t, 0)
            .single()
            .map(|x| x.with_timezone(&tz).format("%a %b %-d").to_string())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if !d.growers.is_empty() {
        let series: Vec<crate::chart::Series> = d
            .growers
            .iter()
            .map(|g| crate::chart::Series {
                label: format!("{} {}", g.node, g.container),
                points: &g.points,
                projection: None,
            })
            .collect();
        out.push((
            format!("{}-memory.svg", d.week),
            "Memory of the top growers over the week".to_string(),
            crate::chart::line_chart(
                &format!("{} {}: memory of the top growers", d.fleet, d.week),
                &series,
                start,
                end,
                &|v| fmt_bytes(v),
                &day,
            ),
        ));
    }
    if !d.disk_series.is_empty() {
        // Each disk's trend carried a week past the end, at the week's slope (capped at full).
        let horizon = end + 7 * 86400;
        let series: Vec<crate::chart::Series> = d
            .disk_series
            .iter()
            .map(|(n, p)| {
                let node = d.nodes.iter().find(|x| &x.node == n);
                let projection = node.and_then(|x| {
                    let (used, days) = (x.disk_used_pct?, x.disk_full_in_days?);
                    let (last_t, _) = *p.last()?;
                    let per_s = (100.0 - used) / (days * 86400.0);
                    let reach = ((100.0 - used) / per_s) as i64;
                    let t = (last_t + reach).min(horizon);
                    Some((t, (used + per_s * (t - last_t) as f64).min(100.0)))
                });
                crate::chart::Series {
                    label: n.clone(),
                    points: p,
                    projection,
                }
            })
            .collect();
        out.push((
            format!("{}-disk.svg", d.week),
            "Fullest disk of each node over the week (% used), dashed: a week ahead at this rate"
                .to_string(),
            crate::chart::line_chart(
                &format!(
                    "{} {}: fullest disk, % used, and a week ahead",
                    d.fleet, d.week
                ),
                &series,
                start,
                horizon,
                &|v| format!("{}%", fmt_number(v, 0)),
                &day,
            ),
        ));
    }
    out
}

/// The digest as Telegram HTML lines, most important first: the top action, the score card,
/// the findings, containers in trouble, what is not deployed, then per-node details and growers.
pub fn telegram_lines(d: &Digest) -> Vec<String> {
    use crate::telegram::escape;
    let mut lines = vec![format!(
        "<b>{} — week {}</b> ({} to {})",
        escape(&d.fleet),
        escape(&d.week),
        escape(&d.from),
        escape(&d.to)
    )];
    if let Some(action) = &d.top_action {
        lines.push(format!(
            "<b>Top action:</b> {}",
            escape(&strip_backticks(action))
        ));
    }
    lines.push(String::new());
    lines.push("<b>Score card</b>".into());
    for n in &d.nodes {
        let trend = match (n.score, n.score_last_week) {
            (Some(a), Some(b)) if a > b => format!(" (▲ +{} on last week)", a - b),
            (Some(a), Some(b)) if a < b => format!(" (▼ -{} on last week)", b - a),
            (Some(_), Some(_)) => " (= last week)".into(),
            _ => String::new(),
        };
        lines.push(format!(
            "{}: {}/100{trend}{}",
            escape(&n.node),
            n.score.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            n.weakest
                .as_ref()
                .map(|w| format!(" — weakest {}", escape(w)))
                .unwrap_or_default()
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "<b>Findings</b> opened {}; resolved {}; still open {}",
        counts_text(&d.findings.opened),
        counts_text(&d.findings.resolved),
        counts_text(&d.findings.still_open)
    ));
    for n in &d.nodes {
        for c in &n.unhealthy {
            lines.push(format!(
                "⚠ {} <code>{}</code> unhealthy",
                escape(&n.node),
                escape(c)
            ));
        }
        for c in &n.restarted {
            lines.push(format!(
                "↻ {} <code>{}</code> restarted",
                escape(&n.node),
                escape(c)
            ));
        }
    }
    for t in &d.not_deployed {
        lines.push(format!("Not deployed: {}", escape(&strip_backticks(t))));
    }
    for t in &d.drift {
        lines.push(format!("Drift: {}", escape(&strip_backticks(t))));
    }
    lines.push(String::new());
    lines.push("<b>Nodes</b>".into());
    for n in &d.nodes {
        let mut parts = vec![format!(
            "up {} ({}/{})",
            pct(n.availability_pct),
            n.answered,
            n.rounds
        )];
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
        lines.push(format!("{}: {}", escape(&n.node), parts.join(", ")));
    }
    if !d.growers.is_empty() {
        lines.push(String::new());
        lines.push("<b>Top memory growers</b>".into());
        for g in &d.growers {
            lines.push(format!(
                "{} <code>{}</code> +{}/day ({} → {})",
                escape(&g.node),
                escape(&g.container),
                fmt_bytes(g.slope_per_day),
                fmt_bytes(g.first),
                fmt_bytes(g.last)
            ));
        }
    }
    lines
}

/// Finding titles carry markdown code spans; in a Telegram line they are plain text.
fn strip_backticks(text: &str) -> String {
    text.replace('`', "")
}
