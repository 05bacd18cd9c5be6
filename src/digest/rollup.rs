//! Daily rollups: one node's day of captures reduced to what the weekly digest reads (each
//! capture's time, schedule, boot and GPU idleness; per series the count, nulls, extremes,
//! first and last, and the sums a mean and a least-squares slope follow from; container memory
//! and disk use point by point for the growers and charts). A digest then reads seven small
//! files per node instead of 672 snapshots. A rollup names the captures it was built from, so
//! one that no longer matches the archive (a capture added late, pruning) is rebuilt from the
//! snapshots, as is one that is missing or unreadable.
//!
//! They live under `<output>/rollups/<node>/<local date>.bin`. A run adds the capture it just
//! analysed to its day's rollup ([`land`]), from the snapshot already decoded; the digest builds
//! whatever is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::binfmt::{Reader, Writer};
use crate::history::catalogue;
use crate::history::metrics::readings;
use crate::model::{ContainerState, Health, Snapshot};

const MAGIC: &[u8] = b"patrol-rollup\n";

/// The layout of the payload; a file of another version is rebuilt, not read.
pub const FORMAT_VERSION: u32 = 3;

/// One capture of the day, as the digest needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRow {
    pub at: i64,
    /// The interval the capture recorded it was scheduled at.
    pub interval_s: Option<u64>,
    /// Every source asked failed: the node did not answer.
    pub dark: bool,
    /// Boot time (unix s), from the boot time or the uptime.
    pub boot: Option<i64>,
    /// A GPU reported both its utilisation and its memory.
    pub gpu_seen: bool,
    /// How many GPUs computed nothing while holding more than a fifth of their memory.
    pub gpu_idle: u32,
    /// Containers running, when the container source answered: a node that answers but runs
    /// nothing is not up.
    pub running: Option<u32>,
}

/// One series' readings of the day: the sums a week's mean and slope are exact from. `x` is
/// seconds since the rollup's `day_start`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesDay {
    pub n: u64,
    pub nulls: u64,
    pub min: f64,
    pub max: f64,
    pub first: (i64, f64),
    pub last: (i64, f64),
    pub sum_x: f64,
    pub sum_y: f64,
    pub sum_xx: f64,
    pub sum_xy: f64,
}

/// One container's trouble over a day (or, added up, a week).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trouble {
    pub unhealthy: u32,
    pub restarting: u32,
    pub oom_kills: u32,
}

impl Trouble {
    pub fn add(&mut self, other: &Trouble) {
        self.unhealthy += other.unhealthy;
        self.restarting += other.restarting;
        self.oom_kills += other.oom_kills;
    }
}

/// A node's local day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRollup {
    pub node: String,
    pub date: NaiveDate,
    /// Unix seconds of the day's local midnight: the origin of the series' `x`.
    pub day_start: i64,
    /// The capture times the archive listed for the day when this was built, readable or not.
    pub listed: Vec<i64>,
    pub captures: Vec<CaptureRow>,
    /// Per container in trouble during the day: how many captures saw it unhealthy or
    /// restarting, and the OOM kills the engine reported.
    pub trouble: BTreeMap<String, Trouble>,
    /// Per (entity, metric), the catalogue's digest metrics only.
    pub series: BTreeMap<(String, String), SeriesDay>,
    /// Container memory, point by point (the growers and their chart).
    pub mem_points: BTreeMap<String, Vec<(i64, f64)>>,
    /// When a container's memory read null (its chart marks them).
    pub mem_nulls: BTreeMap<String, Vec<i64>>,
    /// Every disk's used percentage, point by point (the disk chart).
    pub disk_pct: BTreeMap<String, Vec<(i64, f64)>>,
}

/// The local date of `at` in `tz`, and when that date began.
pub fn local_day(at: i64, tz: Tz) -> Option<(NaiveDate, i64)> {
    let date = DateTime::<Utc>::from_timestamp(at, 0)?
        .with_timezone(&tz)
        .date_naive();
    Some((date, day_start(date, tz)?))
}

fn day_start(date: NaiveDate, tz: Tz) -> Option<i64> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    // A zone whose clocks skip midnight starts the day at its first existing minute.
    (0..=180).find_map(|m| {
        (midnight + chrono::Duration::minutes(m))
            .and_local_timezone(tz)
            .earliest()
            .map(|t| t.timestamp())
    })
}

impl DayRollup {
    pub fn new(node: &str, date: NaiveDate, day_start: i64) -> DayRollup {
        DayRollup {
            node: node.to_string(),
            date,
            day_start,
            listed: Vec::new(),
            captures: Vec::new(),
            trouble: BTreeMap::new(),
            series: BTreeMap::new(),
            mem_points: BTreeMap::new(),
            mem_nulls: BTreeMap::new(),
            disk_pct: BTreeMap::new(),
        }
    }

    /// The rollup of `snapshots` (the day's readable captures, oldest first), built from the
    /// archive entries at `listed`.
    pub fn of(
        node: &str,
        (date, day_start): (NaiveDate, i64),
        listed: Vec<i64>,
        snapshots: &[Snapshot],
    ) -> DayRollup {
        let mut r = DayRollup::new(node, date, day_start);
        for s in snapshots {
            r.add(s);
        }
        r.listed = listed;
        r
    }

    /// Adds one capture (newer than every capture already in it).
    pub fn add(&mut self, s: &Snapshot) {
        let at = s.captured_at.timestamp();
        let mut row = CaptureRow {
            at,
            interval_s: s.interval_s,
            dark: s.is_dark(),
            boot: s.host.as_ref().and_then(|h| {
                h.boot_time
                    .map(|b| b.timestamp())
                    .or_else(|| h.uptime_s.map(|u| at - u as i64))
            }),
            gpu_seen: false,
            gpu_idle: 0,
            running: s.containers.as_ref().map(|cs| {
                u32::try_from(
                    cs.iter()
                        .filter(|c| c.state == ContainerState::Running)
                        .count(),
                )
                .unwrap_or(u32::MAX)
            }),
        };
        for g in s.gpus.iter().flatten() {
            if let (Some(u), Some(m)) = (g.util_pct, g.mem_used_pct) {
                row.gpu_seen = true;
                row.gpu_idle += u32::from(u < 1.0 && m > 20.0);
            }
        }
        self.captures.push(row);
        for c in s.containers.iter().flatten() {
            let t = Trouble {
                unhealthy: u32::from(c.health == Health::Unhealthy),
                restarting: u32::from(c.state == ContainerState::Restarting),
                oom_kills: c.oom_kills.unwrap_or(0),
            };
            if t != Trouble::default() {
                self.trouble.entry(c.name.clone()).or_default().add(&t);
            }
        }
        if let Some(h) = &s.host {
            for d in &h.disks {
                if let Some(p) = d.used_pct {
                    self.disk_pct
                        .entry(format!("disk:{}", d.mount))
                        .or_default()
                        .push((at, p));
                }
            }
        }
        let x = (at - self.day_start) as f64;
        for r in readings(s) {
            if !catalogue::lookup(r.metric).is_some_and(|d| d.digest) {
                continue;
            }
            let series = self
                .series
                .entry((r.entity.clone(), r.metric.to_string()))
                .or_default();
            let Some(v) = r.value else {
                series.nulls += 1;
                if r.metric == "mem_usage_bytes" {
                    self.mem_nulls.entry(r.entity.clone()).or_default().push(at);
                }
                continue;
            };
            if r.metric == "mem_usage_bytes" {
                self.mem_points
                    .entry(r.entity.clone())
                    .or_default()
                    .push((at, v));
            }
            if series.n == 0 {
                series.min = v;
                series.max = v;
                series.first = (at, v);
            }
            series.n += 1;
            series.min = series.min.min(v);
            series.max = series.max.max(v);
            series.last = (at, v);
            series.sum_x += x;
            series.sum_y += v;
            series.sum_xx += x * x;
            series.sum_xy += x * v;
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut w = Writer::default();
        w.str(&self.node);
        w.str(&self.date.to_string());
        w.i64(self.day_start);
        w.len(self.listed.len());
        for t in &self.listed {
            w.i64(*t);
        }
        w.len(self.captures.len());
        for c in &self.captures {
            w.i64(c.at);
            w.opt_i64(c.interval_s.map(|i| i as i64));
            w.bool(c.dark);
            w.opt_i64(c.boot);
            w.bool(c.gpu_seen);
            w.varint(u64::from(c.gpu_idle));
            w.opt_i64(c.running.map(i64::from));
        }
        w.len(self.trouble.len());
        for (name, t) in &self.trouble {
            w.str(name);
            for n in [t.unhealthy, t.restarting, t.oom_kills] {
                w.varint(u64::from(n));
            }
        }
        w.len(self.series.len());
        for ((entity, metric), s) in &self.series {
            w.str(entity);
            w.str(metric);
            w.u64(s.n);
            w.u64(s.nulls);
            for v in [s.min, s.max] {
                w.f64(v);
            }
            for (t, v) in [s.first, s.last] {
                w.i64(t);
                w.f64(v);
            }
            for v in [s.sum_x, s.sum_y, s.sum_xx, s.sum_xy] {
                w.f64(v);
            }
        }
        for points in [&self.mem_points, &self.disk_pct] {
            w.len(points.len());
            for (entity, pts) in points {
                w.str(entity);
                w.len(pts.len());
                for (t, v) in pts {
                    w.i64(*t);
                    w.f64(*v);
                }
            }
        }
        w.len(self.mem_nulls.len());
        for (entity, times) in &self.mem_nulls {
            w.str(entity);
            w.len(times.len());
            for t in times {
                w.i64(*t);
            }
        }
        crate::binfmt::pack(MAGIC, FORMAT_VERSION, &w.0, 3)
    }

    pub fn decode(bytes: &[u8]) -> Result<DayRollup, String> {
        let payload = crate::binfmt::unpack(bytes, MAGIC, FORMAT_VERSION, "a patrol rollup")?;
        let mut r = Reader {
            bytes: &payload,
            at: 0,
        };
        let node = r.str()?;
        let date_text = r.str()?;
        let date = NaiveDate::parse_from_str(&date_text, "%Y-%m-%d")
            .map_err(|_| format!("bad date {date_text:?}"))?;
        let mut out = DayRollup::new(&node, date, r.i64()?);
        for _ in 0..r.len(8)? {
            out.listed.push(r.i64()?);
        }
        for _ in 0..r.len(12)? {
            out.captures.push(CaptureRow {
                at: r.i64()?,
                interval_s: r.opt_i64()?.map(|i| i as u64),
                dark: r.bool()?,
                boot: r.opt_i64()?,
                gpu_seen: r.bool()?,
                gpu_idle: u32::try_from(r.varint()?).map_err(|_| "GPU count out of range")?,
                running: r
                    .opt_i64()?
                    .map(|n| u32::try_from(n).map_err(|_| "container count out of range"))
                    .transpose()?,
            });
        }
        for _ in 0..r.len(4)? {
            let name = r.str()?;
            let mut count =
                || u32::try_from(r.varint()?).map_err(|_| "a count out of range".to_string());
            let t = Trouble {
                unhealthy: count()?,
                restarting: count()?,
                oom_kills: count()?,
            };
            out.trouble.insert(name, t);
        }
        // Written in key order: collected and built at once rather than inserted one by one.
        let mut series = Vec::new();
        for _ in 0..r.len(2)? {
            let key = (r.str()?, r.str()?);
            let mut s = SeriesDay {
                n: r.u64()?,
                nulls: r.u64()?,
                min: r.f64()?,
                max: r.f64()?,
                ..SeriesDay::default()
            };
            s.first = (r.i64()?, r.f64()?);
            s.last = (r.i64()?, r.f64()?);
            s.sum_x = r.f64()?;
            s.sum_y = r.f64()?;
            s.sum_xx = r.f64()?;
            s.sum_xy = r.f64()?;
            series.push((key, s));
        }
        out.series = series.into_iter().collect();
        for points in [&mut out.mem_points, &mut out.disk_pct] {
            let mut list = Vec::new();
            for _ in 0..r.len(1)? {
                let entity = r.str()?;
                let n = r.len(16)?;
                let mut pts = Vec::with_capacity(n);
                for _ in 0..n {
                    pts.push((r.i64()?, r.f64()?));
                }
                list.push((entity, pts));
            }
            *points = list.into_iter().collect();
        }
        for _ in 0..r.len(1)? {
            let entity = r.str()?;
            let n = r.len(8)?;
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                times.push(r.i64()?);
            }
            out.mem_nulls.insert(entity, times);
        }
        if r.at != payload.len() {
            return Err(format!(
                "{} bytes left after the rollup",
                payload.len() - r.at
            ));
        }
        Ok(out)
    }
}

/// Where a fleet's rollups live, and how they are read and saved.
#[derive(Debug, Clone)]
pub struct RollupDir {
    pub dir: PathBuf,
    pub mode: crate::fsutil::Mode,
}

impl RollupDir {
    /// `<dir>/<node>/<date>.bin`; a node's name is kept to letters, digits, `.`, `-` and `_`,
    /// anything else written as `%XX`, so no name reaches outside its directory.
    pub fn path(&self, node: &str, date: NaiveDate) -> PathBuf {
        let mut safe = String::new();
        for b in node.bytes() {
            if b.is_ascii_alphanumeric()
                || b == b'-'
                || b == b'_'
                || (b == b'.' && !safe.is_empty())
            {
                safe.push(b as char);
            } else {
                safe.push_str(&format!("%{b:02X}"));
            }
        }
        self.dir.join(safe).join(format!("{date}.bin"))
    }

    /// The saved rollup of `node`'s `date`, when there is a readable one.
    pub fn read(&self, node: &str, date: NaiveDate) -> Option<DayRollup> {
        let path = self.path(node, date);
        let bytes = std::fs::read(&path).ok()?;
        match DayRollup::decode(&bytes) {
            Ok(r) if r.node == node && r.date == date => Some(r),
            Ok(_) => None,
            Err(e) => {
                tracing::info!("{}: {e}; rebuilding it from the snapshots", path.display());
                None
            }
        }
    }

    /// Saves a rollup; one that cannot be saved costs the next digest a rebuild, nothing else.
    pub fn save(&self, r: &DayRollup) {
        let path = self.path(&r.node, r.date);
        let result = r.encode().map_err(|e| e.to_string()).and_then(|bytes| {
            crate::fsutil::write_atomic(&path, &bytes, self.mode).map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!("{}: the daily rollup was not saved: {e}", path.display());
        }
    }
}

/// Adds each node's newest captures to its day's rollup, from `recent` (the snapshots a run
/// just analysed, oldest first per node) and `listing` (the archive's entries over at least
/// that day, sorted). Only a rollup that holds exactly the day's earlier captures grows; any
/// other (a capture missed, one added late) is left for the digest to rebuild.
pub fn land<'a>(
    rollups: &RollupDir,
    tz: Tz,
    listing: &[crate::store::Entry],
    recent: impl IntoIterator<Item = (&'a str, Vec<&'a Snapshot>)>,
) {
    // The listing split by node once: a filter per node would compare every name of a
    // thousand-node day a thousand times.
    let mut by_node: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in listing {
        by_node
            .entry(e.node.as_str())
            .or_default()
            .push(e.captured_at.timestamp());
    }
    for (node, snaps) in recent {
        let Some(newest) = snaps.last() else { continue };
        let Some((date, start)) = local_day(newest.captured_at.timestamp(), tz) else {
            continue;
        };
        let listed: Vec<i64> = by_node
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|t| local_day(*t, tz).is_some_and(|(d, _)| d == date))
            .collect();
        let mut rollup = rollups
            .read(node, date)
            .unwrap_or_else(|| DayRollup::new(node, date, start));
        if rollup.listed == listed || !listed.starts_with(&rollup.listed) {
            continue;
        }
        let missing = &listed[rollup.listed.len()..];
        let found: Vec<&Snapshot> = missing
            .iter()
            .filter_map(|t| {
                snaps
                    .iter()
                    .find(|s| s.captured_at.timestamp() == *t)
                    .copied()
            })
            .collect();
        if found.len() != missing.len() {
            continue;
        }
        for s in found {
            rollup.add(s);
        }
        rollup.listed = listed;
        rollups.save(&rollup);
    }
}

/// The rollups of `node`'s captures `entries` (sorted), one per local day: read where saved and
/// still matching the archive, else built from the snapshots and saved (when `rollups` is set).
pub fn node_days(
    archive: &crate::store::Archive,
    rollups: Option<&RollupDir>,
    tz: Tz,
    node: &str,
    entries: &[crate::store::Entry],
) -> Vec<DayRollup> {
    let mut by_day: BTreeMap<(NaiveDate, i64), Vec<crate::store::Entry>> = BTreeMap::new();
    for e in entries {
        if let Some(day) = local_day(e.captured_at.timestamp(), tz) {
            by_day.entry(day).or_default().push(e.clone());
        }
    }
    by_day
        .into_iter()
        .map(|(day, day_entries)| {
            let listed: Vec<i64> = day_entries
                .iter()
                .map(|e| e.captured_at.timestamp())
                .collect();
            if let Some(saved) = rollups
                .and_then(|r| r.read(node, day.0))
                .filter(|r| r.listed == listed)
            {
                return saved;
            }
            let (snaps, _) = archive.load_entries(&day_entries);
            let built = DayRollup::of(node, day, listed, &snaps);
            if let Some(r) = rollups {
                r.save(&built);
            }
            built
        })
        .collect()
}

/// The directory of a report output's rollups.
pub fn under(output: &Path, mode: crate::fsutil::Mode) -> RollupDir {
    RollupDir {
        dir: output.join("rollups"),
        mode,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn what_a_rollup_keeps_reads_back_the_same() {
        let date = NaiveDate::from_ymd_opt(2026, 2, 22).unwrap();
        let mut r = DayRollup::new("vk02", date, 1_771_729_200);
        r.listed = vec![1_771_729_200, 1_771_730_100];
        r.captures.push(CaptureRow {
            at: 1_771_729_200,
            interval_s: Some(900),
            dark: false,
            boot: Some(1_771_000_000),
            gpu_seen: true,
            gpu_idle: 1,
            running: Some(0),
        });
        r.trouble.insert(
            "intel-gpu-exporter".into(),
            Trouble {
                unhealthy: 0,
                restarting: 44,
                oom_kills: 2,
            },
        );
        r.mem_points
            .insert("container:db".into(), vec![(1_771_729_200, 1.5e9)]);
        r.mem_nulls
            .insert("container:db".into(), vec![1_771_730_100]);
        let back = DayRollup::decode(&r.encode().unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
