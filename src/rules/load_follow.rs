//! Whether a move of memory is explained by the entity's own load. Memory that rises while a
//! container's CPU is above its quiet level (traffic through the working day, a nightly job) is
//! the memory its work needs: it is a leak only if it stays once the load is back down, so while
//! the load is up a climb is no verdict either way. A jump or a drop between two captures that
//! the CPU made too (a job starting, streaming ending) is the work starting or ending. Without
//! this, every service whose load follows the day opens a "creep" each morning of a history that
//! has not yet seen a night, and every nightly job is a "leak" and two "jumps".

use super::kinds::ParamReader;
use crate::history::Point;
use crate::history::metrics::KNOWN_METRICS;
use crate::tomlread::Ctx;

/// The `load` parameter: a metric of the same entity that measures its work.
pub(crate) fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<String> {
    let m = p.fields.string(ctx, "load", false)?;
    if KNOWN_METRICS.contains(&m.get_ref().as_str()) {
        return Some(m.into_inner());
    }
    ctx.report(
        m.span(),
        format!(
            "{}: `load` must be a metric of the same entity (such as \"cpu_cores\"), not `{}`{}",
            p.fields.what,
            m.get_ref(),
            crate::error::did_you_mean(m.get_ref(), KNOWN_METRICS)
        ),
    );
    None
}

/// How far above its quiet level the load must be to count as up: a fifth of that level.
const MIN_LOAD_RISE: f64 = 0.2;

/// And by how many of its typical steps (the median step between captures), so that noise on
/// a small load (0.02 → 0.03 cores) does not count.
const NOISE_STEPS: f64 = 3.0;

/// The median of three values.
fn median3(a: f64, b: f64, c: f64) -> f64 {
    a.max(b).min(a.min(b).max(c))
}

/// The load's readings (value only) up to `at`, oldest first.
fn readings_until(points: &[Point], at: i64) -> Vec<f64> {
    points
        .iter()
        .take_while(|p| p.at <= at)
        .filter_map(|p| p.value)
        .collect()
}

/// The median absolute step between consecutive readings: the series' jitter.
pub(crate) fn typical_step(values: &[f64]) -> f64 {
    let mut steps: Vec<f64> = values.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    if steps.is_empty() {
        return 0.0;
    }
    let mid = steps.len() / 2;
    *steps.select_nth_unstable_by(mid, f64::total_cmp).1
}

/// Whether `to` is above `from` by [`MIN_LOAD_RISE`] of `from` and [`NOISE_STEPS`] steps.
fn clearly_above(to: f64, from: f64, step: f64) -> bool {
    let rise = to - from;
    rise > 0.0 && rise >= MIN_LOAD_RISE * from.abs() && rise >= NOISE_STEPS * step
}

/// Whether the load is up at `now`: the median of its last three readings is clearly above its
/// quiet level, the lowest median of three consecutive readings it held in the series (the
/// window). At least six readings are needed to tell. Every container's load is asked at every
/// analysis: a series whose newest level is not a fifth above its quiet one is settled in one
/// pass, without allocating.
pub(crate) fn load_up(points: &[Point], now: i64) -> bool {
    let upto = &points[..points.partition_point(|p| p.at <= now)];
    let (mut count, mut quiet) = (0usize, f64::INFINITY);
    let mut last3 = [0.0f64; 3];
    for v in upto.iter().filter_map(|p| p.value) {
        last3 = [last3[1], last3[2], v];
        count += 1;
        if count >= 3 {
            quiet = quiet.min(median3(last3[0], last3[1], last3[2]));
        }
    }
    if count < 6 {
        return false;
    }
    let current = median3(last3[0], last3[1], last3[2]);
    let rise = current - quiet;
    if rise <= 0.0 || rise < MIN_LOAD_RISE * quiet.abs() {
        return false;
    }
    clearly_above(current, quiet, typical_step(&readings_until(points, now)))
}

/// The weakest correlation between readings and their load that counts as moving with it.
const MIN_CORRELATION: f64 = 0.6;

/// Whether `readings` move with the load read at the same captures: they correlate by at least
/// [`MIN_CORRELATION`], and the load itself moved over them (its least-squares change across
/// them, or for `swings` its range) by at least [`MIN_LOAD_RISE`] of its mean level; noise on a
/// flat load correlates with nothing. Fewer than `min_samples` paired readings are no evidence.
pub(crate) fn tracks_load(
    points: &[Point],
    readings: &[(i64, f64)],
    min_samples: usize,
    swings: bool,
) -> bool {
    let pairs: Vec<(f64, f64, f64)> = readings
        .iter()
        .filter_map(|&(at, v)| {
            let i = points.binary_search_by_key(&at, |p| p.at).ok()?;
            points[i].value.map(|l| (at as f64, v, l))
        })
        .collect();
    if pairs.len() < min_samples.max(3) {
        return false;
    }
    let n = pairs.len() as f64;
    let mean = |f: fn(&(f64, f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / n;
    let (mt, mv, ml) = (mean(|p| p.0), mean(|p| p.1), mean(|p| p.2));
    let (mut svv, mut sll, mut svl, mut stt, mut stl, mut stv) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for &(t, v, l) in &pairs {
        let (dt, dv, dl) = (t - mt, v - mv, l - ml);
        svv += dv * dv;
        sll += dl * dl;
        svl += dv * dl;
        stt += dt * dt;
        stl += dt * dl;
        stv += dt * dv;
    }
    if svv <= 0.0 || sll <= 0.0 || stt <= 0.0 || ml.abs() <= f64::EPSILON {
        return false;
    }
    let correlation = svl / (svv * sll).sqrt();
    let moved = if swings {
        let (lo, hi) = pairs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.2), hi.max(p.2))
            });
        hi - lo
    } else {
        stl / stt * (pairs[pairs.len() - 1].0 - pairs[0].0)
    };
    // Memory that grows with each player or request rises in proportion to the work: a load
    // that rose by half as much, relative to its level, as the readings did explains them as
    // well as one that rose by a fifth.
    let share = if swings || mv.abs() <= f64::EPSILON {
        MIN_LOAD_RISE
    } else {
        let readings_rose = stv / stt * (pairs[pairs.len() - 1].0 - pairs[0].0) / mv.abs();
        MIN_LOAD_RISE.min(readings_rose / 2.0)
    };
    // A band moves with its work whichever way it follows it: memory a job holds while it
    // runs, or memory an evaluation phase loads while the training work eases off.
    let follows = if swings {
        correlation.abs()
    } else {
        correlation
    };
    follows >= MIN_CORRELATION && share > 0.0 && moved >= share * ml.abs()
}

/// Whether the entity's load explains a change of memory between the captures at `before` and
/// `after`: a rise (`sign` > 0) while the load is up at `after` (a job or the day's traffic is
/// running) or as it clearly rises between the two, a fall as the load clearly comes down from
/// `before`, or from the capture before it, to `after` (whether or not a lower level was seen
/// before: a training run's first pause is the work's).
pub(crate) fn load_explains(points: &[Point], before: i64, after: i64, sign: f64) -> bool {
    let at = |t: i64| {
        points
            .binary_search_by_key(&t, |p| p.at)
            .ok()
            .and_then(|i| points[i].value)
    };
    let moved = |from: Option<f64>, to: Option<f64>| match (from, to) {
        (Some(f), Some(t)) => clearly_above(t, f, typical_step(&readings_until(points, before))),
        _ => false,
    };
    if sign > 0.0 {
        load_up(points, after) || moved(at(before), at(after))
    } else {
        // Memory is given back a little after the work ends: a load that fell in the capture
        // before the drop explains it as well as one that fell with it.
        let earlier = points
            .partition_point(|p| p.at < before)
            .checked_sub(1)
            .map(|i| points[i].at);
        [Some(before), earlier]
            .into_iter()
            .flatten()
            .any(|from| moved(at(after), at(from)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, l)| Point {
                at: i as i64 * 900,
                value: Some(*l),
            })
            .collect()
    }

    fn last(points: &[Point]) -> i64 {
        points.last().map_or(0, |p| p.at)
    }

    #[test]
    fn a_load_climbing_through_the_day_is_up() {
        let cpu = load(&(0..16).map(|i| 0.3 + 0.02 * i as f64).collect::<Vec<_>>());
        assert!(load_up(&cpu, last(&cpu)));
    }

    #[test]
    fn a_flat_noisy_load_is_not() {
        let cpu = load(
            &(0..16)
                .map(|i| if i % 2 == 0 { 0.31 } else { 0.29 })
                .collect::<Vec<_>>(),
        );
        assert!(!load_up(&cpu, last(&cpu)));
        // Noise on a tiny load is not a rise, however large in percent.
        let tiny = load(
            &(0..16)
                .map(|i| [0.01, 0.03, 0.02][i % 3])
                .collect::<Vec<_>>(),
        );
        assert!(!load_up(&tiny, last(&tiny)));
    }

    #[test]
    fn a_job_running_above_its_quiet_level_is_up_until_it_ends() {
        let mut values = vec![0.15; 8];
        values.extend([5.0, 21.0, 21.5, 20.8, 21.2, 4.0, 4.1]);
        let cpu = load(&values);
        assert!(load_up(&cpu, last(&cpu)));
        values.extend([0.15, 0.14, 0.16]);
        let cpu = load(&values);
        assert!(!load_up(&cpu, last(&cpu)));
    }

    #[test]
    fn a_job_running_explains_a_jump_and_its_end_a_drop() {
        let cpu = load(&[0.15, 0.16, 0.14, 0.15, 0.15, 0.15, 5.0, 21.0, 21.2, 0.15]);
        // Memory rose between the 6th and 7th captures: the job was running at the 7th.
        assert!(load_explains(&cpu, 5 * 900, 6 * 900, 1.0));
        assert!(load_explains(&cpu, 6 * 900, 7 * 900, 1.0));
        // It fell when the job ended.
        assert!(load_explains(&cpu, 8 * 900, 9 * 900, -1.0));
        // Nothing ran: neither is explained.
        assert!(!load_explains(&cpu, 3 * 900, 4 * 900, 1.0));
        assert!(!load_explains(&cpu, 3 * 900, 4 * 900, -1.0));
    }

    fn climb(len: usize) -> Vec<(i64, f64)> {
        (0..len)
            .map(|i| (i as i64 * 900, 500.0 + 4.0 * i as f64))
            .collect()
    }

    #[test]
    fn a_climb_tracks_a_rising_load_not_a_flat_or_falling_one() {
        let rising = load(&(0..16).map(|i| 0.3 + 0.02 * i as f64).collect::<Vec<_>>());
        assert!(tracks_load(&rising, &climb(16), 8, false));
        let flat = load(
            &(0..16)
                .map(|i| if i % 2 == 0 { 0.31 } else { 0.29 })
                .collect::<Vec<_>>(),
        );
        assert!(!tracks_load(&flat, &climb(16), 8, false));
        let falling = load(&(0..16).map(|i| 0.6 - 0.02 * i as f64).collect::<Vec<_>>());
        assert!(!tracks_load(&falling, &climb(16), 8, false));
        assert!(!tracks_load(&rising, &climb(16)[..4], 8, false));
    }

    #[test]
    fn too_few_readings_are_no_evidence() {
        let cpu = load(&[0.3, 0.4, 0.5, 0.6]);
        assert!(!load_up(&cpu, last(&cpu)));
    }
}
