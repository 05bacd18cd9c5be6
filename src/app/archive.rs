//! `patrol archive stats|prune|copy`, and the thinning by age that runs after an analysis: what
//! looks after the archive rather than reading it for findings.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::analysis::Analyzer;
use super::{EXIT_FINDINGS, EXIT_OK, default_output, fleet_config, open_archive, open_spec};
use crate::cli::{ArchiveArgs, ArchiveCommand, CopyArgs};
use crate::config::{self, ArchiveSpec};
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::store::{Archive, ArchiveMeta, Entry};
use crate::units;

/// The captures open findings point to (their first and latest evidence), from a ledger.
fn protected_captures(
    entries: &[Entry],
    ledger: &Ledger,
) -> std::collections::BTreeSet<(String, i64)> {
    let wanted: Vec<(String, DateTime<Utc>)> = ledger
        .entries
        .values()
        .filter(|e| e.status == crate::ledger::Status::Open)
        .flat_map(|e| {
            e.finding.nodes.iter().flat_map(move |n| {
                [
                    (n.clone(), e.first_seen),
                    (n.clone(), e.finding.observed_at),
                ]
            })
        })
        .collect();
    crate::store::retention::nearest_captures(entries, &wanted)
}

pub(super) fn retention_of(r: &config::RetentionSettings) -> crate::store::retention::Retention {
    crate::store::retention::Retention {
        full: r.full,
        hourly: r.hourly,
        daily: r.daily,
    }
}

/// Thins an archive by age; returns (deleted, kept, protected).
fn prune(
    archive: &Archive,
    ledger: &Ledger,
    retention: &crate::store::retention::Retention,
    dry_run: bool,
) -> Result<(usize, usize, usize)> {
    let entries = archive.list(None, None, None)?;
    let Some(now) = entries.iter().map(|e| e.captured_at).max() else {
        return Ok((0, 0, 0));
    };
    let protect = protected_captures(&entries, ledger);
    let plan = crate::store::retention::plan(&entries, now, retention, &protect);
    let deleted = if dry_run {
        plan.delete.len()
    } else {
        archive.delete(&plan.delete)?
    };
    Ok((deleted, plan.kept, plan.protected))
}

/// The archive is thinned at most once per this much capture time: listing a shared archive
/// every 15 minutes for a change that only matters by the hour is not worth it.
const PRUNE_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// Thins the archive as of the analysis at `at` unless that was done less than [`PRUNE_EVERY`]
/// ago, and remembers when in the ledger.
pub(super) fn prune_due(
    archive: &Archive,
    analyzer: &mut Analyzer,
    retention: &crate::store::retention::Retention,
    at: DateTime<Utc>,
) -> Result<()> {
    if analyzer
        .ledger
        .last_prune
        .is_some_and(|last| at >= last && at - last < PRUNE_EVERY)
    {
        return Ok(());
    }
    let (deleted, _, _) = prune(archive, &analyzer.ledger, retention, false)?;
    if deleted > 0 {
        tracing::info!(
            "thinned {}: {} deleted",
            archive.describe(),
            units::plural(deleted, "capture")
        );
    }
    analyzer.ledger.last_prune = Some(at);
    analyzer.ledger.save(&analyzer.writer.output.ledger())
}

/// `patrol archive stats|prune|copy`.
pub(super) fn archive_cmd(args: ArchiveArgs) -> Result<i32> {
    let prune_args = match args.command {
        ArchiveCommand::Copy(copy) => return archive_copy(&copy),
        ArchiveCommand::Stats => None,
        ArchiveCommand::Prune(p) => Some(p),
    };
    let config = fleet_config(args.config)?;
    let (archive, default_out) = match &config {
        Some(c) => (open_spec(&c.archive, Some(&c.fleet))?, c.output.clone()),
        None => {
            let (archive, fleet, _) = open_archive(&args.archive)?;
            let out = default_output(&archive, &fleet);
            (archive, out)
        }
    };
    let Some(crate::cli::PruneArgs { dry_run, out }) = prune_args else {
        return stats(&archive);
    };
    let retention = config
        .as_ref()
        .and_then(|c| c.retention.as_ref())
        .map(retention_of)
        .unwrap_or_default();
    let out = out.unwrap_or(default_out);
    let ledger = Ledger::load(&out.join("ledger.json"))?;
    let (deleted, kept, protected) = prune(&archive, &ledger, &retention, dry_run)?;
    println!(
        "{}: {} {deleted} captures, kept {kept} ({protected} only because open findings point to them)",
        archive.describe(),
        if dry_run { "would delete" } else { "deleted" }
    );
    Ok(EXIT_OK)
}

/// `patrol archive stats`: captures and bytes per node and per day (and who wrote them, for a
/// shared archive).
fn stats(archive: &Archive) -> Result<i32> {
    let entries = archive.list(None, None, None)?;
    let s = crate::store::retention::stats(&entries);
    let total: u64 = s.nodes.values().map(|n| n.bytes).sum();
    println!(
        "{}: {} captures, {}",
        archive.describe(),
        entries.len(),
        units::fmt_bytes(total as f64)
    );
    println!(
        "{:<16} {:>9} {:>10}  {:<17} newest",
        "node", "captures", "size", "oldest"
    );
    for (
        node,
        crate::store::retention::NodeStats {
            captures: n,
            bytes,
            oldest,
            newest,
        },
    ) in &s.nodes
    {
        let t = |x: &Option<DateTime<Utc>>| {
            x.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default()
        };
        println!(
            "{node:<16} {n:>9} {:>10}  {:<17} {}",
            units::fmt_bytes(*bytes as f64),
            t(oldest),
            t(newest)
        );
    }
    println!("{:<16} {:>9} {:>10}", "day (UTC)", "captures", "size");
    for (day, (n, bytes)) in &s.days {
        println!("{day:<16} {n:>9} {:>10}", units::fmt_bytes(*bytes as f64));
    }
    if let Archive::Postgres(pg) = archive {
        println!("schema version {}; written by:", pg.schema_version()?);
        for (writer, n, last) in pg.writers()? {
            println!(
                "  {:<40} {n:>9} captures, last {}",
                if writer.is_empty() {
                    "(unknown)"
                } else {
                    writer.as_str()
                },
                last.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
    }
    Ok(EXIT_OK)
}

/// Captures read and written per step of a copy: bounds memory, and each step is one
/// statement for a shared archive.
pub(super) const COPY_BATCH: usize = 200;

/// What copying one batch of captures did.
pub(super) struct Copied {
    pub(super) copied: usize,
    bytes: u64,
    unreadable: Vec<String>,
}

/// Copies the given captures, bytes unchanged, checking each decodes first; one that does not
/// is named on stderr and left out.
pub(super) fn copy_batch(source: &Archive, target: &Archive, batch: &[Entry]) -> Result<Copied> {
    let mut done = Copied {
        copied: 0,
        bytes: 0,
        unreadable: Vec::new(),
    };
    let mut good = Vec::with_capacity(batch.len());
    for (entry, read) in source.read_encoded(batch) {
        let name = PathBuf::from(format!("{} {}", source.describe(), entry.describe()));
        match read.and_then(|b| crate::store::decode_stored(&name, &b).map(|s| (s, b))) {
            Ok((snapshot, body)) => {
                done.bytes += body.len() as u64;
                good.push(crate::store::Encoded {
                    node: entry.node.clone(),
                    captured_at: entry.captured_at,
                    schema_version: snapshot.schema_version,
                    body,
                });
            }
            Err(e) => {
                eprintln!("patrol: not copied: {e}");
                done.unreadable.push(entry.describe());
            }
        }
    }
    target.write_encoded(&good)?;
    done.copied = good.len();
    Ok(done)
}

/// `patrol archive copy`: every capture and the fleet's metadata from one archive to another
/// (directory or PostgreSQL, either way). Each capture is checked to decode before it is written,
/// and keeps its bytes; one already at the destination is replaced. Exit 1 when some could not
/// be read.
fn archive_copy(args: &CopyArgs) -> Result<i32> {
    let (from, to) = (args.from.as_str(), args.to.as_str());
    let (source, fleet, tz) = open_archive(from)?;
    let meta = source.read_meta()?.unwrap_or(ArchiveMeta {
        fleet: fleet.clone(),
        timezone: tz.name().to_string(),
        interval_s: None,
    });
    let target_spec = ArchiveSpec::from_arg(to).map_err(|e| Error::Usage(format!("--to: {e}")))?;
    let target = open_spec(&target_spec, Some(&meta.fleet))?;
    if target.describe() == source.describe() {
        return Err(Error::Usage(format!(
            "{}: the source and the destination are the same archive",
            source.describe()
        )));
    }
    match target.read_meta()? {
        Some(existing)
            if existing.timezone != meta.timezone && !target.list(None, None, None)?.is_empty() =>
        {
            return Err(Error::Usage(format!(
                "{}: holds fleet `{}` in time zone {}, but {} is in {}; copy into another fleet (?fleet=NAME) or directory",
                target.describe(),
                existing.fleet,
                existing.timezone,
                source.describe(),
                meta.timezone
            )));
        }
        _ => target.write_meta(&ArchiveMeta {
            fleet: target.fleet().unwrap_or(&meta.fleet).to_string(),
            ..meta.clone()
        })?,
    }
    let entries = source.list(None, None, None)?;
    let nodes: std::collections::BTreeSet<&str> = entries.iter().map(|e| e.node.as_str()).collect();
    let (mut copied, mut bytes, mut unreadable) = (0usize, 0u64, Vec::new());
    for batch in entries.chunks(COPY_BATCH) {
        let done = copy_batch(&source, &target, batch)?;
        copied += done.copied;
        bytes += done.bytes;
        unreadable.extend(done.unreadable);
    }
    println!(
        "copied {copied} captures of {} nodes ({}) from {} to {}{}",
        nodes.len(),
        units::fmt_bytes(bytes as f64),
        source.describe(),
        target.describe(),
        if unreadable.is_empty() {
            String::new()
        } else {
            format!("; {} unreadable, not copied", unreadable.len())
        }
    );
    Ok(if unreadable.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    })
}
