//! Whether a climb moves with the entity's own load. Memory that rises with a container's CPU
//! through the working day is the memory its work needs: such a climb is a leak only once the
//! load falls and the memory does not, so until then it is no verdict either way. Without this,
//! every service whose traffic follows the day opens a "creep" each morning of a history that
//! has not yet seen a night.

use crate::history::Point;

/// The weakest correlation between the climb and its load that counts as moving with it.
const MIN_CORRELATION: f64 = 0.6;

/// How much the load itself must have risen over the climb (its fitted rise against its mean
/// level): noise on a flat load correlates with nothing.
const MIN_LOAD_RISE: f64 = 0.2;

/// Whether `readings` (values signed so that growth is positive) rise with the `load` series
/// read at the same captures: the two correlate by at least [`MIN_CORRELATION`]
/// and the load rose over them by at least [`MIN_LOAD_RISE`] of its mean level. Fewer than
/// `min_samples` paired readings are no evidence of it.
pub(super) fn rises_with_load(
    points: &[Point],
    readings: &[(i64, f64)],
    min_samples: usize,
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
    let (mut svv, mut sll, mut svl, mut stt, mut stl) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(t, v, l) in &pairs {
        let (dt, dv, dl) = (t - mt, v - mv, l - ml);
        svv += dv * dv;
        sll += dl * dl;
        svl += dv * dl;
        stt += dt * dt;
        stl += dt * dl;
    }
    if svv <= 0.0 || sll <= 0.0 || stt <= 0.0 || ml.abs() <= f64::EPSILON {
        return false;
    }
    let correlation = svl / (svv * sll).sqrt();
    let span = pairs[pairs.len() - 1].0 - pairs[0].0;
    let load_rise = stl / stt * span;
    correlation >= MIN_CORRELATION && load_rise >= MIN_LOAD_RISE * ml.abs()
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

    fn climb(len: usize) -> Vec<(i64, f64)> {
        (0..len)
            .map(|i| (i as i64 * 900, 500.0 + 4.0 * i as f64))
            .collect()
    }

    #[test]
    fn a_climb_with_a_rising_load_follows_it() {
        let cpu: Vec<f64> = (0..16).map(|i| 0.3 + 0.02 * i as f64).collect();
        assert!(rises_with_load(&load(&cpu), &climb(16), 8));
    }

    #[test]
    fn a_climb_under_a_flat_noisy_load_does_not() {
        let cpu: Vec<f64> = (0..16)
            .map(|i| if i % 2 == 0 { 0.31 } else { 0.29 })
            .collect();
        assert!(!rises_with_load(&load(&cpu), &climb(16), 8));
    }

    #[test]
    fn a_climb_while_the_load_falls_does_not() {
        let cpu: Vec<f64> = (0..16).map(|i| 0.6 - 0.02 * i as f64).collect();
        assert!(!rises_with_load(&load(&cpu), &climb(16), 8));
    }

    #[test]
    fn too_few_paired_readings_are_no_evidence() {
        let cpu: Vec<f64> = (0..4).map(|i| 0.3 + 0.05 * i as f64).collect();
        assert!(!rises_with_load(&load(&cpu), &climb(16), 8));
    }
}
