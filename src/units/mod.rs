//! Quantities as people write them ("414MB", "15m", "+2.7MB/h") and as reports print them.
//!
//! Parsing is strict: an unknown unit is an error that lists the units that would have been
//! accepted. Printing follows one rule that the seed report broke: a printed change is always
//! the difference of the printed values ("414MB → 315MB (-99MB)"), with enough digits that a
//! small change is not rounded away ("1.082GB → 1.094GB (+12MB)").
//!
//! Sizes are decimal (1MB = 1,000,000 bytes) when printed; binary suffixes (MiB) are accepted
//! when parsing.
//!
//! Parsing lives here, printing in [`print`], points in time and uptimes in [`time`].

mod print;
mod time;

pub use print::*;
pub use time::*;

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

pub(super) fn split_number(text: &str) -> Option<(f64, &str)> {
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

#[cfg(test)]
mod tests;
