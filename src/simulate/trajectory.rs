//! The simulator's clock and randomness: trajectories sampled at a capture's time, with noise
//! from a stable hash of (seed, node, series, time), so the same scenario gives the same
//! snapshots on every platform and in every run.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::scenario::{Dim, Span, TimeSpec, Traj};

/// FNV-1a over the parts: stable across platforms and Rust versions.
pub(super) fn hash(parts: &[&[u8]]) -> u64 {
    let mut h = crate::fnv::Fnv::default();
    for part in parts {
        h.write(part).write(&[0xff]);
    }
    h.finish()
}

/// A uniform number in [-1, 1) from a hash (splitmix64 finaliser).
pub(super) fn unit_noise(h: u64) -> f64 {
    let mut z = h.wrapping_add(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

pub(super) struct Clock {
    pub(super) tz: Tz,
    pub(super) start: DateTime<Utc>,
}

impl Clock {
    pub(super) fn at(&self, t: &TimeSpec) -> f64 {
        t.resolve(self.tz, self.start).timestamp() as f64
    }
    pub(super) fn active(&self, spans: &[Span], t: f64) -> bool {
        spans
            .iter()
            .any(|s| self.at(&s.from) <= t && t < self.at(&s.to))
    }
}

/// The running state of one trajectory.
struct TrajState {
    t: f64,
    value: f64,
    rate: f64,
    noise: f64,
    null: bool,
    steps: Vec<(f64, usize)>,
    next: usize,
}

impl TrajState {
    fn new<D: Dim>(traj: &Traj<D>, clock: &Clock, t0: f64) -> Self {
        let mut steps: Vec<(f64, usize)> = traj
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (clock.at(&s.at), i))
            .collect();
        steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        TrajState {
            t: t0,
            value: traj.start,
            rate: traj.rate,
            noise: traj.noise,
            null: traj.null,
            steps,
            next: 0,
        }
    }

    /// Moves the state to time `to`, applying steps and resets (reboots, restarts) on the way.
    fn advance<D: Dim>(&mut self, traj: &Traj<D>, to: f64, resets: &[f64]) {
        loop {
            let step_t = self.steps.get(self.next).map(|s| s.0).filter(|t| *t <= to);
            let reset_t = resets.iter().copied().find(|r| *r > self.t && *r <= to);
            let (event_t, is_reset) = match (step_t, reset_t) {
                (Some(s), Some(r)) if r < s => (r, true),
                (Some(s), _) => (s, false),
                (None, Some(r)) => (r, true),
                (None, None) => break,
            };
            if event_t > self.t {
                self.value += self.rate * (event_t - self.t);
                self.t = event_t;
            }
            if is_reset {
                self.value = traj.reboot_to.unwrap_or(traj.start);
                self.rate = traj.rate;
                self.null = traj.null;
            } else {
                let (_, i) = self.steps[self.next];
                let step = &traj.steps[i];
                if let Some(v) = &step.set {
                    self.value = v.0;
                }
                if let Some(r) = &step.rate {
                    self.rate = r.0;
                }
                if let Some(n) = step.null {
                    self.null = n;
                }
                if let Some(n) = &step.noise {
                    self.noise = n.0;
                }
                self.next += 1;
            }
        }
        if to > self.t {
            self.value += self.rate * (to - self.t);
            self.t = to;
        }
    }
}

/// Every trajectory of a node, by a stable key.
pub(super) struct NodeState<'s> {
    seed: u64,
    node: String,
    pub(super) clock: &'s Clock,
    /// The scenario's start: where every trajectory begins.
    pub(super) t0: f64,
    trajs: BTreeMap<String, TrajState>,
    totals: BTreeMap<String, f64>,
    /// When the previous snapshot was taken: running totals and log windows start there.
    pub(super) last_capture: Option<f64>,
}

impl<'s> NodeState<'s> {
    pub(super) fn new(seed: u64, node: &str, clock: &'s Clock, t0: f64) -> Self {
        NodeState {
            seed,
            node: node.to_string(),
            clock,
            t0,
            trajs: BTreeMap::new(),
            totals: BTreeMap::new(),
            last_capture: None,
        }
    }

    pub(super) fn sample<D: Dim>(
        &mut self,
        key: &str,
        traj: &Traj<D>,
        t: f64,
        resets: &[f64],
    ) -> Option<f64> {
        let (clock, t0) = (self.clock, self.t0);
        let st = self
            .trajs
            .entry(key.to_string())
            .or_insert_with(|| TrajState::new(traj, clock, t0));
        st.advance(traj, t, resets);
        if st.null {
            return None;
        }
        let mut v = st.value;
        if let Some(osc) = &traj.oscillate {
            let phase = ((t - t0) / osc.period.0).rem_euclid(1.0);
            v += osc.amplitude.0
                * match osc.shape.as_str() {
                    "sawtooth" => 2.0 * phase - 1.0,
                    "square" => {
                        if phase < 0.5 {
                            1.0
                        } else {
                            -1.0
                        }
                    }
                    _ => (phase * std::f64::consts::TAU).sin(),
                };
        }
        if st.noise > 0.0 {
            let h = hash(&[
                &self.seed.to_le_bytes(),
                self.node.as_bytes(),
                key.as_bytes(),
                &(t as i64).to_le_bytes(),
            ]);
            v += st.noise * unit_noise(h);
        }
        let min = traj.min.or(if D::DIM == crate::units::Dimension::Bytes {
            Some(0.0)
        } else {
            None
        });
        if let Some(m) = min {
            v = v.max(m);
        }
        if let Some(m) = traj.max {
            v = v.min(m);
        }
        let decimals = traj
            .decimals
            .unwrap_or(if D::DIM == crate::units::Dimension::Bytes {
                0
            } else {
                2
            });
        let f = 10f64.powi(decimals as i32);
        Some((v * f).round() / f)
    }

    /// Integrates a per-second rate into a running total.
    pub(super) fn total<D: Dim>(
        &mut self,
        key: &str,
        rate: &Traj<D>,
        t: f64,
        resets: &[f64],
    ) -> Option<u64> {
        let r = self.sample(&format!("{key}#rate"), rate, t, resets)?;
        let dt = self.last_capture.map(|l| t - l).unwrap_or(0.0);
        let total = self.totals.entry(key.to_string()).or_insert(0.0);
        *total += r.max(0.0) * dt;
        Some(total.round() as u64)
    }
}

pub(super) fn ts(t: f64) -> DateTime<Utc> {
    Utc.timestamp_opt(t.floor() as i64, ((t.fract()) * 1e9) as u32)
        .single()
        .unwrap_or_default()
}

pub(super) fn u(v: Option<f64>) -> Option<u64> {
    v.map(|x| x.max(0.0).round() as u64)
}
