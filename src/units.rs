//! Quantities as people write them ("414MB", "15m", "+2.7MB/h") and as reports print them.
//!
//! Parsing is strict: an unknown unit is an error that lists the units that would have been
//! accepted. Printing follows one rule that the seed report broke: a printed change is always
//! the difference of the printed values ("414MB → 315MB (-99MB)"), with enough digits that a
//! small change is not rounded away ("1.082GB → 1.094GB (+12MB)").
//!
//! Sizes are decimal (1MB = 1,000,000 bytes) when printed; binary suffixes (MiB) are accepted
//! when parsing.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// What a number measures, so that "15m" is refused where a size is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Bytes,
    Seconds,
    /// Counts, percentages, degrees, cores: printed as plain numbers with an optional suffix.
    Plain,
}

const BYTE_UNITS: &[(&str, f64)] = &[
    ("B", 1.0),
    ("KB", 1e3),
    ("MB", 1e6),
    ("GB", 1e9),
    ("TB", 1e12),
    ("KiB", 1024.0),
    ("MiB", 1048576.0),
    ("GiB", 1073741824.0),
    ("TiB", 1099511627776.0),
];

const TIME_UNITS: &[(&str, f64)] = &[
    ("ms", 0.001),
    ("s", 1.0),
    ("sec", 1.0),
    ("m", 60.0),
    ("min", 60.0),
    ("h", 3600.0),
    ("d", 86400.0),
    ("w", 604800.0),
];

const PLAIN_SUFFIXES: &[&str] = &["", "%", "°C", "C", "cores", "x"];

fn split_number(text: &str) -> Option<(f64, &str)> {
    let t = text.trim();
    let end = t
        .char_indices()
        .find(|(i, c)| {
            !(c.is_ascii_digit() || *c == '.' || ((*c == '-' || *c == '+') && *i == 0) || *c == '_')
        })
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let num: String = num.chars().filter(|c| *c != '_').collect();
    let value: f64 = num.parse().ok()?;
    Some((value, unit.trim()))
}

fn unit_list(units: &[(&str, f64)]) -> String {
    units.iter().map(|(u, _)| *u).collect::<Vec<_>>().join(", ")
}

/// Parses a size ("414MB", "1.5GiB", "0B"); a bare number is bytes.
pub fn parse_bytes(text: &str) -> Result<f64, String> {
    let (value, unit) =
        split_number(text).ok_or_else(|| format!("`{text}` is not a size (e.g. 414MB)"))?;
    if unit.is_empty() {
        return Ok(value);
    }
    BYTE_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, f)| value * f)
        .ok_or_else(|| {
            format!(
                "`{text}`: unknown size unit `{unit}` (expected one of {})",
                unit_list(BYTE_UNITS)
            )
        })
}

/// Parses a duration: "15m", "74s", "2.25h", "1h30m", "3d".
pub fn parse_duration_secs(text: &str) -> Result<f64, String> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty duration (e.g. 15m)".to_string());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let (value, tail) = split_number(rest)
            .ok_or_else(|| format!("`{text}` is not a duration (e.g. 15m, 2h, 74s)"))?;
        let unit_len = tail
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(tail.len());
        let unit = &tail[..unit_len];
        let factor = TIME_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                if unit.is_empty() {
                    format!(
                        "`{text}`: a duration needs a unit ({})",
                        unit_list(TIME_UNITS)
                    )
                } else {
                    format!(
                        "`{text}`: unknown time unit `{unit}` (expected one of {})",
                        unit_list(TIME_UNITS)
                    )
                }
            })?;
        total += value * factor;
        rest = &tail[unit_len..];
    }
    if !total.is_finite() {
        return Err(format!("`{text}` is too long a duration"));
    }
    Ok(total)
}

/// A day, in seconds.
pub const DAY_SECS: f64 = 86400.0;

/// Accepted range of one kind of duration: every duration patrol reads from a file or a flag has
/// one, because an absurd value ("99999999999999d") overflows the date arithmetic it feeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationRange {
    /// Inclusive; 0 with `zero_ok` false means "longer than 0".
    pub min_secs: f64,
    pub max_secs: f64,
    pub zero_ok: bool,
}

impl DurationRange {
    /// Timeouts and backoffs: longer than 0, at most an hour.
    pub const TIMEOUT: DurationRange = DurationRange {
        min_secs: 0.0,
        max_secs: 3600.0,
        zero_ok: false,
    };
    /// Windows, repeat intervals and archive ages: longer than 0, at most ten years.
    pub const SPAN: DurationRange = DurationRange {
        min_secs: 0.0,
        max_secs: 3650.0 * DAY_SECS,
        zero_ok: false,
    };
    /// Time between captures: 1 s to 30 days.
    pub const INTERVAL: DurationRange = DurationRange {
        min_secs: 1.0,
        max_secs: 30.0 * DAY_SECS,
        zero_ok: false,
    };
    /// How long to wait for another run: 0 (do not) to a day.
    pub const WAIT: DurationRange = DurationRange {
        min_secs: 0.0,
        max_secs: DAY_SECS,
        zero_ok: true,
    };

    /// The range in words, for messages and docs: "longer than 0 and at most 1 h".
    pub fn describe(&self) -> String {
        let low = if self.min_secs > 0.0 {
            format!("at least {}", fmt_duration(self.min_secs))
        } else if self.zero_ok {
            "0 or more".to_string()
        } else {
            "longer than 0".to_string()
        };
        format!("{low} and at most {}", fmt_duration(self.max_secs))
    }

    pub fn contains(&self, secs: f64) -> bool {
        let low_ok = if self.zero_ok || self.min_secs > 0.0 {
            secs >= self.min_secs
        } else {
            secs > 0.0
        };
        low_ok && secs <= self.max_secs
    }
}

/// Parses a duration and checks it against `range`; the error names the range.
pub fn parse_duration_in(text: &str, range: DurationRange) -> Result<std::time::Duration, String> {
    let secs = parse_duration_secs(text)?;
    if !range.contains(secs) {
        return Err(format!(
            "`{}` is out of range: a duration here must be {}",
            text.trim(),
            range.describe()
        ));
    }
    // In range, so finite and far below what Duration holds.
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Parses a plain number with an optional suffix ("67.4", "67.4%", "24°C", "0.5cores").
pub fn parse_plain(text: &str) -> Result<f64, String> {
    let (value, unit) = split_number(text).ok_or_else(|| format!("`{text}` is not a number"))?;
    if PLAIN_SUFFIXES.contains(&unit) {
        Ok(value)
    } else {
        Err(format!(
            "`{text}`: unexpected unit `{unit}` for a plain number (allowed: %, °C, cores, x)"
        ))
    }
}

pub fn parse(text: &str, dim: Dimension) -> Result<f64, String> {
    match dim {
        Dimension::Bytes => parse_bytes(text),
        Dimension::Seconds => parse_duration_secs(text),
        Dimension::Plain => parse_plain(text),
    }
}

/// Parses a rate such as "+2.7MB/h" or "-1/min" into units per second.
pub fn parse_rate_per_sec(text: &str, dim: Dimension) -> Result<f64, String> {
    let (amount, per) = text
        .rsplit_once('/')
        .ok_or_else(|| format!("`{text}` is not a rate (e.g. +2.7MB/h)"))?;
    let per_secs = parse_duration_secs(&format!("1{}", per.trim())).map_err(|_| {
        format!("`{text}`: unknown time unit `{per}` after `/` (expected s, min, h, d)")
    })?;
    let amount = parse(amount, dim)?;
    Ok(amount / per_secs)
}

/// Digits after the point that give `sig` significant digits for `v` (never negative).
fn decimals_for(v: f64, sig: i32) -> usize {
    if v == 0.0 || !v.is_finite() {
        return 0;
    }
    let magnitude = v.abs().log10().floor() as i32;
    (sig - 1 - magnitude).max(0) as usize
}

fn round_to(v: f64, decimals: usize) -> f64 {
    let f = 10f64.powi(decimals as i32);
    (v * f).round() / f
}

fn trim_number(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" { "0".to_string() } else { s }
}

/// Formats `v` with up to `decimals` digits, trailing zeros removed, thousands not grouped.
pub fn fmt_number(v: f64, decimals: usize) -> String {
    trim_number(format!("{:.*}", decimals, round_to(v, decimals)))
}

fn byte_unit(v: f64) -> (&'static str, f64) {
    let a = v.abs();
    if a >= 1e12 {
        ("TB", 1e12)
    } else if a >= 1e9 {
        ("GB", 1e9)
    } else if a >= 1e6 {
        ("MB", 1e6)
    } else if a >= 1e3 {
        ("KB", 1e3)
    } else {
        ("B", 1.0)
    }
}

/// A size with three significant digits: "414MB", "78.7MB", "5.97GB".
pub fn fmt_bytes(v: f64) -> String {
    let (unit, f) = byte_unit(v);
    let scaled = v / f;
    format!(
        "{}{}",
        fmt_number(scaled, decimals_for(scaled, 3).min(2)),
        unit
    )
}

fn signed(text: String, v: f64) -> String {
    if v > 0.0 { format!("+{text}") } else { text }
}

/// A value of the given dimension, with a suffix for plain numbers ("°C", "%").
pub fn fmt_value(v: f64, dim: Dimension, suffix: &str) -> String {
    match dim {
        Dimension::Bytes => fmt_bytes(v),
        Dimension::Seconds => fmt_duration(v),
        Dimension::Plain => format!("{}{}", fmt_number(v, decimals_for(v, 3).min(2)), suffix),
    }
}

/// Before, after and the change between them, printed so the change is the difference of the
/// printed values and has at least two significant digits.
pub struct Change {
    pub before: String,
    pub after: String,
    pub delta: String,
    /// The printed values, parsed back: what a reader would compute with.
    pub shown_before: f64,
    pub shown_after: f64,
    pub shown_delta: f64,
}

/// The most digits after the point a change prints with, however close its values.
const MAX_CHANGE_DECIMALS: usize = 6;

pub fn fmt_change(before: f64, after: f64, dim: Dimension, suffix: &str) -> Change {
    let big = before.abs().max(after.abs());
    let small = before.abs().min(after.abs());
    let delta = after - before;
    let (unit_name, factor) = match dim {
        Dimension::Bytes => byte_unit(big),
        _ => ("", 1.0),
    };
    let far_apart = small == 0.0 || big / small > 20.0;
    let (shown_before, shown_after, before_s, after_s) = if far_apart && dim == Dimension::Bytes {
        let b = fmt_bytes(before);
        let a = fmt_bytes(after);
        (
            parse_bytes(&b).unwrap_or(before),
            parse_bytes(&a).unwrap_or(after),
            b,
            a,
        )
    } else {
        let scaled_big = big / factor;
        let scaled_small = small / factor;
        let scaled_delta = delta.abs() / factor;
        let mut decimals = decimals_for(scaled_big, 3)
            .max(decimals_for(scaled_small, 3))
            .max(if scaled_delta > 0.0 {
                decimals_for(scaled_delta, 2)
            } else {
                0
            })
            .min(3);
        // Rounding before and after separately can move their difference by up to a unit of
        // the last digit ("195MB → 169MB (-26MB)" for a 26.7MB drop): add digits until the
        // printed difference is the true change to within half a unit of its last digit.
        while decimals < MAX_CHANGE_DECIMALS {
            let shown = round_to(after / factor, decimals) - round_to(before / factor, decimals);
            if (shown - delta / factor).abs() <= 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9 {
                break;
            }
            decimals += 1;
        }
        let rb = round_to(before / factor, decimals);
        let ra = round_to(after / factor, decimals);
        let unit = if dim == Dimension::Bytes {
            unit_name
        } else {
            suffix
        };
        (
            rb * factor,
            ra * factor,
            format!("{}{}", fmt_number(rb, decimals), unit),
            format!("{}{}", fmt_number(ra, decimals), unit),
        )
    };
    let shown_delta = shown_after - shown_before;
    let delta_s = match dim {
        Dimension::Bytes => fmt_bytes_exactish(shown_delta),
        Dimension::Seconds => fmt_duration(shown_delta.abs()),
        Dimension::Plain => format!("{}{}", fmt_plain_exactish(shown_delta), suffix),
    };
    Change {
        before: before_s,
        after: after_s,
        delta: signed(delta_s, shown_delta),
        shown_before,
        shown_after,
        shown_delta,
    }
}

/// A difference of two printed sizes: printed with as many digits as it exactly has (up to 4
/// significant), so "4.54GB - 78.7MB" prints as "4.461GB", not a re-rounded figure.
fn fmt_bytes_exactish(v: f64) -> String {
    let (unit, f) = byte_unit(v);
    let scaled = v / f;
    let mut decimals = 0;
    while decimals < 3 && (round_to(scaled, decimals) - scaled).abs() > 1e-9 * scaled.abs().max(1.0)
    {
        decimals += 1;
    }
    format!("{}{}", fmt_number(scaled, decimals), unit)
}

/// A difference of two printed plain numbers, with as many digits as it exactly has (up to
/// six), so that it is their difference as printed.
fn fmt_plain_exactish(v: f64) -> String {
    let mut decimals = 0;
    while decimals < MAX_CHANGE_DECIMALS
        && (round_to(v, decimals) - v).abs() > 1e-9 * v.abs().max(1.0)
    {
        decimals += 1;
    }
    fmt_number(v, decimals)
}

/// Whether a percentage of a value with this suffix means anything: temperatures in °C (and
/// timestamps) are on an interval scale, whose zero is arbitrary, so "-6°C, -25%" is noise.
pub fn ratio_scale(dim: Dimension, suffix: &str) -> bool {
    !(dim == Dimension::Plain && matches!(suffix, "°C" | "C"))
}

/// A duration printed precisely enough to divide by, and the number of seconds a reader gets
/// back from it: "15 min", "15.3 min", "3.01 h", "2.15 days". A rate or an ETA printed beside
/// it is computed from that read-back value, so the printed numbers add up.
pub fn fmt_duration_shown(secs: f64) -> (String, f64) {
    let s = secs.abs();
    if s < 120.0 {
        let n = round_to(s, 0);
        (format!("{} s", fmt_number(n, 0)), n)
    } else if s < 7200.0 {
        let n = round_to(s / 60.0, 1);
        (format!("{} min", fmt_number(n, 1)), n * 60.0)
    } else if s < 172800.0 {
        let n = round_to(s / 3600.0, 2);
        (format!("{} h", fmt_number(n, 2)), n * 3600.0)
    } else {
        let n = round_to(s / 86400.0, 2);
        (format!("{} days", fmt_number(n, 2)), n * 86400.0)
    }
}

/// A value printed beside a limit it approaches, with enough digits that the distance between
/// the two printed numbers keeps two significant digits ("15.85GB" next to "16GB", not "15.8GB").
pub fn fmt_near(v: f64, limit: f64, dim: Dimension, suffix: &str) -> String {
    let distance = (limit - v).abs();
    let (unit, f) = match dim {
        Dimension::Bytes => byte_unit(v),
        Dimension::Plain => (suffix, 1.0),
        Dimension::Seconds => return fmt_duration(v),
    };
    let scaled = v / f;
    let decimals = decimals_for(scaled, 3)
        .min(2)
        .max(decimals_for(distance / f, 2))
        .min(MAX_CHANGE_DECIMALS);
    format!("{}{unit}", fmt_number(scaled, decimals))
}

/// A printed number read back: what a reader computes with ("+2.82MB/h" → 2.82e6 per hour).
pub fn shown_value(text: &str, dim: Dimension) -> Option<f64> {
    let t = text.trim().trim_start_matches('~');
    match dim {
        Dimension::Bytes => parse_bytes(t).ok(),
        Dimension::Seconds => parse_duration_secs(&t.replace(' ', "").replace("days", "d")).ok(),
        Dimension::Plain => split_number(t).map(|(v, _)| v),
    }
}

/// A rate printed so that it is the printed amount over the printed time: both are read back
/// from their text and divided, then rounded to the rate's own precision.
pub fn fmt_rate_of(
    amount_shown: f64,
    span_shown_secs: f64,
    dim: Dimension,
    suffix: &str,
    per: RatePer,
) -> (String, f64) {
    let per_sec = if span_shown_secs > 0.0 {
        amount_shown / span_shown_secs
    } else {
        0.0
    };
    let text = fmt_rate(per_sec, dim, suffix, per);
    (text, per_sec)
}

/// A rate per second shown per hour or per minute: "+2.7MB/h", "+13.4MB/min".
pub fn fmt_rate(per_sec: f64, dim: Dimension, suffix: &str, per: RatePer) -> String {
    let (v, label) = match per {
        RatePer::Minute => (per_sec * 60.0, "min"),
        RatePer::Hour => (per_sec * 3600.0, "h"),
        RatePer::Day => (per_sec * 86400.0, "day"),
    };
    let body = match dim {
        Dimension::Bytes => fmt_bytes(v),
        _ => format!("{}{}", fmt_number(v, decimals_for(v, 2).min(3)), suffix),
    };
    format!("{}/{}", signed(body, v), label)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePer {
    Minute,
    Hour,
    Day,
}

/// Seconds in the unit a rate is printed per.
pub fn rate_per_secs(per: RatePer) -> f64 {
    match per {
        RatePer::Minute => 60.0,
        RatePer::Hour => 3600.0,
        RatePer::Day => 86400.0,
    }
}

impl RatePer {
    pub fn parse(text: &str) -> Option<RatePer> {
        match text {
            "min" | "minute" => Some(RatePer::Minute),
            "h" | "hour" => Some(RatePer::Hour),
            "d" | "day" => Some(RatePer::Day),
            _ => None,
        }
    }
}

/// A span of time for prose: "74 s", "17 min", "2.25 h", "3.8 days".
pub fn fmt_duration(secs: f64) -> String {
    let s = secs.abs();
    if s < 120.0 {
        format!("{} s", fmt_number(s, 0))
    } else if s < 7200.0 {
        format!(
            "{} min",
            fmt_number(s / 60.0, if s < 600.0 { 1 } else { 0 })
        )
    } else if s < 172800.0 {
        format!("{} h", fmt_number(s / 3600.0, 2))
    } else {
        format!("{} days", fmt_number(s / 86400.0, 1))
    }
}

/// Uptime the way operators compare it: "6846 s = 1.9 h".
pub fn fmt_uptime(secs: u64) -> String {
    let mut out = String::new();
    let _ = write!(out, "{secs} s = ");
    let s = secs as f64;
    if s < 3600.0 {
        let _ = write!(out, "{} min", fmt_number(s / 60.0, 0));
    } else if s < 172800.0 {
        let _ = write!(out, "{} h", fmt_number(s / 3600.0, 1));
    } else {
        let _ = write!(out, "{} days", fmt_number(s / 86400.0, 1));
    }
    out
}

/// "1 snapshot", "3 snapshots": a count with its noun (regular plurals only).
pub fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn absurd_uptimes_are_refused_not_computed() {
        let at = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        for bad in [1e17, f64::NAN, f64::INFINITY, -1.0] {
            assert!(super::checked_uptime(bad).is_err(), "{bad}");
        }
        assert_eq!(super::checked_uptime(3600.5), Ok(3600));
        assert_eq!(super::boot_time(at, u64::MAX), None);
        assert_eq!(super::boot_time(at, 100_000_000_000_000_000), None);
        assert_eq!(
            super::boot_time(at, 60).unwrap().timestamp(),
            1_790_000_000 - 60
        );
    }

    use super::*;

    #[test]
    fn parses_sizes_durations_and_rates() {
        assert_eq!(parse_bytes("414MB").unwrap(), 414e6);
        assert_eq!(parse_bytes("1GiB").unwrap(), 1073741824.0);
        assert_eq!(parse_bytes("0B").unwrap(), 0.0);
        assert_eq!(parse_duration_secs("15m").unwrap(), 900.0);
        assert_eq!(parse_duration_secs("1h30m").unwrap(), 5400.0);
        assert_eq!(parse_duration_secs("74s").unwrap(), 74.0);
        assert!((parse_rate_per_sec("+2.7MB/h", Dimension::Bytes).unwrap() - 750.0).abs() < 1e-9);
        assert!((parse_rate_per_sec("-1.5/min", Dimension::Plain).unwrap() + 0.025).abs() < 1e-12);
    }

    #[test]
    fn bad_units_name_the_unit_and_the_choices() {
        let e = parse_bytes("12XB").unwrap_err();
        assert!(e.contains("unknown size unit `XB`"), "{e}");
        assert!(e.contains("MiB"), "{e}");
        let e = parse_duration_secs("15 fortnights").unwrap_err();
        assert!(e.contains("fortnights"), "{e}");
        assert!(
            parse_duration_secs("15")
                .unwrap_err()
                .contains("needs a unit")
        );
    }

    #[test]
    fn change_is_the_difference_of_what_is_printed() {
        // The seed called 414 → 315 a 100MB drop.
        let c = fmt_change(414e6, 315e6, Dimension::Bytes, "");
        assert_eq!(
            (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
            ("414MB", "315MB", "-99MB")
        );
        // A small change on a large value keeps its digits.
        let c = fmt_change(1082e6, 1094e6, Dimension::Bytes, "");
        assert_eq!(
            (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
            ("1.082GB", "1.094GB", "+12MB")
        );
        // Values far apart are printed in their own units; the change still adds up.
        let c = fmt_change(78.7e6, 4.54e9, Dimension::Bytes, "");
        assert_eq!(
            (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
            ("78.7MB", "4.54GB", "+4.461GB")
        );
        let c = fmt_change(18.0, 27.0, Dimension::Plain, "°C");
        assert_eq!(
            (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
            ("18°C", "27°C", "+9°C")
        );
        let c = fmt_change(15.8e9, 16.1e9, Dimension::Bytes, "");
        assert_eq!(c.delta, "+300MB");
        // Both values keep three significant digits (the reboot drop of F48).
        let c = fmt_change(16.7e9, 1.17e9, Dimension::Bytes, "");
        assert_eq!(
            (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
            ("16.7GB", "1.17GB", "-15.53GB")
        );
    }

    #[test]
    fn a_change_keeps_the_digits_its_true_size_needs() {
        // Issue 15: 195,372,195 → 168,674,721 B printed "195MB → 169MB (-26MB)", a 26.7MB drop.
        let c = fmt_change(195_372_195.0, 168_674_721.0, Dimension::Bytes, "");
        assert_eq!(
            (c.before.as_str(), c.after.as_str(), c.delta.as_str()),
            ("195.4MB", "168.7MB", "-26.7MB")
        );
        // Printed next to a limit, a value keeps the digits the distance needs.
        assert_eq!(fmt_near(15.848e9, 16e9, Dimension::Bytes, ""), "15.85GB");
        assert_eq!(fmt_near(782e9, 1e12, Dimension::Bytes, ""), "782GB");
        assert!(!ratio_scale(Dimension::Plain, "°C"));
        assert!(ratio_scale(Dimension::Bytes, ""));
        assert_eq!(fmt_duration_shown(924.0).0, "15.4 min");
        assert_eq!(
            fmt_rate_of(1290.0, 924.0, Dimension::Plain, "", RatePer::Minute).0,
            "+84/min"
        );
    }

    #[test]
    fn sizes_rates_and_durations_print_compactly() {
        assert_eq!(fmt_bytes(5.97e9), "5.97GB");
        assert_eq!(fmt_bytes(78.7e6), "78.7MB");
        assert_eq!(
            fmt_rate(2.9e9 / 3600.0, Dimension::Bytes, "", RatePer::Hour),
            "+2.9GB/h"
        );
        assert_eq!(fmt_duration(74.0), "74 s");
        assert_eq!(fmt_duration(17.0 * 60.0), "17 min");
        assert_eq!(fmt_duration(2.25 * 3600.0), "2.25 h");
        assert_eq!(fmt_uptime(6846), "6846 s = 1.9 h");
    }

    #[test]
    fn durations_out_of_their_range_are_errors_not_panics() {
        assert!(
            parse_duration_secs("1e400s").is_err(),
            "an infinite duration"
        );
        let e = parse_duration_in("99999999999999d", DurationRange::TIMEOUT).unwrap_err();
        assert!(e.contains("at most"), "{e}");
        assert!(parse_duration_in("1000000000w", DurationRange::SPAN).is_err());
        assert!(parse_duration_in("0m", DurationRange::SPAN).is_err());
        assert!(parse_duration_in("0s", DurationRange::WAIT).is_ok());
        assert!(parse_duration_in("0.5s", DurationRange::INTERVAL).is_err());
        assert_eq!(
            parse_duration_in("1h", DurationRange::TIMEOUT).unwrap(),
            std::time::Duration::from_secs(3600)
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn parsers_never_panic(text in "[-+0-9._a-zA-Z/%° ]{0,24}") {
                let _ = parse_bytes(&text);
                let _ = parse_duration_secs(&text);
                let _ = parse_plain(&text);
                let _ = parse_rate_per_sec(&text, Dimension::Bytes);
                let _ = parse_rate_per_sec(&text, Dimension::Plain);
                for range in [DurationRange::TIMEOUT, DurationRange::SPAN, DurationRange::INTERVAL, DurationRange::WAIT] {
                    if let Ok(d) = parse_duration_in(&text, range) {
                        prop_assert!(range.contains(d.as_secs_f64()));
                    }
                }
            }

            #[test]
            fn whole_durations_round_trip(n in 0u64..10_000_000, unit in 0usize..TIME_UNITS.len()) {
                let (name, factor) = TIME_UNITS[unit];
                let secs = parse_duration_secs(&format!("{n}{name}")).unwrap();
                prop_assert!((secs - n as f64 * factor).abs() <= 1e-9 * secs.max(1.0));
            }

            #[test]
            fn printed_sizes_read_back_close(v in 0.0f64..1e15) {
                // fmt_bytes keeps three significant digits: reading it back is within half a
                // unit of the third digit.
                let back = parse_bytes(&fmt_bytes(v)).unwrap();
                prop_assert!((back - v).abs() <= v * 0.005 + 0.5, "{} -> {}", v, back);
            }

            #[test]
            fn a_change_is_the_difference_of_its_printed_values(a in 0.0f64..1e13, b in 0.0f64..1e13) {
                let c = fmt_change(a, b, Dimension::Bytes, "");
                prop_assert!((parse_bytes(&c.before).unwrap() - c.shown_before).abs() <= 1e-6 * c.shown_before.max(1.0));
                prop_assert!((parse_bytes(&c.after).unwrap() - c.shown_after).abs() <= 1e-6 * c.shown_after.max(1.0));
            }

            #[test]
            fn a_printed_change_is_the_true_change_to_its_last_digit(a in 1e6f64..1e12, b in 1e6f64..1e12) {
                let c = fmt_change(a, b, Dimension::Bytes, "");
                let unit = c.delta.trim_start_matches(['+', '-']).trim_start_matches(|ch: char| ch.is_ascii_digit() || ch == '.');
                let digits = c.delta.split_once('.').map(|(_, d)| d.trim_end_matches(|ch: char| !ch.is_ascii_digit()).len()).unwrap_or(0);
                let half = 0.5 * 10f64.powi(-(digits as i32)) * parse_bytes(&format!("1{unit}")).unwrap();
                let big_small = a.max(b) / a.min(b);
                // Values more than 20x apart print in their own units; their change is derived
                // from what is printed (checked above), not re-rounded.
                prop_assume!(big_small <= 20.0);
                prop_assert!((c.shown_delta - (b - a)).abs() <= half * 1.000001, "{} → {} ({}) for {} → {}", c.before, c.after, c.delta, a, b);
            }

            #[test]
            fn rates_round_trip(n in 1u32..100_000) {
                let per_h = parse_rate_per_sec(&format!("+{n}MB/h"), Dimension::Bytes).unwrap();
                prop_assert!((per_h * 3600.0 - f64::from(n) * 1e6).abs() < 1e-3);
            }
        }
    }
}
