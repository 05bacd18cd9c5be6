//! The history window: the recent captures of every node, turned into series keyed by
//! (node, entity, metric) that rules read.
//!
//! It is built incrementally: a capture is pushed once, its numbers appended to their series,
//! and captures older than the window span are evicted. A replay or a daemon therefore never
//! re-reads the archive; a one-shot `patrol run` loads just the window's files once.

pub mod catalogue;
pub mod metrics;
pub mod persist;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::Snapshot;

/// A boot time may wobble by this much between captures (clock steps, rounding) without being
/// taken for a reboot.
const BOOT_TIME_TOLERANCE_S: i64 = 120;

/// Whether a boot time that moved forward between two captures (capture time, uptime) is a
/// new boot. A boot time is the capture's wall-clock time less the uptime, so a wall-clock step
/// (NTP correcting a drifted clock) moves it too while the uptime keeps counting: that is not a
/// reboot. A new boot shows in the uptime itself: it went down, or it is shorter than the time
/// since the previous capture (a reboot during a long gap). Without uptimes on both sides, the
/// boot time's jump is all there is to go by.
pub fn rebooted(previous: Option<(i64, i64)>, current: Option<(i64, i64)>) -> bool {
    match (previous, current) {
        (Some((prev_at, prev_up)), Some((at, up))) => {
            up < prev_up || up < at.saturating_sub(prev_at)
        }
        _ => true,
    }
}

/// Full snapshots kept per node. Rules that compare whole snapshots (drift, reboot before/after)
/// need only the newest few; everything older lives on as series, which keeps a 24 h window of
/// a thousand nodes in tens of megabytes instead of gigabytes.
pub const RECENT_SNAPSHOTS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix seconds of the capture.
    pub at: i64,
    /// `None` when the source answered null.
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub points: Vec<Point>,
}

impl Series {
    pub fn last(&self) -> Option<&Point> {
        self.points.last()
    }

    /// Points with `at >= from`.
    pub fn since(&self, from: i64) -> &[Point] {
        let start = self.points.partition_point(|p| p.at < from);
        &self.points[start..]
    }
}

/// What the window knows about one node.
#[derive(Debug, Default)]
pub struct NodeHistory {
    pub node: String,
    pub role: Option<String>,
    /// The newest [`RECENT_SNAPSHOTS`] snapshots, oldest first.
    recent: VecDeque<Arc<Snapshot>>,
    /// Capture times (unix s) of every capture in the window.
    times: VecDeque<i64>,
    /// Boot time (unix s) per capture, when the host source answered.
    boots: VecDeque<Option<i64>>,
    series: HashMap<String, Vec<(&'static str, Series)>>,
    /// The reboots seen in the window, kept as captures arrive (every rule asks for them).
    reboots: Vec<(i64, i64)>,
    /// The boot time of the newest capture that reported one.
    last_boot: Option<i64>,
    /// The capture time and uptime of the newest capture that reported an uptime.
    last_uptime: Option<(i64, i64)>,
    /// Per source, the newest capture in the window where it answered: patrol's own health
    /// outlives the few full snapshots kept.
    last_ok: std::collections::BTreeMap<String, i64>,
}

impl NodeHistory {
    /// The newest few full snapshots, oldest first.
    pub fn recent(&self) -> impl DoubleEndedIterator<Item = &Snapshot> + ExactSizeIterator {
        self.recent.iter().map(|a| a.as_ref())
    }

    /// Per source, when it last answered in the window (unix s); a source that has not is absent.
    pub fn last_ok(&self) -> &std::collections::BTreeMap<String, i64> {
        &self.last_ok
    }

    /// Captures of this node in the window.
    pub fn capture_count(&self) -> usize {
        self.times.len()
    }

    pub fn latest(&self) -> Option<&Snapshot> {
        self.recent.back().map(|a| a.as_ref())
    }

    pub fn previous(&self) -> Option<&Snapshot> {
        let n = self.recent.len();
        if n >= 2 {
            self.recent.get(n - 2).map(|a| a.as_ref())
        } else {
            None
        }
    }

    pub fn latest_at(&self) -> Option<i64> {
        self.times.back().copied()
    }

    /// Capture times (unix s) of every capture in the window, oldest first.
    pub fn capture_times(&self) -> impl DoubleEndedIterator<Item = i64> + '_ {
        self.times.iter().copied()
    }

    /// Whether its newest capture belongs to the round taken at `round` (unix seconds): within
    /// half its capture interval of it. A node missing from the round is judged on a capture
    /// hours old otherwise.
    pub fn captured_in_round(&self, round: i64) -> bool {
        let half = self.capture_interval().unwrap_or(0).max(1) / 2;
        self.latest_at().is_some_and(|at| round - at <= half)
    }

    /// The spacing of this node's captures: the interval its newest snapshot records, else the
    /// median spacing of the captures in the window (older archives did not record it).
    pub fn capture_interval(&self) -> Option<i64> {
        if let Some(i) = self.latest().and_then(|s| s.interval_s) {
            return Some(i as i64);
        }
        let mut gaps: Vec<i64> = self
            .times
            .iter()
            .zip(self.times.iter().skip(1))
            .map(|(a, b)| b - a)
            .collect();
        gaps.sort_unstable();
        gaps.get(gaps.len() / 2).copied()
    }

    /// Where this node's unbroken run of captures starts: the run that ends at its newest
    /// capture with no gap longer than twice the capture interval. A rule that judges a
    /// duration cannot judge it across a gap: what happened in it was not seen.
    pub fn contiguous_since(&self) -> Option<i64> {
        let last = self.latest_at()?;
        let Some(interval) = self.capture_interval().filter(|i| *i > 0) else {
            return Some(last);
        };
        let mut start = last;
        for at in self.times.iter().rev().skip(1) {
            if start - at > 2 * interval {
                break;
            }
            start = *at;
        }
        Some(start)
    }

    /// Whether any series of the entity is in the window, and whether one of them has a
    /// reading from the node's newest capture: `None` when the entity has no series at all
    /// (a peer group, a clock, a watched key), which a caller judges by other means.
    pub fn entity_fresh(&self, entity: &str) -> Option<bool> {
        let series = self.series.get(entity)?;
        let latest = self.latest_at()?;
        Some(
            series
                .iter()
                .any(|(_, s)| s.last().is_some_and(|p| p.at == latest)),
        )
    }

    pub fn series(&self, entity: &str, metric: &str) -> Option<&Series> {
        self.series
            .get(entity)?
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, s)| s)
    }

    /// All series of `metric`, as (entity, series), sorted by entity for stable output.
    pub fn series_of(&self, metric: &str) -> Vec<(&str, &Series)> {
        let mut out: Vec<(&str, &Series)> = self
            .series
            .iter()
            .filter_map(|(entity, list)| {
                list.iter()
                    .find(|(m, _)| *m == metric)
                    .map(|(_, s)| (entity.as_str(), s))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// Other metrics of the same entity with a non-null value at the latest capture.
    pub fn siblings_reporting(&self, entity: &str, except: &str) -> Vec<(&'static str, f64)> {
        let Some(latest) = self.latest_at() else {
            return Vec::new();
        };
        let mut out: Vec<(&'static str, f64)> = self
            .series
            .get(entity)
            .into_iter()
            .flatten()
            .filter(|(m, _)| *m != except)
            .filter_map(|(m, s)| match s.last() {
                Some(Point { at, value: Some(v) }) if *at == latest => Some((*m, *v)),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// Other metrics of the same entity that are null at the latest capture.
    pub fn siblings_null(&self, entity: &str, except: &str) -> Vec<&'static str> {
        let Some(latest) = self.latest_at() else {
            return Vec::new();
        };
        let mut out: Vec<&'static str> = self
            .series
            .get(entity)
            .into_iter()
            .flatten()
            .filter(|(m, s)| {
                *m != except
                    && s.last()
                        .is_some_and(|p| p.at == latest && p.value.is_none())
            })
            .map(|(m, _)| *m)
            .collect();
        out.sort_unstable();
        out
    }

    /// Capture times (unix s) at which a reboot had happened since the capture before (the
    /// first capture of each new boot), with the new boot time.
    pub fn reboots(&self) -> &[(i64, i64)] {
        &self.reboots
    }

    fn evict_before(&mut self, cutoff: i64) {
        while self.times.front().is_some_and(|t| *t < cutoff) {
            self.times.pop_front();
            self.boots.pop_front();
        }
        while self
            .recent
            .front()
            .is_some_and(|s| s.captured_at.timestamp() < cutoff)
        {
            self.recent.pop_front();
        }
        // What is left is what a window built from these captures alone would know: a reboot
        // seen at the oldest capture left was seen against one now gone, and a boot or uptime
        // last read from a capture now gone is not known.
        let oldest = self.times.front().copied();
        self.reboots
            .retain(|(at, _)| *at >= cutoff && Some(*at) != oldest);
        if self.boots.iter().all(Option::is_none) {
            self.last_boot = None;
        }
        if self.last_uptime.is_some_and(|(at, _)| at < cutoff) {
            self.last_uptime = None;
        }
        self.last_ok.retain(|_, at| *at >= cutoff);
        self.series.retain(|_, list| {
            list.retain_mut(|(_, s)| {
                let start = s.points.partition_point(|p| p.at < cutoff);
                s.points.drain(..start);
                !s.points.is_empty()
            });
            !list.is_empty()
        });
    }

    /// The boot time (unix s) in force at the latest capture that reported one.
    pub fn current_boot(&self) -> Option<i64> {
        self.boots.iter().rev().flatten().next().copied()
    }

    /// Start of the current boot as seen by the window: series points before it belong to an
    /// earlier boot and must not be joined to later ones.
    pub fn segment_start(&self) -> i64 {
        self.reboots().last().map(|(at, _)| *at).unwrap_or(i64::MIN)
    }
}

/// A template that a log stream read whole (not cut short, no line past the template caps,
/// over at least half a capture interval) did not show had no line in it: its count at this
/// capture is 0, not unknown. Without it a FATAL that stopped was never seen to stop, and its
/// finding never resolved. Only templates with a line still in the window are filled, so one
/// long gone is evicted like any series.
fn zero_absent_templates(node: &mut NodeHistory, snapshot: &Snapshot, at: i64) {
    // A read much shorter than the capture interval (a capture taken by hand 45 s after the
    // last) holds no line of a 5-minute schedule and says nothing about it.
    let interval = snapshot
        .interval_s
        .map(|i| i as i64)
        .or_else(|| node.capture_interval())
        .unwrap_or(0);
    let read_whole: Vec<&str> = snapshot
        .logs
        .iter()
        .filter(|l| l.truncated.is_none() && l.lines_dropped == 0)
        .filter(|l| 2 * (l.window_end - l.window_start).num_seconds() >= interval)
        .map(|l| l.source.as_str())
        .collect();
    if read_whole.is_empty() {
        return;
    }
    for (entity, list) in node.series.iter_mut() {
        let Some((source, _)) = entity
            .strip_prefix("logtpl:")
            .and_then(|rest| rest.split_once('|'))
        else {
            continue;
        };
        if !read_whole.contains(&source) {
            continue;
        }
        if let Some((_, s)) = list.iter_mut().find(|(m, _)| *m == "count")
            && s.points.last().is_some_and(|p| p.at < at)
            && s.points
                .iter()
                .rev()
                .any(|p| p.value.is_some_and(|v| v > 0.0))
        {
            s.points.push(Point {
                at,
                value: Some(0.0),
            });
        }
    }
}

#[derive(Debug)]
pub struct Window {
    span_s: i64,
    nodes: BTreeMap<String, NodeHistory>,
}

impl Window {
    pub fn new(span: chrono::Duration) -> Window {
        Window {
            span_s: span.num_seconds(),
            nodes: BTreeMap::new(),
        }
    }

    pub fn span_s(&self) -> i64 {
        self.span_s
    }

    /// Adds one capture. Captures of a node must arrive oldest first; an older or duplicate one
    /// is ignored (returns false).
    pub fn push(&mut self, snapshot: Snapshot) -> bool {
        let at = snapshot.captured_at.timestamp();
        let node = self
            .nodes
            .entry(snapshot.node.clone())
            .or_insert_with(|| NodeHistory {
                node: snapshot.node.clone(),
                ..NodeHistory::default()
            });
        if node.latest_at().is_some_and(|latest| at <= latest) {
            return false;
        }
        if snapshot.role.is_some() {
            node.role = snapshot.role.clone();
        }
        for r in metrics::readings(&snapshot) {
            let list = match node.series.get_mut(r.entity.as_str()) {
                Some(list) => list,
                None => node.series.entry(r.entity).or_default(),
            };
            let point = Point { at, value: r.value };
            match list.iter_mut().find(|(m, _)| *m == r.metric) {
                Some((_, s)) => s.points.push(point),
                None => list.push((
                    r.metric,
                    Series {
                        points: vec![point],
                    },
                )),
            }
        }
        zero_absent_templates(node, &snapshot, at);
        let boot = snapshot.host.as_ref().and_then(|h| {
            h.boot_time.map(|b| b.timestamp()).or_else(|| {
                h.uptime_s
                    .map(|u| at - i64::try_from(u).unwrap_or(i64::MAX / 2))
            })
        });
        let uptime = snapshot
            .host
            .as_ref()
            .and_then(|h| h.uptime_s)
            .and_then(|u| i64::try_from(u).ok());
        if let Some(b) = boot {
            if let Some(prev) = node.last_boot
                && b.saturating_sub(prev) > BOOT_TIME_TOLERANCE_S
                && rebooted(node.last_uptime, uptime.map(|u| (at, u)))
            {
                node.reboots.push((at, b));
            }
            node.last_boot = Some(b);
        }
        if let Some(u) = uptime {
            node.last_uptime = Some((at, u));
        }
        for source in snapshot.sources.iter().filter(|s| s.ok) {
            node.last_ok.insert(source.name.clone(), at);
        }
        node.boots.push_back(boot);
        node.times.push_back(at);
        node.recent.push_back(Arc::new(snapshot));
        if node.recent.len() > RECENT_SNAPSHOTS {
            node.recent.pop_front();
        }
        // Only this node's old data is dropped here, so a push costs the same for 3 nodes or
        // 3,000; nodes that stopped reporting are dropped by `evict_before`.
        let cutoff = at - self.span_s;
        if node.times.front().is_some_and(|t| *t < cutoff) {
            node.evict_before(cutoff);
        }
        true
    }

    /// Drops captures and points older than `cutoff` (unix s) from every node, and nodes left
    /// with nothing.
    pub fn evict_before(&mut self, cutoff: i64) {
        for node in self.nodes.values_mut() {
            node.evict_before(cutoff);
        }
        self.nodes.retain(|_, n| !n.times.is_empty());
    }

    /// Puts back the full snapshots of a window read from a saved file: each node keeps the
    /// newest [`RECENT_SNAPSHOTS`] of those given that are captures it holds, oldest first.
    pub fn restore_recent(&mut self, snapshots: impl IntoIterator<Item = Snapshot>) {
        for s in snapshots {
            let Some(node) = self.nodes.get_mut(&s.node) else {
                continue;
            };
            let at = s.captured_at.timestamp();
            if node.times.binary_search(&at).is_err()
                || node.recent.iter().any(|r| r.captured_at.timestamp() == at)
            {
                continue;
            }
            let place = node
                .recent
                .partition_point(|r| r.captured_at.timestamp() < at);
            node.recent.insert(place, Arc::new(s));
            while node.recent.len() > RECENT_SNAPSHOTS {
                node.recent.pop_front();
            }
        }
    }

    /// The newest capture time (unix s) of every node, by name.
    pub fn latest_by_node(&self) -> impl Iterator<Item = (&str, i64)> {
        self.nodes
            .iter()
            .filter_map(|(name, n)| n.latest_at().map(|at| (name.as_str(), at)))
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeHistory> {
        self.nodes.values()
    }

    pub fn node(&self, name: &str) -> Option<&NodeHistory> {
        self.nodes.get(name)
    }

    /// Time of the newest capture of any node.
    pub fn latest_at(&self) -> Option<DateTime<Utc>> {
        self.nodes
            .values()
            .filter_map(|n| n.latest().map(|s| s.captured_at))
            .max()
    }

    /// The latest reading of one series: `None` when the node's latest capture has no reading
    /// for it (could not check), `Some(None)` for a null.
    pub fn current(&self, node: &str, entity: &str, metric: &str) -> Option<Option<f64>> {
        let n = self.nodes.get(node)?;
        let latest = n.latest_at()?;
        let p = n.series(entity, metric)?.last()?;
        (p.at == latest).then_some(p.value)
    }
}

/// The least-squares slope of readings `(unix seconds, value)`, per second; `None` when they
/// span no time.
pub fn least_squares_slope(points: &[(i64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let t0 = points.first()?.0;
    let mx = points.iter().map(|p| (p.0 - t0) as f64).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(t, v) in points {
        let x = (t - t0) as f64 - mx;
        sxx += x * x;
        sxy += x * (v - my);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Gpu, Host};
    use chrono::TimeZone;

    #[test]
    fn a_sources_last_success_is_kept_past_the_full_snapshots_and_forgotten_past_the_window() {
        let mut window = Window::new(chrono::Duration::hours(2));
        let at = |m: i64| {
            Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap() + chrono::Duration::minutes(m)
        };
        let capture = |m: i64, docker_ok: bool| {
            let mut s = Snapshot::new("t", "vk01", at(m));
            s.sources.push(crate::model::SourceStatus::ok("host", 1));
            s.sources.push(if docker_ok {
                crate::model::SourceStatus::ok("docker", 1)
            } else {
                crate::model::SourceStatus::failed("docker", "refused", 1)
            });
            s
        };
        window.push(capture(0, true));
        // More failing captures than full snapshots are kept: the success is still known.
        for m in 1..=(RECENT_SNAPSHOTS as i64 + 2) {
            window.push(capture(m * 15, false));
        }
        let node = window.node("vk01").unwrap();
        assert_eq!(node.last_ok().get("docker"), Some(&at(0).timestamp()));
        assert_eq!(node.last_ok().get("host"), Some(&at(90).timestamp()));
        // Past the window, the old success is forgotten rather than shown as the last one.
        window.push(capture(200, false));
        let node = window.node("vk01").unwrap();
        assert_eq!(node.last_ok().get("docker"), None);
        assert_eq!(node.last_ok().get("host"), Some(&at(200).timestamp()));
    }

    fn snap(minute: i64, uptime: u64, temp: Option<f64>) -> Snapshot {
        let at =
            Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute);
        let mut s = Snapshot::new("t", "vk01", at);
        s.host = Some(Host {
            uptime_s: Some(uptime),
            ..Host::default()
        });
        s.gpus = Some(vec![Gpu {
            index: 0,
            name: "gpu".into(),
            util_pct: Some(0.0),
            mem_used_pct: None,
            mem_used_bytes: None,
            mem_total_bytes: None,
            temp_c: temp,
            fan_pct: None,
            exporter: None,
        }]);
        s
    }

    #[test]
    fn builds_series_keeps_nulls_and_evicts() {
        let mut w = Window::new(chrono::Duration::minutes(40));
        w.push(snap(0, 10_000, Some(24.0)));
        w.push(snap(15, 10_900, Some(18.0)));
        w.push(snap(30, 11_800, None));
        let n = w.node("vk01").unwrap();
        let s = n.series("gpu:0", "temp_c").unwrap();
        assert_eq!(s.points.len(), 3);
        assert_eq!(w.current("vk01", "gpu:0", "temp_c"), Some(None));
        assert_eq!(
            n.siblings_reporting("gpu:0", "temp_c"),
            vec![("util_pct", 0.0)]
        );
        w.push(snap(45, 12_700, Some(27.0)));
        let n = w.node("vk01").unwrap();
        assert_eq!(
            n.capture_count(),
            3,
            "the 0-minute capture left the 40-minute window"
        );
        assert_eq!(n.series("gpu:0", "temp_c").unwrap().points.len(), 3);
        assert!(
            !w.push(snap(45, 12_700, None)),
            "a duplicate capture is ignored"
        );
    }

    #[test]
    fn reboot_is_a_boot_time_jump() {
        let mut w = Window::new(chrono::Duration::hours(6));
        w.push(snap(0, 10_000, None));
        w.push(snap(15, 10_900, None));
        w.push(snap(30, 300, None));
        w.push(snap(45, 1_200, None));
        let n = w.node("vk01").unwrap();
        let reboots = n.reboots();
        assert_eq!(reboots.len(), 1);
        assert_eq!(
            n.segment_start(),
            n.recent().nth(2).unwrap().captured_at.timestamp()
        );
    }

    #[test]
    fn a_wall_clock_step_is_not_a_reboot() {
        let mut w = Window::new(chrono::Duration::hours(6));
        let with_boot = |minute: i64, uptime: u64| {
            let mut s = snap(minute, uptime, None);
            if let Some(h) = s.host.as_mut() {
                h.boot_time = Some(s.captured_at - chrono::Duration::seconds(uptime as i64));
            }
            s
        };
        w.push(with_boot(0, 10_000));
        w.push(with_boot(15, 10_900));
        // The clock is stepped an hour forward: the capture is stamped 75 min after the one
        // before, while the host was up 15 min more.
        w.push(with_boot(90, 11_800));
        w.push(with_boot(105, 12_700));
        assert!(w.node("vk01").unwrap().reboots().is_empty());
        // A real reboot: the uptime went down.
        w.push(with_boot(120, 200));
        assert_eq!(w.node("vk01").unwrap().reboots().len(), 1);
        // A reboot during a long gap: the uptime grew, but is shorter than the gap.
        w.push(with_boot(300, 5_000));
        assert_eq!(w.node("vk01").unwrap().reboots().len(), 2);
    }
}
