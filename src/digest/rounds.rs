//! Missed capture rounds: how many captures a week should have held, from the interval each
//! capture was scheduled at, against the captures it holds.
//!
//! A scheduled slot is "missed" when no capture came within half an interval of it. Slots follow
//! the schedule of the capture before them (the interval it recorded), so a schedule changed
//! mid-week is followed, and time before a node's first capture ever is not counted: a node added
//! on Wednesday missed nothing on Monday. The result adds up by construction: expected rounds are
//! the captures present plus the missed slots, and each stands for one interval of time, which is
//! also what a capture stands for in per-capture durations (GPU idle hours).

use serde::Serialize;

/// Where the interval came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalSource {
    /// Written in the snapshots (or the archive's metadata) when they were captured.
    Recorded,
    /// Older captures that do not record it: the median spacing of the node's captures.
    Inferred,
}

/// One node's (or the fleet's) capture rounds of a week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// The interval of the newest capture on the schedule, seconds.
    pub interval_s: u64,
    pub source: IntervalSource,
    /// Captures on the schedule: each fills one slot.
    pub captured: usize,
    /// Captures within half an interval of the one before (a run by hand): they fill no slot.
    pub extra: usize,
    pub missed: usize,
    /// `captured + missed`: the slots of the schedule since the first capture.
    pub expected: usize,
    /// Per capture: whether it filled a slot (per-capture durations count only those).
    #[serde(skip)]
    pub fills: Vec<bool>,
}

/// The interval each capture stands for: its recorded one, else `fallback` (the archive's
/// metadata), else the median spacing of the captures. `None` when none of these exists (a
/// single capture that records nothing).
pub fn intervals(
    times: &[i64],
    recorded: &[Option<u64>],
    fallback: Option<u64>,
) -> Option<(Vec<u64>, IntervalSource)> {
    let mut source = IntervalSource::Recorded;
    let fill = match fallback.filter(|i| *i > 0) {
        Some(i) => Some(i),
        None if recorded.iter().any(|r| r.is_none_or(|i| i == 0)) => {
            source = IntervalSource::Inferred;
            median_spacing(times)
        }
        None => None,
    };
    let out: Vec<u64> = recorded
        .iter()
        .map(|r| r.filter(|i| *i > 0).or(fill))
        .collect::<Option<_>>()?;
    Some((out, source))
}

/// The median gap between consecutive captures (rounded to the second), or `None` with fewer
/// than two distinct times.
pub fn median_spacing(times: &[i64]) -> Option<u64> {
    let mut gaps: Vec<i64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let mid = gaps.len() / 2;
    let median = if gaps.len() % 2 == 1 {
        gaps[mid] as f64
    } else {
        (gaps[mid - 1] + gaps[mid]) as f64 / 2.0
    };
    Some((median.round() as u64).max(1))
}

/// Slots `from + k·interval` (k ≥ 1) missed before `next`: those not followed by a capture within
/// half an interval, and not before `not_before`.
fn missed_between(from: i64, interval: u64, next: i64, not_before: i64) -> usize {
    let i = interval.max(1) as f64;
    // The last slot k with from + k·i + i/2 ≤ next.
    let k_hi = ((next - from) as f64 / i - 0.5).floor();
    let k_lo = (((not_before - from) as f64) / i).ceil().max(1.0);
    if k_hi < k_lo {
        0
    } else {
        (k_hi - k_lo + 1.0) as usize
    }
}

/// The week's rounds of the captures at `times` (ascending, within `[week_start, end)`), each
/// scheduled at `intervals[i]` (from [`intervals`]). `previous` is the node's capture before the
/// week, with its interval, when there was one: the slots it left unfilled inside the week count.
/// `now` keeps slots that are not yet overdue out of the current week.
pub fn coverage(
    times: &[i64],
    intervals: &[u64],
    source: IntervalSource,
    previous: Option<(i64, u64)>,
    week_start: i64,
    end: i64,
    now: i64,
) -> Option<Coverage> {
    let first = *times.first()?;
    let mut missed = 0;
    if let Some((t, i)) = previous {
        missed += missed_between(t, i, first, week_start);
    }
    // The capture the schedule runs from: the last one that filled a slot.
    let (mut anchor, mut interval) = (first, *intervals.first()?);
    let (mut captured, mut extra) = (1, 0);
    let mut fills = vec![true; times.len()];
    for (k, (&t, &i)) in times.iter().zip(intervals).enumerate().skip(1) {
        if ((t - anchor) as f64) < interval as f64 / 2.0 {
            extra += 1;
            fills[k] = false;
            continue;
        }
        missed += missed_between(anchor, interval, t, anchor);
        captured += 1;
        (anchor, interval) = (t, i);
    }
    // The tail: slots before the week's end that are overdue by half an interval by now.
    let i = interval.max(1) as f64;
    let before_end = ((end - anchor) as f64 / i).ceil() - 1.0;
    let overdue = ((now - anchor) as f64 / i - 0.5).floor();
    missed += before_end.min(overdue).max(0.0) as usize;
    Some(Coverage {
        interval_s: interval,
        source,
        captured,
        extra,
        missed,
        expected: captured + missed,
        fills,
    })
}

/// Hours that captures stand for, each one its own interval: GPU idle hours are the idle
/// captures' share of the week.
pub fn hours(intervals: impl IntoIterator<Item = u64>) -> f64 {
    intervals.into_iter().map(|i| i as f64).sum::<f64>() / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WEEK: i64 = 7 * 86400;

    #[test]
    fn a_gap_of_an_hour_at_15_minutes_is_three_missed_rounds() {
        // 1874 is a run by hand 74 s after a round: it fills no slot.
        let times = [0, 900, 1800, 1874, 5400, 6300];
        let c = coverage(
            &times,
            &[900; 6],
            IntervalSource::Recorded,
            None,
            0,
            7200,
            WEEK,
        )
        .unwrap();
        // 2700, 3600, 4500 missed; 7200 is the next week's.
        assert_eq!((c.captured, c.extra, c.missed, c.expected), (5, 1, 3, 8));
        assert_eq!(c.fills, [true, true, true, false, true, true]);
    }

    #[test]
    fn a_slot_not_yet_overdue_is_not_missed() {
        let c = coverage(&[0], &[600], IntervalSource::Recorded, None, 0, WEEK, 800).unwrap();
        assert_eq!(c.missed, 0, "the slot at 600 is only 200 s old");
        let c = coverage(&[0], &[600], IntervalSource::Recorded, None, 0, WEEK, 900).unwrap();
        assert_eq!(c.missed, 1);
    }

    #[test]
    fn the_previous_capture_counts_the_weeks_first_slots_only() {
        // Previous capture 1000 s before the week; slots at -400, 200, 800, 1400; first at 2000.
        let c = coverage(
            &[2000],
            &[600],
            IntervalSource::Recorded,
            Some((-1000, 600)),
            0,
            2100,
            WEEK,
        )
        .unwrap();
        assert_eq!(c.missed, 3, "200, 800 and 1400, not -400");
    }

    #[test]
    fn old_captures_infer_the_median_spacing_and_say_so() {
        let times = [0, 300, 600, 3600, 3900];
        let (iv, source) = intervals(&times, &[None; 5], None).unwrap();
        assert_eq!((iv[0], source), (300, IntervalSource::Inferred));
        let (iv, source) = intervals(&times, &[None; 5], Some(600)).unwrap();
        assert_eq!((iv[4], source), (600, IntervalSource::Recorded));
        assert_eq!(intervals(&[0], &[None], None), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Captures on a schedule of any interval, with any slots skipped and each capture late
        /// by up to a quarter interval: the missed rounds are exactly the skipped slots after the
        /// first capture, captured + missed rounds span the time since the first capture, and
        /// GPU idle hours are the idle captures' intervals, never more than the captured time.
        #[test]
        fn missed_rounds_and_idle_hours_add_up(
            interval in 60u64..86_400,
            kept in proptest::collection::vec(any::<bool>(), 1..400),
            late in proptest::collection::vec(0.0f64..0.25, 400),
            idle in proptest::collection::vec(any::<bool>(), 400),
            from_meta in any::<bool>(),
        ) {
            let i = interval as i64;
            let slots: Vec<usize> = (0..kept.len()).filter(|k| kept[*k]).collect();
            prop_assume!(!slots.is_empty());
            let times: Vec<i64> = slots
                .iter()
                .map(|k| *k as i64 * i + (late[*k] * interval as f64) as i64)
                .collect();
            let end = kept.len() as i64 * i;
            let recorded: Vec<Option<u64>> =
                times.iter().map(|_| (!from_meta).then_some(interval)).collect();
            let fallback = from_meta.then_some(interval);
            let (iv, _) = intervals(&times, &recorded, fallback).unwrap();
            let c = coverage(&times, &iv, IntervalSource::Recorded, None, 0, end, end + i)
                .unwrap();
            let first = slots[0];
            let skipped = (first..kept.len()).filter(|k| !kept[*k]).count();
            prop_assert_eq!(c.missed, skipped);
            prop_assert_eq!(c.captured + c.missed, c.expected);
            prop_assert_eq!(c.expected, kept.len() - first);
            let span_hours = (end - first as i64 * i) as f64 / 3600.0;
            let covered = hours(iv.iter().copied()) + c.missed as f64 * interval as f64 / 3600.0;
            prop_assert!((covered - span_hours).abs() < 1e-6);
            let idle_hours = hours(
                slots.iter().zip(&iv).filter(|(k, _)| idle[**k]).map(|(_, v)| *v),
            );
            let idle_count = slots.iter().filter(|k| idle[**k]).count();
            prop_assert!((idle_hours - idle_count as f64 * interval as f64 / 3600.0).abs() < 1e-6);
            prop_assert!(idle_hours <= hours(iv.iter().copied()) + 1e-9);
        }
    }
}
