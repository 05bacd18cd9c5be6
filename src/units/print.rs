//! Printing quantities so that every printed change, rate and ETA is derived from the printed
//! values: the one rule the seed report broke.

use std::fmt::Write as _;

use super::{Dimension, parse_bytes, parse_duration_secs, split_number};

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
        // The change is then printed in its own unit ("-954MB" beside GB values), so the bound
        // is half a unit of the last digit *as printed*, which can be finer than the values'.
        while decimals < MAX_CHANGE_DECIMALS {
            let shown = round_to(after / factor, decimals) - round_to(before / factor, decimals);
            let half = 0.5 * 10f64.powi(-(decimals as i32));
            let printed_half = match dim {
                Dimension::Bytes => half_unit_printed(&fmt_bytes_exactish(shown * factor)),
                Dimension::Plain => half_unit_printed(&fmt_plain_exactish(shown)),
                Dimension::Seconds => None,
            }
            .map_or(half, |h| (h / factor).min(half));
            if (shown - delta / factor).abs() <= printed_half + 1e-9 {
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

/// Half a unit of the last digit of a printed number, in base units ("-954MB" → 0.5e6,
/// "-0.95" → 0.005); `None` when it does not read as a number.
fn half_unit_printed(text: &str) -> Option<f64> {
    let (_, unit) = split_number(text.trim_start_matches(['+', '-']))?;
    let digits = text
        .split_once('.')
        .map(|(_, d)| d.chars().take_while(char::is_ascii_digit).count())
        .unwrap_or(0);
    let scale = if unit.trim().is_empty() {
        1.0
    } else {
        parse_bytes(&format!("1{}", unit.trim())).unwrap_or(1.0)
    };
    Some(0.5 * 10f64.powi(-(digits as i32)) * scale)
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
