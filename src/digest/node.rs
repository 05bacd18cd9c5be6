//! One node's week: its daily rollups (built from the captures where missing) added up and
//! turned into the node's row of the digest, its memory growers, its disk chart and its capture
//! schedule. Nodes are independent, so the digest builds these in parallel.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::aggregate::{Aggregate, aggregate, find};
use super::rollup::{self, CaptureRow, DayRollup, RollupDir};
use super::{ContainerTrouble, DimensionWeek, Grower, NodeDigest, Week, rounds};
use crate::error::Result;
use crate::model::Snapshot;
use crate::rules::kinds::score_card;
use crate::store::{Archive, Entry};

/// One node's part of the digest.
pub(super) struct NodeWeek {
    pub digest: NodeDigest,
    pub growers: Vec<Grower>,
    pub disk: Option<(String, Vec<(i64, f64)>)>,
    /// The node's capture before the week, with its interval.
    pub previous: Option<(i64, u64)>,
}

/// What every node's part needs to know about the week.
pub(super) struct WeekContext {
    pub round_count: usize,
    /// When each of the week's capture rounds began (unix s), oldest first.
    pub round_times: Vec<i64>,
    /// The archive's metadata interval: for captures that do not record their own.
    pub interval_s: Option<u64>,
    pub week: Week,
    pub previous: Week,
    pub now: i64,
    /// The glob of the score card's cleanup job: the library's score-card rule's, so the digest
    /// scores a node as the rule does.
    pub cleanup_job: String,
    /// The fleet's time zone: rollups are per local day.
    pub tz: chrono_tz::Tz,
    /// Where daily rollups are read and saved; `None` builds them in memory only.
    pub rollups: Option<RollupDir>,
}

/// What a node's week of daily rollups adds up to.
#[derive(Default)]
struct Collected {
    captures: Vec<CaptureRow>,
    answered: usize,
    /// Answered and ran containers: up.
    up: usize,
    /// Answered with the container list, and nothing running.
    ran_nothing: usize,
    /// Answered without the container list (the container source failed).
    no_container_list: usize,
    /// When the node's last capture of the week was not up: since when it has not been.
    down_since: Option<i64>,
    reboots: usize,
    /// When each of those reboots happened (the new boot time).
    reboot_times: Vec<i64>,
    trouble: BTreeMap<String, rollup::Trouble>,
    mem_points: BTreeMap<String, Vec<(i64, f64)>>,
    mem_nulls: BTreeMap<String, Vec<i64>>,
    disk_pct: BTreeMap<String, Vec<(i64, f64)>>,
    /// Indexes of the captures in which a GPU sat idle holding memory.
    gpu_idle: Vec<usize>,
    gpu_seen: bool,
}

impl Collected {
    fn of(days: &[DayRollup]) -> Collected {
        let mut c = Collected::default();
        let mut last_boot: Option<i64> = None;
        for day in days {
            for row in &day.captures {
                // A reboot: a boot time that moved by more than two minutes.
                if let Some(boot) = row.boot {
                    if last_boot.is_some_and(|b| boot - b > 120) {
                        c.reboots += 1;
                        c.reboot_times.push(boot);
                    }
                    last_boot = Some(boot);
                }
                c.gpu_seen |= row.gpu_seen;
                for _ in 0..row.gpu_idle {
                    c.gpu_idle.push(c.captures.len());
                }
                c.captures.push(row.clone());
            }
            for (name, t) in &day.trouble {
                c.trouble.entry(name.clone()).or_default().add(t);
            }
            for (entity, times) in &day.mem_nulls {
                c.mem_nulls
                    .entry(entity.clone())
                    .or_default()
                    .extend_from_slice(times);
            }
            for (into, from) in [
                (&mut c.mem_points, &day.mem_points),
                (&mut c.disk_pct, &day.disk_pct),
            ] {
                for (entity, pts) in from {
                    into.entry(entity.clone())
                        .or_default()
                        .extend_from_slice(pts);
                }
            }
        }
        c.count_up();
        c
    }

    /// Up, of the captures: answered and ran containers. A node whose containers patrol does
    /// not read at all (no Docker source in the whole week) is up when it answers; one whose
    /// container list failed only sometimes is not up in those captures.
    fn count_up(&mut self) {
        let watches_containers = self.captures.iter().any(|r| r.running.is_some());
        for row in &self.captures {
            let up = !row.dark
                && match row.running {
                    Some(n) => n > 0,
                    None => !watches_containers,
                };
            if !row.dark {
                self.answered += 1;
                match row.running {
                    Some(0) => self.ran_nothing += 1,
                    None if watches_containers => self.no_container_list += 1,
                    _ => {}
                }
            }
            if up {
                self.up += 1;
                self.down_since = None;
            } else if self.down_since.is_none() {
                self.down_since = Some(row.at);
            }
        }
    }
}

/// Reads one node's week (its daily rollups, built from the snapshots where missing) from its
/// captures `mine` and aggregates it; `before` is its last capture of the day before the week,
/// when it has one.
pub(super) fn node_week(
    archive: &Archive,
    node: &str,
    (mine, before): (&[Entry], Option<&Entry>),
    ctx: &WeekContext,
) -> Result<NodeWeek> {
    let days = rollup::node_days(archive, ctx.rollups.as_ref(), ctx.tz, node, mine);
    let collected = Collected::of(&days);
    let aggs = aggregate(&days)?;
    let disk = fullest_disk(&aggs, &collected.disk_pct);
    let (gpu_temp_min, gpu_temp_max) = gpu_temp_range(&aggs);
    let before = match before {
        Some(e) => archive
            .load_entries(std::slice::from_ref(e))
            .0
            .into_iter()
            .next(),
        None => last_capture_before(archive, node, ctx.previous.end)?,
    };
    let last_answered = collected
        .captures
        .iter()
        .rev()
        .find(|c| !c.dark)
        .and_then(|c| mine.iter().find(|e| e.captured_at.timestamp() == c.at));
    let last = last_answered.and_then(|e| {
        archive
            .load_entries(std::slice::from_ref(e))
            .0
            .into_iter()
            .next()
    });
    let scores = Scores::of(last.as_ref(), before.as_ref(), &ctx.cleanup_job, ctx.tz);
    let schedule = Schedule::of(before.as_ref(), &collected, ctx);
    let schedule_interval = schedule
        .coverage
        .as_ref()
        .map(|c| c.interval_s)
        .or(ctx.interval_s)
        .unwrap_or(900);
    let round_count = ctx.round_count;
    let up = collected.up;
    // Its own rounds: the fleet's rounds from its first capture of the week on (within half an
    // interval), so a node that joined mid-week is up over the time it was watched.
    let rounds = match collected.captures.first() {
        Some(first) => {
            let from = first.at - schedule_interval as i64 / 2;
            ctx.round_times
                .iter()
                .filter(|t| **t >= from)
                .count()
                .max(collected.captures.len())
        }
        None => round_count,
    };
    let digest = NodeDigest {
        node: node.to_string(),
        captures: collected.captures.len(),
        answered: collected.answered,
        up,
        ran_nothing: collected.ran_nothing,
        no_container_list: collected.no_container_list,
        rounds,
        availability_pct: (rounds > 0).then(|| up as f64 / rounds as f64 * 100.0),
        down_since: collected.down_since,
        open_warnings: 0,
        reboots: collected.reboots,
        reboot_times: collected.reboot_times.clone(),
        steal_avg_pct: find(&aggs, "host", "cpu_steal_pct").and_then(|a| a.mean),
        mem_available_avg: find(&aggs, "host", "mem_available_bytes").and_then(|a| a.mean),
        swap_peak: find(&aggs, "host", "swap_used_bytes").and_then(|a| a.max),
        disk_used_pct: disk.used_pct,
        disk_mount: disk.mount,
        disk_full_in_days: disk.full_in_days,
        gpu_idle_hours: schedule.gpu_idle_hours,
        coverage: schedule.coverage,
        gpu_temp_min,
        gpu_temp_max,
        trouble: trouble(&collected.trouble, &aggs, schedule_interval),
        score: scores.score,
        score_last_week: scores.score_last_week,
        weakest: scores.weakest,
        weakest_short: scores.weakest_short,
        dimensions: scores.dimensions,
        unscored: scores.unscored,
    };
    Ok(NodeWeek {
        digest,
        growers: growers(node, &collected.mem_points, &collected.mem_nulls),
        disk: (!disk.points.is_empty()).then(|| (node.to_string(), disk.points)),
        previous: schedule.previous,
    })
}

/// The fullest disk at the end of the week, when it will be full, and its use over the week.
struct DiskWeek {
    used_pct: Option<f64>,
    mount: Option<String>,
    /// At the week's slope; `None` when not growing.
    full_in_days: Option<f64>,
    points: Vec<(i64, f64)>,
}

fn fullest_disk(aggs: &[Aggregate], disk_pct: &BTreeMap<String, Vec<(i64, f64)>>) -> DiskWeek {
    let fullest = aggs
        .iter()
        .filter(|a| a.metric == "used_pct" && a.entity.starts_with("disk:"))
        .max_by(|a, b| a.last.unwrap_or(0.0).total_cmp(&b.last.unwrap_or(0.0)));
    let Some(d) = fullest else {
        return DiskWeek {
            used_pct: None,
            mount: None,
            full_in_days: None,
            points: Vec::new(),
        };
    };
    let used = find(aggs, &d.entity, "used_bytes");
    let size = find(aggs, &d.entity, "size_bytes").and_then(|s| s.last);
    let full_in_days = match (
        used.and_then(|u| u.slope_per_s),
        used.and_then(|u| u.last),
        size,
    ) {
        (Some(slope), Some(last), Some(size)) if slope > 0.0 && size > last => {
            Some((size - last) / slope / 86400.0)
        }
        _ => None,
    };
    let points = disk_pct.get(&d.entity).cloned().unwrap_or_default();
    DiskWeek {
        used_pct: d.last,
        mount: Some(d.entity.trim_start_matches("disk:").to_string()),
        full_in_days,
        points,
    }
}

/// The coolest and hottest any GPU of the node was in the week.
fn gpu_temp_range(aggs: &[Aggregate]) -> (Option<f64>, Option<f64>) {
    let temps: Vec<&Aggregate> = aggs
        .iter()
        .filter(|a| a.metric == "temp_c" && a.entity.starts_with("gpu:"))
        .collect();
    (
        temps.iter().filter_map(|a| a.min).reduce(f64::min),
        temps.iter().filter_map(|a| a.max).reduce(f64::max),
    )
}

/// Containers in trouble during the week: unhealthy or restarting (each capture standing for
/// `interval_s`), restarted (their restart count rose) or OOM-killed; worst first.
fn trouble(
    seen: &BTreeMap<String, rollup::Trouble>,
    aggs: &[Aggregate],
    interval_s: u64,
) -> Vec<ContainerTrouble> {
    let mut by_name: BTreeMap<String, ContainerTrouble> = BTreeMap::new();
    let blank = |name: &str| ContainerTrouble {
        container: name.to_string(),
        unhealthy_s: 0,
        restarting_s: 0,
        restarts: 0,
        oom_kills: 0,
    };
    for (name, t) in seen {
        let c = by_name.entry(name.clone()).or_insert_with(|| blank(name));
        c.unhealthy_s = u64::from(t.unhealthy) * interval_s;
        c.restarting_s = u64::from(t.restarting) * interval_s;
        c.oom_kills = t.oom_kills;
    }
    for a in aggs.iter().filter(|a| a.metric == "restart_count") {
        if let (Some(f), Some(l)) = (a.first, a.last)
            && l > f
        {
            let name = a.entity.trim_start_matches("container:");
            by_name
                .entry(name.to_string())
                .or_insert_with(|| blank(name))
                .restarts = (l - f) as u64;
        }
    }
    let mut out: Vec<ContainerTrouble> = by_name.into_values().collect();
    out.sort_by_key(|c| {
        std::cmp::Reverse((c.oom_kills, c.restarting_s + c.unhealthy_s, c.restarts))
    });
    out
}

/// Growers: how much a container's memory *floor* rose over the week, added up across its runs
/// (the stretches between resets: a restart or a reboot that dropped it by half), per day of
/// those runs. A leak a reboot reset still counts for what it climbed before; a cycle that
/// comes back to its level every day (a sawtooth, a daily load) has a floor that does not rise,
/// whatever phase the week starts and ends in. Ranked fleet-wide later.
fn growers(
    node: &str,
    mem_points: &BTreeMap<String, Vec<(i64, f64)>>,
    mem_nulls: &BTreeMap<String, Vec<i64>>,
) -> Vec<Grower> {
    let mut out = Vec::new();
    for (ent, pts) in mem_points {
        let Some(g) = floor_growth(pts) else {
            continue;
        };
        out.push(Grower {
            node: node.to_string(),
            container: ent.trim_start_matches("container:").to_string(),
            slope_per_day: g.growth / (g.span_s / 86_400.0),
            growth: g.growth,
            resets: g.resets,
            first: pts[0].1,
            last: pts[pts.len() - 1].1,
            points: pts.clone(),
            nulls: mem_nulls.get(ent).cloned().unwrap_or_default(),
        });
    }
    out
}

/// What [`floor_growth`] measured.
pub(super) struct FloorGrowth {
    /// Bytes the floor rose, over every run.
    pub growth: f64,
    /// Seconds the runs measured span.
    pub span_s: f64,
    /// Resets between the runs.
    pub resets: usize,
}

/// Readings a run needs before its floor is judged: two hours at 15-minute captures.
const RUN_MIN_READINGS: usize = 8;

/// The rise of the floor of `pts` (time, bytes), run by run: in each run of at least
/// [`RUN_MIN_READINGS`], the lowest of its last quarter less the lowest of its first quarter.
/// A run ends at a reset and at a capture gap ([`crate::chart::gap_after`]): what
/// happened while nobody looked is no rate. `None` when no run is long enough.
pub(super) fn floor_growth(pts: &[(i64, f64)]) -> Option<FloorGrowth> {
    let gap = crate::chart::gap_after(pts.iter().map(|p| p.0));
    let reset = |w: &[(i64, f64)]| w[1].1 < w[0].1 * 0.5;
    let resets = pts.windows(2).filter(|w| reset(w)).count();
    let mut cuts: Vec<usize> = pts
        .windows(2)
        .enumerate()
        .filter(|(_, w)| reset(w) || w[1].0 - w[0].0 > gap)
        .map(|(i, _)| i + 1)
        .collect();
    cuts.insert(0, 0);
    cuts.push(pts.len());
    let (mut growth, mut span_s, mut measured) = (0.0, 0.0, false);
    for run in cuts.windows(2).map(|c| &pts[c[0]..c[1]]) {
        if run.len() < RUN_MIN_READINGS {
            continue;
        }
        let quarter = run.len() / 4;
        let floor = |part: &[(i64, f64)]| part.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        growth += floor(&run[run.len() - quarter..]) - floor(&run[..quarter]);
        span_s += (run[run.len() - 1].0 - run[0].0) as f64;
        measured = true;
    }
    (measured && span_s > 0.0).then_some(FloorGrowth {
        growth,
        span_s,
        resets,
    })
}

/// The score card of the node's last answered capture of the week, and of its last capture
/// before the week.
struct Scores {
    score: Option<u32>,
    score_last_week: Option<u32>,
    weakest: Option<String>,
    /// "Disk 0/15": the weakest dimension, short.
    weakest_short: Option<String>,
    /// Why there is no score: "could not check: no host readings on Feb 25 10:00".
    unscored: Option<String>,
    /// The card dimension by dimension, with last week's points.
    dimensions: Vec<DimensionWeek>,
}

impl Scores {
    /// `last`: the node's last answered capture of the week.
    fn of(
        last: Option<&Snapshot>,
        before: Option<&Snapshot>,
        cleanup_job: &str,
        tz: chrono_tz::Tz,
    ) -> Scores {
        let card = last.and_then(|s| score_card::score(s, cleanup_job));
        let weakest = card
            .as_ref()
            .and_then(|c| score_card::weakest(c).map(score_card::Dimension::text));
        let weakest_short = card
            .as_ref()
            .and_then(|c| score_card::weakest(c).map(score_card::short));
        let unscored = match last {
            None => Some("could not check: no capture of the week answered".to_string()),
            Some(s) => score_card::unscored_why(s).map(|why| {
                format!(
                    "could not check: {why} in its last answered capture ({})",
                    s.captured_at.with_timezone(&tz).format("%b %-d %H:%M")
                )
            }),
        };
        let total = |c: &[score_card::Dimension]| match score_card::total(c) {
            (_, 0) => None,
            (t, _) => Some(t),
        };
        let before_card = before.and_then(|s| score_card::score(s, cleanup_job));
        let dimensions = card
            .iter()
            .flatten()
            .map(|d| DimensionWeek {
                name: d.name.to_string(),
                points: d.checked.then_some(d.points),
                max: d.max,
                reading: d.reading.clone(),
                last_week: before_card
                    .iter()
                    .flatten()
                    .find(|b| b.name == d.name && b.checked)
                    .map(|b| b.points),
            })
            .collect();
        Scores {
            score: card.as_deref().and_then(total),
            score_last_week: before_card.as_deref().and_then(total),
            dimensions,
            weakest,
            weakest_short,
            unscored,
        }
    }
}

/// The node's captures against its schedule: the rounds it should have had, and what follows
/// from each capture standing for its interval (GPU idle hours).
struct Schedule {
    coverage: Option<rounds::Coverage>,
    previous: Option<(i64, u64)>,
    gpu_idle_hours: Option<f64>,
}

impl Schedule {
    fn of(before: Option<&Snapshot>, collected: &Collected, ctx: &WeekContext) -> Schedule {
        // Each capture stands for the interval it was scheduled at: recorded in it, else in the
        // archive's metadata, else the median spacing of this node's captures.
        let times: Vec<i64> = collected.captures.iter().map(|c| c.at).collect();
        let recorded: Vec<Option<u64>> = collected.captures.iter().map(|c| c.interval_s).collect();
        let intervals = rounds::intervals(&times, &recorded, ctx.interval_s);
        let previous = before.and_then(|b| {
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
            .filter(|_| collected.gpu_seen)
            .map(|((iv, _), c)| {
                rounds::hours(
                    collected
                        .gpu_idle
                        .iter()
                        .filter(|i| c.fills.get(**i) == Some(&true))
                        .filter_map(|i| iv.get(*i).copied()),
                )
            });
        Schedule {
            coverage,
            previous,
            gpu_idle_hours,
        }
    }
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
