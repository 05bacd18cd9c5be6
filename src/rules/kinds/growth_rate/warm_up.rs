//! A climb back from a restart toward the level the subject held before it: a cache or a heap
//! warming up, which a leak rule must not call a leak, told apart from a leak that a restart
//! reset (no plateau before it), a slow climb under the old level, and a level near its limit.

/// A warm-up reaches its old plateau within this many seconds at its pace.
const WARM_UP_WITHIN_S: f64 = 6.0 * 3600.0;
/// How far back a plateau held before a run is looked for, in seconds.
const PLATEAU_LOOKBACK_S: i64 = 24 * 3600;
/// A plateau: this share of the readings before the run lie within [`PLATEAU_BAND`] of their
/// median.
const PLATEAU_SHARE: f64 = 0.75;
const PLATEAU_BAND: f64 = 0.1;

/// Whether a run is a subject warming back up to where it held before it restarted: the run
/// began at a restart (of the container, or a reboot) well below (under 0.8 of) a plateau the
/// readings of the day before it held (as far as the window holds them: at least eight; three
/// quarters of them within [`PLATEAU_BAND`] of their median, and those not trending: their
/// fitted change under half that band), has not yet passed that plateau by [`PLATEAU_BAND`],
/// gets there at its pace within [`WARM_UP_WITHIN_S`] (a warm-up takes hours; a slow leak
/// under the old level is not one), and that level is not within a tenth of its limit. A leak
/// that a restart reset climbed before it, so the day before holds no plateau, and it is not
/// excused.
pub(super) fn warming_back(
    node: &crate::history::NodeHistory,
    entity: &str,
    metric: &str,
    samples: &[(i64, f64)],
    slope: f64,
    limit: Option<f64>,
) -> bool {
    let (Some(&(start, first)), Some(&(_, last)), Some(series)) =
        (samples.first(), samples.last(), node.series(entity, metric))
    else {
        return false;
    };
    if slope <= 0.0 || !restarted_at(node, entity, start) {
        return false;
    }
    let sign = 1.0;
    let before: Vec<(i64, f64)> = series
        .points
        .iter()
        .filter(|pt| pt.at < start && pt.at >= start - PLATEAU_LOOKBACK_S)
        .filter_map(|pt| pt.value.map(|v| (pt.at, v * sign)))
        .collect();
    if before.len() < 8 {
        return false;
    }
    let mut values: Vec<f64> = before.iter().map(|r| r.1).collect();
    let mid = values.len() / 2;
    let plateau = *values.select_nth_unstable_by(mid, f64::total_cmp).1;
    if plateau <= 0.0 {
        return false;
    }
    let held: Vec<(i64, f64)> = before
        .into_iter()
        .filter(|(_, v)| (v - plateau).abs() <= PLATEAU_BAND * plateau)
        .collect();
    let level = match (crate::history::least_squares_slope(&held), held.first(), held.last()) {
        (Some(slope), Some(a), Some(b)) => {
            (slope * (b.0 - a.0) as f64).abs() < PLATEAU_BAND / 2.0 * plateau
        }
        _ => false,
    };
    let ceiling = (1.0 + PLATEAU_BAND) * plateau;
    let soon = (plateau - last).max(0.0) / slope <= WARM_UP_WITHIN_S;
    level
        && soon
        && limit.is_none_or(|l| ceiling < l)
        && held.len() as f64 >= PLATEAU_SHARE * values.len() as f64
        && first * sign < 0.8 * plateau
        && last * sign < ceiling
}

/// Whether a run that begins at `start` begins at a restart: the container's restart count
/// moved between the reading before it and this one, or the node's captures resume there after
/// a reboot or a gap.
fn restarted_at(node: &crate::history::NodeHistory, entity: &str, start: i64) -> bool {
    if node.segment_start() == start {
        return true;
    }
    node.series(entity, "restart_count").is_some_and(|s| {
        let before = s.points.iter().rev().find(|p| p.at < start).and_then(|p| p.value);
        let at = s.points.iter().find(|p| p.at == start).and_then(|p| p.value);
        matches!((before, at), (Some(b), Some(a)) if a != b)
    })
}
