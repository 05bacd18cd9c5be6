//! How far a straight-line fit of a climb can be trusted to project: the slowest slope its
//! readings make plausible, counting readings whose misfits run together as fewer.

/// How many standard errors below its fitted slope a trend is still trusted to rise.
const SLOPE_MARGIN_SE: f64 = 2.0;

/// Whether a straight-line fit (`slope`, `r2`) of the readings `used` reaches a limit `distance` away within
/// `within_s` even at its slope less [`SLOPE_MARGIN_SE`] standard errors. The slope's standard
/// error is |slope|·√((1 − r²) / (r²·(n − 2))), with n the readings' effective count: readings
/// whose misfits run together (a staircase, a few steps with flat treads between them) say
/// less than as many independent ones, n·(1 − ρ)/(1 + ρ) for a lag-one autocorrelation ρ of
/// the misfits. A disk filling steadily for six hours is known to fill within weeks; a noisy,
/// short or stepped climb stays bound by `reach`.
pub(super) fn surely_within(
    slope: f64,
    r2: f64,
    used: &[(i64, f64)],
    distance: f64,
    within_s: f64,
) -> bool {
    if used.len() < 3 || r2 <= 0.0 || slope <= 0.0 {
        return false;
    }
    let n = effective_count(used, slope);
    if n <= 3.0 {
        return false;
    }
    let se = slope * ((1.0 - r2).max(0.0) / (r2 * (n - 2.0))).sqrt();
    let slowest = slope - SLOPE_MARGIN_SE * se;
    slowest > 0.0 && distance / slowest <= within_s
}

/// The readings' count, shrunk by how much the misfits of a line of `slope` through them run
/// together: n·(1 − ρ)/(1 + ρ) for the lag-one autocorrelation ρ > 0 of the misfits.
fn effective_count(used: &[(i64, f64)], slope: f64) -> f64 {
    let n = used.len() as f64;
    let t0 = used.first().map_or(0, |u| u.0);
    let x = |t: i64| (t - t0) as f64;
    let mean_x = used.iter().map(|u| x(u.0)).sum::<f64>() / n;
    let mean_y = used.iter().map(|u| u.1).sum::<f64>() / n;
    let misfit: Vec<f64> = used
        .iter()
        .map(|&(t, v)| v - mean_y - slope * (x(t) - mean_x))
        .collect();
    let total: f64 = misfit.iter().map(|r| r * r).sum();
    if total <= 0.0 {
        return n;
    }
    let lagged: f64 = misfit.windows(2).map(|w| w[0] * w[1]).sum();
    let rho = (lagged / total).clamp(0.0, 0.99);
    n * (1.0 - rho) / (1.0 + rho)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    #[test]
    fn a_staircase_is_worth_fewer_readings_than_a_steady_climb() {
        // Twenty-four readings of a steady climb with alternating jitter, and twenty-four of a
        // staircase: three treads of eight readings.
        let steady: Vec<(i64, f64)> = (0..24)
            .map(|i| (i * H / 4, i as f64 + if i % 2 == 0 { 0.3 } else { -0.3 }))
            .collect();
        let stairs: Vec<(i64, f64)> = (0..24).map(|i| (i * H / 4, 8.0 * (i / 8) as f64)).collect();
        let ls = |s: &[(i64, f64)]| {
            let n = s.len() as f64;
            let mx = s.iter().map(|p| p.0 as f64).sum::<f64>() / n;
            let my = s.iter().map(|p| p.1).sum::<f64>() / n;
            let sxy: f64 = s.iter().map(|p| (p.0 as f64 - mx) * (p.1 - my)).sum();
            let sxx: f64 = s.iter().map(|p| (p.0 as f64 - mx).powi(2)).sum();
            sxy / sxx
        };
        let (steady_slope, stairs_slope) = (ls(&steady), ls(&stairs));
        assert!((effective_count(&steady, steady_slope) - 24.0).abs() < 1e-9);
        let stairs_n = effective_count(&stairs, stairs_slope);
        assert!(stairs_n < 12.0, "{stairs_n}");
        // At r² 0.85 over 24 independent readings the slowest plausible slope is 0.82 of the
        // fit's; a limit that needs 0.76 of it is sure for the steady climb, not the staircase.
        let distance = 100.0;
        let sure = |slope: f64, s: &[(i64, f64)]| {
            surely_within(slope, 0.85, s, distance, distance / (0.76 * slope))
        };
        assert!(sure(steady_slope, &steady));
        assert!(!sure(stairs_slope, &stairs));
    }
}
