//! The daily cycle of a series that is filled and cleaned up (log rotation, a nightly job's
//! scratch space, a busy day's connections): where a cleanup lies in the readings, whether this
//! cycle's is still due, and how much a net change over a cycle can be trusted.

/// A cleanup seen in the readings: the cycle it ends, and what it gave back.
pub(super) struct Cleanup {
    /// Index of the reading nearest one cycle before the newest: where the cycle's net starts.
    pub from: usize,
    pub fall: f64,
    /// When the series had given back nearly all of the fall; `None` when no fall of the
    /// cleanup's size came since `from`: this cycle's is due, a little later than the last.
    pub fall_at: Option<i64>,
}

/// The largest fall of `samples`: (its size, the index of the peak it fell from).
fn largest_fall(samples: &[(i64, f64)]) -> (f64, usize) {
    let (mut peak, mut peak_i, mut worst, mut worst_peak_i) = (f64::NEG_INFINITY, 0, 0.0, 0);
    for (i, &(_, v)) in samples.iter().enumerate() {
        if v > peak {
            (peak, peak_i) = (v, i);
        }
        if peak - v > worst {
            (worst, worst_peak_i) = (peak - v, peak_i);
        }
    }
    (worst, worst_peak_i)
}

/// The largest fall in the readings, when it is at least a fifth of what the series rose over
/// them. Noise on a steady rise falls by far less than the rise; a rotation or cleanup gives
/// back most of it. The readings are the rule's window, a little longer than the cycle: a
/// cleanup drifts by minutes from one day to the next and captures jitter by seconds, so one
/// just over a cycle ago must stay in view.
pub(super) fn cleanup(samples: &[(i64, f64)], cycle_s: f64) -> Option<Cleanup> {
    let &(t_last, _) = samples.last()?;
    let rise: f64 = samples.windows(2).map(|w| (w[1].1 - w[0].1).max(0.0)).sum();
    let (largest, _) = largest_fall(samples);
    if largest <= 0.0 || largest < rise / 5.0 {
        return None;
    }
    let from = cycle_start(samples, t_last, cycle_s);
    // The cycle's own cleanup: one at least half the size of the largest, since `from`.
    let recent = &samples[from..];
    let (fall, peak_i) = largest_fall(recent);
    if fall < largest / 2.0 {
        return Some(Cleanup {
            from,
            fall: largest,
            fall_at: None,
        });
    }
    // It happened when the series first gave back nearly all of the fall, not at the lowest
    // reading after it, which noise can put hours later.
    let top = recent[peak_i].1;
    let fall_at = recent[peak_i..]
        .iter()
        .find(|(_, v)| top - v >= 0.9 * fall)
        .map(|(t, _)| *t);
    Some(Cleanup {
        from,
        fall,
        fall_at,
    })
}

/// The index of the reading nearest `cycle_s` before `t_last`.
fn cycle_start(samples: &[(i64, f64)], t_last: i64, cycle_s: f64) -> usize {
    let after = samples.partition_point(|(t, _)| ((t_last - *t) as f64) > cycle_s);
    let distance = |i: usize| ((t_last - samples[i].0) as f64 - cycle_s).abs();
    match after.checked_sub(1) {
        Some(before) if after >= samples.len() || distance(before) < distance(after) => before,
        _ => after,
    }
}

/// How far a net change over a cycle could be off because its two ends are one capture out
/// of phase: the larger step beside each end, summed. A day-over-day comparison taken in the
/// middle of a steep refill (a nightly job writing 140 GB/h) moves by more than a whole day's
/// net.
pub(super) fn phase_uncertainty(samples: &[(i64, f64)], from: usize) -> f64 {
    let step_beside = |i: usize| {
        let before = i.checked_sub(1).map(|j| (samples[i].1 - samples[j].1).abs());
        let after = samples.get(i + 1).map(|next| (next.1 - samples[i].1).abs());
        before.unwrap_or(0.0).max(after.unwrap_or(0.0))
    };
    step_beside(from) + step_beside(samples.len() - 1)
}


/// How much the net change over a cycle moved over the last twelfth of a cycle (at least the
/// last four readings): each reading against the one nearest a cycle before it. A refill whose
/// schedule drifts (a checkpoint an hour later than the day before) makes it jump by a whole
/// step; a steady fill under a rotation keeps it still.
pub(super) fn net_spread(samples: &[(i64, f64)], cycle_s: f64) -> f64 {
    let Some(&(t_last, _)) = samples.last() else {
        return 0.0;
    };
    let since = t_last - (cycle_s / 12.0) as i64;
    let recent = samples
        .partition_point(|(t, _)| *t < since)
        .min(samples.len().saturating_sub(4));
    let nets = samples[recent..].iter().filter_map(|&(t, v)| {
        let j = cycle_start(samples, t, cycle_s);
        let lag = (t - samples[j].0) as f64;
        // Only a reading a whole cycle back (within an eighth) gives a net of that cycle.
        ((lag - cycle_s).abs() <= cycle_s / 8.0).then(|| v - samples[j].1)
    });
    let (lo, hi) = nets.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), n| {
        (lo.min(n), hi.max(n))
    });
    if hi >= lo { hi - lo } else { 0.0 }
}

/// The time the readings span, in seconds.
pub(super) fn span(samples: &[(i64, f64)]) -> f64 {
    match (samples.first(), samples.last()) {
        (Some((t0, _)), Some((t1, _))) => (t1 - t0) as f64,
        _ => 0.0,
    }
}

/// The least-squares slope and r² of all of `samples`.
pub(super) fn whole_fit(samples: &[(i64, f64)]) -> Option<(f64, f64)> {
    let &(t0, v0) = samples.first()?;
    let n = samples.len() as f64;
    let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(t, v) in samples {
        let (x, y) = ((t - t0) as f64, v - v0);
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
    }
    let (vxx, vyy, vxy) = (sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n);
    if vxx <= 0.0 {
        return None;
    }
    let r2 = if vyy <= 0.0 { 1.0 } else { (vxy * vxy / (vxx * vyy)).min(1.0) };
    Some((vxy / vxx, r2))
}

/// How many times a net change must exceed its [`phase_uncertainty`] to count as one.
pub(super) const PHASE_MARGIN: f64 = 2.0;

/// The share of what a cleanup gave back that a net change over its cycle must exceed: what a
/// cycle turns over varies from one day to the next (a bigger nightly job, a busier day's
/// logs), by a tenth as a rule, and a net change is trusted at twice that.
pub(super) const TURNOVER_MARGIN: f64 = 0.2;


#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 3600;

    #[test]
    fn a_refill_that_drifts_against_the_day_has_a_spread_net() {
        // A 30 a step every 2 h, given back every 6 h; today the steps come an hour later.
        let stepped = |h: f64| {
            let shifted = if h >= 24.0 { h - 1.0 } else { h };
            30.0 * (shifted.rem_euclid(6.0) / 2.0).floor()
        };
        let s: Vec<(i64, f64)> = (0..=104).map(|i| (i * H / 4, stepped(i as f64 / 4.0))).collect();
        assert!(net_spread(&s, 86_400.0) >= 30.0, "{}", net_spread(&s, 86_400.0));
        // A steady fill under a daily rotation nets the same at every reading.
        let s: Vec<(i64, f64)> = (0..=104)
            .map(|i| {
                let h = i as f64 / 4.0;
                (i * H / 4, h / 24.0 + ((h - 1.0).rem_euclid(24.0)) / 24.0)
            })
            .collect();
        assert!(net_spread(&s, 86_400.0) < 1e-9, "{}", net_spread(&s, 86_400.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Noise far smaller than a day's rise never reads as a cleanup.
        #[test]
        fn small_noise_on_a_rise_is_no_cleanup(seed in any::<u64>(), rise in 1.0f64..100.0) {
            let noise = |i: u64| {
                let x = seed.wrapping_add(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * rise / 100.0
            };
            let s: Vec<(i64, f64)> = (0..=96)
                .map(|i| (i * H / 4, rise * i as f64 / 96.0 + noise(i as u64)))
                .collect();
            prop_assert!(cleanup(&s, 86_400.0).is_none());
        }
    }
}
