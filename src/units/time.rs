//! Points in time as people write them (absolute, local to a time zone, or relative to a
//! start), and uptimes and boot times read from remote numbers that may be absurd.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{DAY_SECS, fmt_duration, parse_duration_secs};

/// Longest uptime believed, in seconds (a century): a larger value comes from a broken or
/// hostile exporter, and must not reach time arithmetic that panics out of range.
pub const MAX_UPTIME_S: f64 = 100.0 * 365.25 * 86_400.0;

/// A host's uptime read from a remote number: finite, not negative, within [`MAX_UPTIME_S`];
/// otherwise why not.
pub fn checked_uptime(uptime_s: f64) -> Result<u64, String> {
    if uptime_s.is_finite() && (0.0..=MAX_UPTIME_S).contains(&uptime_s) {
        Ok(uptime_s as u64)
    } else {
        Err(format!("an uptime of {uptime_s} s is not plausible"))
    }
}

/// When a host that had been up `uptime_s` seconds at `at` booted; `None` when out of range.
pub fn boot_time(
    at: chrono::DateTime<chrono::Utc>,
    uptime_s: u64,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs = i64::try_from(uptime_s).ok()?;
    at.checked_sub_signed(chrono::TimeDelta::try_seconds(secs)?)
}

/// A point in time as written: absolute (`2026-02-18T21:30:00Z`), local to the scenario's time
/// zone (`2026-02-18 21:30`), or relative to the start (`+2h30m`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeSpec {
    Absolute(DateTime<Utc>),
    Local(NaiveDateTime),
    Relative(f64),
}

impl TimeSpec {
    pub fn resolve(&self, tz: Tz, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeSpec::Absolute(t) => *t,
            TimeSpec::Local(n) => tz
                .from_local_datetime(n)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(start),
            TimeSpec::Relative(s) => start + chrono::Duration::milliseconds((s * 1000.0) as i64),
        }
    }
}

impl<'de> serde::Deserialize<'de> for TimeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_time(&text).map_err(serde::de::Error::custom)
    }
}

pub fn parse_time(text: &str) -> Result<TimeSpec, String> {
    let t = text.trim();
    if let Some(rel) = t.strip_prefix('+') {
        return bounded_secs(rel).map(TimeSpec::Relative);
    }
    if let Ok(abs) = DateTime::parse_from_rfc3339(t) {
        return Ok(TimeSpec::Absolute(abs.with_timezone(&Utc)));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(TimeSpec::Local(n));
        }
    }
    Err(format!(
        "`{text}` is not a time: use 2026-02-18T21:30:00Z, 2026-02-18 21:30 (scenario time zone) or +2h (after start)"
    ))
}

/// The longest span a scenario may state (ten years, either way): beyond it the date arithmetic
/// of the simulator overflows.
pub const MAX_SPAN_SECS: f64 = 3650.0 * DAY_SECS;

pub fn bounded_secs(text: &str) -> Result<f64, String> {
    let secs = parse_duration_secs(text)?;
    if secs.abs() > MAX_SPAN_SECS {
        return Err(format!(
            "`{}` is out of range: at most {} either way",
            text.trim(),
            fmt_duration(MAX_SPAN_SECS)
        ));
    }
    Ok(secs)
}
