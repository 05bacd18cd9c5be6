//! `patrol show`, `compare` and `history`: reading snapshots back out of an archive for a
//! person, one capture, two side by side, or one reading over time.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{EXIT_OK, default_output, open_archive, parse_time};
use crate::cli::{CompareArgs, Format, HistoryArgs, ShowArgs};
use crate::error::{Error, Result};
use crate::history::metrics::metric_unit;
use crate::markdown::plain;
use crate::model::Snapshot;
use crate::store::{Archive, Entry, read_snapshot_file};
use crate::units::{self, fmt_value};

/// `patrol show`: one snapshot as JSON, from a file or the nearest capture of NODE@TIME.
pub(super) fn show(args: &ShowArgs) -> Result<i32> {
    let (target, archive_arg) = (args.target.as_str(), args.archive.as_str());
    let path = Path::new(target);
    let snapshot = if path.exists() {
        read_snapshot_file(path)?
    } else if let Some((node, time)) = target.split_once('@') {
        let (archive, _, tz) = open_archive(archive_arg)?;
        let at = parse_time(time, tz)?;
        let entry = archive.nearest(node, at)?.ok_or_else(|| {
            Error::Usage(format!(
                "no captures of node `{node}` in {}",
                archive.describe()
            ))
        })?;
        eprintln!(
            "nearest capture of {node}: {} {}",
            entry.captured_at.to_rfc3339(),
            offset_note(entry.captured_at, at)
        );
        archive.load(&entry)?
    } else {
        return Err(Error::Usage(format!(
            "`{target}` is neither a file nor NODE@TIME"
        )));
    };
    let json = serde_json::to_string_pretty(&snapshot)
        .map_err(|e| Error::Runtime(format!("cannot write JSON: {e}")))?;
    println!("{json}");
    Ok(EXIT_OK)
}

/// `patrol compare`: the differences between two snapshots, most important first.
pub(super) fn compare_cmd(args: CompareArgs) -> Result<i32> {
    let CompareArgs {
        a,
        b,
        at,
        archive: archive_arg,
        out,
        format,
    } = args;
    let (archive, fleet, tz) = open_archive(&archive_arg)?;
    let at = at.as_deref().map(|t| parse_time(t, tz)).transpose()?;
    let (sa, note_a) = resolve_snapshot(&a, &archive, tz, at)?;
    let (sb, note_b) = resolve_snapshot(&b, &archive, tz, at)?;
    let diffs = crate::compare::diff(&sa, &sb, tz);
    let notes: Vec<String> = note_a.into_iter().chain(note_b).collect();
    let out = out.unwrap_or_else(|| default_output(&archive, &fleet));
    let stamp = |s: &Snapshot| {
        format!(
            "{}@{}",
            s.node,
            s.captured_at.with_timezone(&tz).format("%Y%m%d-%H%M")
        )
    };
    let base = out
        .join("compare")
        .join(format!("{}_vs_{}", stamp(&sa), stamp(&sb)));
    if format == Format::Json {
        let doc = serde_json::json!({
            "a": { "node": sa.node, "captured_at": sa.captured_at },
            "b": { "node": sb.node, "captured_at": sb.captured_at },
            "notes": notes,
            "differences": diffs,
        });
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| Error::Runtime(format!("cannot write JSON: {e}")))?;
        crate::fsutil::write_atomic(
            &base.with_extension("json"),
            text.as_bytes(),
            crate::fsutil::Mode::SHARED,
        )?;
        println!("{text}");
    } else {
        let text = plain(&crate::compare::markdown(&sa, &sb, tz, &diffs, &notes));
        crate::fsutil::write_atomic(
            &base.with_extension("md"),
            text.as_bytes(),
            crate::fsutil::Mode::SHARED,
        )?;
        print!("{text}");
    }
    Ok(EXIT_OK)
}

/// "(5 s after the time asked)": how far a capture is from the time someone asked for.
fn offset_note(captured_at: DateTime<Utc>, asked: DateTime<Utc>) -> String {
    let off = (captured_at - asked).num_seconds();
    format!(
        "({} {} the time asked)",
        units::fmt_duration(off.abs() as f64),
        if off >= 0 { "after" } else { "before" }
    )
}

/// A snapshot named by a file, `node@time` or (with `at`) a node name; the note says which
/// capture was taken when it is not exactly the time asked.
fn resolve_snapshot(
    spec: &str,
    archive: &Archive,
    tz: Tz,
    at: Option<DateTime<Utc>>,
) -> Result<(Snapshot, Option<String>)> {
    let path = Path::new(spec);
    if path.is_file() {
        return Ok((read_snapshot_file(path)?, None));
    }
    let (node, time) = match spec.split_once('@') {
        Some((n, t)) => (n, Some(parse_time(t, tz)?)),
        None => (spec, at),
    };
    let entry = match time {
        Some(t) => archive.nearest(node, t)?,
        None => archive.list(None, None, Some(node))?.pop(),
    }
    .ok_or_else(|| {
        Error::Usage(format!(
            "`{spec}`: no captures of node `{node}` in {} (and no such snapshot file)",
            archive.describe()
        ))
    })?;
    let note = time.filter(|t| entry.captured_at != *t).map(|t| {
        format!(
            "{node}: the nearest capture is {} {}.",
            entry
                .captured_at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S %Z"),
            offset_note(entry.captured_at, t)
        )
    });
    Ok((archive.load(&entry)?, note))
}

/// `patrol history`: one node's readings over time, as a table (with a sparkline on a terminal)
/// and an SVG chart.
pub(super) fn history_cmd(args: HistoryArgs) -> Result<i32> {
    let (archive, fleet, tz) = open_archive(&args.archive)?;
    let node = args.node.as_str();
    let entity = args.entity.as_deref().unwrap_or("host");
    let metric = args
        .metric
        .as_deref()
        .unwrap_or(if entity.starts_with("container:") {
            "mem_usage_bytes"
        } else {
            "mem_available_bytes"
        });
    if !crate::history::metrics::KNOWN_METRICS.contains(&metric) {
        return Err(Error::Usage(format!(
            "unknown metric `{metric}`{}",
            crate::error::did_you_mean(metric, crate::history::metrics::KNOWN_METRICS)
        )));
    }
    let all = archive.list(None, None, Some(node))?;
    let Some(newest) = all.last().map(|e| e.captured_at) else {
        return Err(Error::Usage(format!(
            "no captures of node `{node}` in {}",
            archive.describe()
        )));
    };
    let from = match &args.since {
        Some(t) => parse_time(t, tz)?,
        None => newest - chrono::Duration::hours(24),
    };
    let entries: Vec<Entry> = all.into_iter().filter(|e| e.captured_at >= from).collect();
    let wanted = Wanted {
        node,
        entity,
        metric,
    };
    let series = readings(&archive, &entries, &wanted);
    if series.values.is_empty() && series.nulls.is_empty() {
        return Err(Error::Usage(format!(
            "no `{metric}` readings of `{entity}` on {node} since {}",
            from.with_timezone(&tz).format("%Y-%m-%d %H:%M")
        )));
    }
    print_readings(&series, &wanted, tz);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_output(&archive, &fleet));
    let path = write_chart(
        &series,
        &wanted,
        &Chart {
            fleet: &fleet,
            tz,
            from,
            newest,
            out: &out,
        },
    )?;
    eprintln!("chart: {}", path.display());
    Ok(EXIT_OK)
}

/// The reading `patrol history` follows: one metric of the entities an entity glob matches on one
/// node.
struct Wanted<'a> {
    node: &'a str,
    entity: &'a str,
    metric: &'a str,
}

/// Where and over what span a history chart is drawn.
struct Chart<'a> {
    fleet: &'a str,
    tz: Tz,
    from: DateTime<Utc>,
    newest: DateTime<Utc>,
    out: &'a Path,
}

/// What `patrol history` shows: the wanted metric's readings per matching entity, when they
/// were null (a telemetry blackout is a finding, not a hole), and the node's reboots.
struct Readings {
    values: BTreeMap<String, Vec<(i64, f64)>>,
    nulls: BTreeMap<String, Vec<i64>>,
    reboots: Vec<i64>,
}

impl Readings {
    fn entities(&self) -> std::collections::BTreeSet<&String> {
        self.values.keys().chain(self.nulls.keys()).collect()
    }
}

/// The wanted metric's readings in the given captures, per matching entity, with its nulls and
/// the node's reboots (a boot time that moved by more than two minutes, which the uptime
/// confirms: `history::rebooted`, so a clock step is none).
fn readings(archive: &Archive, entries: &[Entry], wanted: &Wanted) -> Readings {
    let (snaps, _) = archive.load_entries(entries);
    let mut out = Readings {
        values: BTreeMap::new(),
        nulls: BTreeMap::new(),
        reboots: Vec::new(),
    };
    let mut last: Option<(i64, Option<(i64, i64)>)> = None;
    for s in &snaps {
        let at = s.captured_at.timestamp();
        let uptime = s
            .host
            .as_ref()
            .and_then(|h| h.uptime_s)
            .map(|u| (at, u as i64));
        let boot = s.host.as_ref().and_then(|h| {
            h.boot_time
                .map(|b| b.timestamp())
                .or_else(|| uptime.map(|(at, u)| at - u))
        });
        if let Some(b) = boot {
            if let Some((l, previous)) = last
                && b - l > 120
                && crate::history::rebooted(previous, uptime)
            {
                out.reboots.push(b);
            }
            last = Some((b, uptime));
        }
        for r in crate::history::metrics::readings(s) {
            if r.metric != wanted.metric
                || !crate::rules::select::glob_match(wanted.entity, &r.entity)
            {
                continue;
            }
            match r.value {
                Some(v) => out.values.entry(r.entity).or_default().push((at, v)),
                None => out.nulls.entry(r.entity).or_default().push(at),
            }
        }
    }
    out
}

/// One block per entity on stdout: its name, a sparkline on a terminal, each reading (`null`
/// where the source answered without it), a line where no capture was taken for a while, and
/// the node's reboots.
fn print_readings(series: &Readings, wanted: &Wanted, tz: Tz) {
    let (dim, suffix) = metric_unit(wanted.metric);
    let tty = std::io::stdout().is_terminal();
    let local = |t: i64| {
        Utc.timestamp_opt(t, 0)
            .single()
            .map(|x| x.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    for ent in series.entities() {
        println!(
            "{}",
            plain(&format!("{} {ent} {}", wanted.node, wanted.metric))
        );
        let points = series
            .values
            .get(ent)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if tty && !points.is_empty() {
            println!("  {}", sparkline(points));
        }
        let mut rows: Vec<(i64, Option<f64>)> =
            points.iter().map(|(t, v)| (*t, Some(*v))).collect();
        rows.extend(
            series
                .nulls
                .get(ent)
                .into_iter()
                .flatten()
                .map(|t| (*t, None)),
        );
        rows.sort_by_key(|r| r.0);
        let gap = crate::chart::gap_after(rows.iter().map(|r| r.0));
        for (i, (t, v)) in rows.iter().enumerate() {
            if let Some(prev) = i.checked_sub(1).map(|p| rows[p].0)
                && t - prev > gap
            {
                println!(
                    "  … no capture for {}",
                    crate::units::fmt_duration((t - prev) as f64)
                );
            }
            let value = v
                .map(|v| fmt_value(v, dim, suffix))
                .unwrap_or_else(|| "null".into());
            println!("  {}  {value}", local(*t));
        }
    }
    for b in &series.reboots {
        println!("{} rebooted at {}", plain(wanted.node), local(*b));
    }
}

/// The SVG chart of the readings, under `<out>/history/`; returns its path.
fn write_chart(series: &Readings, wanted: &Wanted, chart: &Chart) -> Result<std::path::PathBuf> {
    let (dim, suffix) = metric_unit(wanted.metric);
    let tz = chart.tz;
    let lines: Vec<crate::chart::Series> = series
        .entities()
        .into_iter()
        .map(|e| crate::chart::Series {
            label: e.clone(),
            points: series.values.get(e).map(Vec::as_slice).unwrap_or_default(),
            projection: None,
            nulls: series.nulls.get(e).map(Vec::as_slice).unwrap_or_default(),
        })
        .collect();
    let day = |t: i64| {
        Utc.timestamp_opt(t, 0)
            .single()
            .map(|x| x.with_timezone(&tz).format("%b %-d %H:%M").to_string())
            .unwrap_or_default()
    };
    let svg = crate::chart::line_chart_marked(
        &format!(
            "{}: {} {} {}",
            chart.fleet, wanted.node, wanted.entity, wanted.metric
        ),
        &lines,
        (chart.from.timestamp(), chart.newest.timestamp()),
        &series
            .reboots
            .iter()
            .map(|t| (*t, String::new()))
            .collect::<Vec<_>>(),
        &|v| fmt_value(v, dim, suffix),
        &day,
    );
    let safe = |s: &str| s.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    let path = chart.out.join("history").join(format!(
        "{}_{}_{}.svg",
        safe(wanted.node),
        safe(wanted.entity),
        safe(wanted.metric)
    ));
    crate::fsutil::write_atomic(&path, svg.as_bytes(), crate::fsutil::Mode::SHARED)?;
    Ok(path)
}

/// A terminal sparkline of values.
fn sparkline(points: &[(i64, f64)]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    points
        .iter()
        .map(|(_, v)| {
            if hi - lo <= f64::EPSILON {
                BARS[0]
            } else {
                BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize]
            }
        })
        .collect()
}
