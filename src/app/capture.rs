//! `patrol run` and `patrol daemon`: one capture of the whole fleet (collect → archive →
//! analyse → report), and the loop that repeats it on an interval with the digest on its
//! schedule.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::analysis::Analyzer;
use super::archive::{COPY_BATCH, copy_batch, prune_due, retention_of};
use super::digest::make_digest;
use super::report::Reporter;
use super::{
    EXIT_DEGRADED, EXIT_OK, FleetGuard, config_library, fail_code, hold_fleet, open_spec,
    parse_wait, run_config, shared_mode, window_span,
};
use crate::cli::{DigestArgs, FailOn, RunArgs};
use crate::config::{self, ArchiveSpec};
use crate::error::{Error, Result};
use crate::markdown::plain;
use crate::model::{Severity, Snapshot};
use crate::rules::Library;
use crate::store::{Archive, ArchiveMeta};
use crate::units;

/// `patrol run`: one capture of the fleet a config describes (else this machine).
pub(super) fn run(args: RunArgs) -> Result<i32> {
    let config = run_config(args.config)?;
    warn_exposed_secrets(&config);
    let wait = parse_wait(args.wait.as_deref())?;
    capture_once(
        &config,
        &Capture {
            fail_on: args.fail_on,
            wait,
            tty: std::io::stdout().is_terminal(),
            capture_only: args.capture_only,
            daemon: false,
        },
    )
}

/// How one capture runs: by hand (`run`) or as a daemon's tick.
struct Capture {
    fail_on: Option<FailOn>,
    /// How long to wait for another run of the fleet.
    wait: std::time::Duration,
    /// A person is watching: a line per node and where the report went.
    tty: bool,
    /// Archive only, no analysis (a site collector of a shared archive).
    capture_only: bool,
    /// A daemon's tick: the history window stays in memory for the next tick.
    daemon: bool,
}

/// One warning line per secret file that users other than patrol's can read (the file and the
/// fix, never the content); the run goes on.
fn warn_exposed_secrets(config: &config::Config) {
    for (what, path, strict) in config.secret_files() {
        if let Some(warning) = crate::fsutil::exposed_secret(&path, &what, strict) {
            tracing::warn!("{}", plain(&warning));
        }
    }
}

/// `patrol daemon`: captures on the interval and the digest on its schedule until asked to stop.
pub(super) fn daemon(config_path: Option<PathBuf>) -> Result<i32> {
    let config = run_config(config_path.clone())?;
    warn_exposed_secrets(&config);
    let interval = config.daemon.interval;
    // Signals are taken before the first capture, so a SIGTERM during it is ours to handle: the
    // capture finishes its writes, then the daemon ends.
    let stop = stop_on_signal()?;
    let schedule = config
        .daemon
        .digest
        .as_deref()
        .and_then(|c| c.parse::<croner::Cron>().ok())
        .map(|cron| DigestSchedule {
            cron,
            record: config.output.join(".state/digest.json"),
            config_path,
        });
    eprintln!(
        "patrol: daemon for {} every {}{}",
        config.fleet,
        units::fmt_duration(interval.as_secs_f64()),
        config
            .daemon
            .digest
            .as_ref()
            .map(|d| format!(", digest at `{d}`"))
            .unwrap_or_default()
    );
    while !stop.load(Ordering::SeqCst) {
        let started = std::time::Instant::now();
        // Checked before the tick, so a daemon (re)started after the digest's time makes it
        // first; the record, not this process's start, says whether it was made.
        if let Some(schedule) = &schedule {
            scheduled_digest(schedule, &config, interval);
        }
        tick(&config, interval);
        wait_for_next_tick(started, interval, &stop);
    }
    eprintln!("patrol: stopped");
    Ok(EXIT_OK)
}

/// A flag set when SIGTERM or SIGINT arrives, by a small runtime on its own thread.
fn stop_on_signal() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the signal handler: {e}")))?;
    let (mut term, mut int) = runtime
        .block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            Ok::<_, std::io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })
        .map_err(|e| Error::Runtime(format!("cannot listen for signals: {e}")))?;
    let flag = stop.clone();
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        });
        eprintln!("patrol: stop requested; finishing the capture under way");
        flag.store(true, Ordering::SeqCst);
    });
    Ok(stop)
}

/// The daemon's digest: when (`[daemon] digest`), where the last one made is recorded, and the
/// config it is made from.
struct DigestSchedule {
    cron: croner::Cron,
    record: PathBuf,
    config_path: Option<PathBuf>,
}

/// Makes the scheduled digest when one is due; failures are reported, never fatal to the daemon.
fn scheduled_digest(
    schedule: &DigestSchedule,
    config: &config::Config,
    interval: std::time::Duration,
) {
    let now = Utc::now().with_timezone(&config.timezone);
    let due = match digest_due(&schedule.cron, now, &schedule.record) {
        Ok(Some(due)) => due,
        Ok(None) => return,
        Err(e) => {
            eprintln!("patrol: digest schedule: {}", plain(&e.to_string()));
            return;
        }
    };
    if now.with_timezone(&Utc) - due > chrono::Duration::seconds(120) {
        eprintln!(
            "patrol: making the digest scheduled at {}, missed while the daemon was not running",
            due.with_timezone(&config.timezone).format("%Y-%m-%d %H:%M")
        );
    }
    let args = DigestArgs {
        week: None,
        config: schedule.config_path.clone(),
        archive: "snapshots".into(),
        out: None,
        send: config.telegram.is_some(),
        dry_run: false,
        wait: None,
    };
    if let Err(e) = make_digest(&args, interval) {
        eprintln!("patrol: digest failed: {}", plain(&e.to_string()));
    }
    // Recorded even when it failed: a digest is not retried every tick (a message waiting in the
    // outbox goes with the next send).
    if let Err(e) = save_digest_record(&schedule.record, due) {
        eprintln!("patrol: {}", plain(&e.to_string()));
    }
}

/// One tick of the daemon: a capture, or for a config without nodes (a shared archive's
/// reporter) a report. A failure is reported and the daemon goes on.
fn tick(config: &config::Config, interval: std::time::Duration) {
    let (what, done) = if config.nodes.is_empty() {
        let report = Reporter::from_config(config).and_then(|mut r| {
            r.daemon = true;
            r.analyse(None, interval)
        });
        ("report", report.map(|_| EXIT_OK))
    } else {
        let capture = capture_once(
            config,
            &Capture {
                fail_on: None,
                wait: interval,
                tty: false,
                capture_only: config.daemon.capture_only,
                daemon: true,
            },
        );
        ("capture", capture)
    };
    if let Err(e) = done {
        eprintln!("patrol: {what} failed: {}", plain(&e.to_string()));
    }
}

/// Sleeps until the next tick, or until a stop is requested. A capture longer than the interval
/// is reported and the missed ticks are skipped: captures never stack up.
fn wait_for_next_tick(
    started: std::time::Instant,
    interval: std::time::Duration,
    stop: &AtomicBool,
) {
    let took = started.elapsed();
    let periods = (took.as_secs_f64() / interval.as_secs_f64()).floor() as u32 + 1;
    if periods > 1 {
        eprintln!(
            "patrol: the capture took {}, longer than the {} interval; skipping {} tick(s)",
            units::fmt_duration(took.as_secs_f64()),
            units::fmt_duration(interval.as_secs_f64()),
            periods - 1
        );
    }
    let next = started + interval * periods;
    while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < next {
        std::thread::sleep(
            std::time::Duration::from_millis(100)
                .min(next.saturating_duration_since(std::time::Instant::now())),
        );
    }
}

/// The scheduled digest to make now, if any: the most recent occurrence of `cron` at or before
/// `now`, when it is later than the one `record` says was last made. Only that one: weeks missed
/// before it are not made one by one. Without a record (a daemon's first start ever) the most
/// recent occurrence is recorded as the starting point and nothing is made, so a new daemon never
/// sends a digest of a week it did not schedule.
fn digest_due(
    cron: &croner::Cron,
    now: DateTime<Tz>,
    record: &Path,
) -> Result<Option<DateTime<Utc>>> {
    let Ok(due) = cron.find_previous_occurrence(&now, true) else {
        return Ok(None);
    };
    let due = due.with_timezone(&Utc);
    let last = match std::fs::read_to_string(record) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("occurrence")?.as_str().map(str::to_string))
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: not a digest record (expected {{\"occurrence\": \"<RFC 3339 time>\"}}); remove it to start again from the next digest",
                    record.display()
                ))
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            save_digest_record(record, due)?;
            return Ok(None);
        }
        Err(e) => return Err(Error::Usage(format!("{}: {e}", record.display()))),
    };
    Ok((due > last).then_some(due))
}

fn save_digest_record(record: &Path, occurrence: DateTime<Utc>) -> Result<()> {
    let text = serde_json::json!({ "occurrence": occurrence.to_rfc3339() }).to_string();
    crate::fsutil::write_atomic(record, text.as_bytes(), crate::fsutil::Mode::Private)
}

/// One capture of the whole fleet, its archive, analysis and report.
fn capture_once(config: &config::Config, how: &Capture) -> Result<i32> {
    if config.nodes.is_empty() {
        return Err(Error::Usage(
            "the configuration lists no nodes to capture: a shared archive's reporter runs `patrol report --config` or `patrol daemon`".into(),
        ));
    }
    let library = config_library(config)?;
    let span = library.history_span(window_span(&config.window)?);
    let state_root = config.state_root();
    let _lock = lock_fleet(config, how)?;
    // A directory archive that cannot be opened is a local problem: stop. A shared archive out of
    // reach must not cost the capture: it waits in a local spool for the next run.
    let archive = match open_spec(&config.archive, Some(&config.fleet)) {
        Err(e) if matches!(config.archive, ArchiveSpec::Dir(_)) => return Err(e),
        other => other,
    };
    let state = crate::sources::CollectState::load(state_root);
    let show = |s: &Snapshot| {
        if how.tty {
            println!("{}", plain(&crate::sources::describe(s)));
        }
    };
    let (snapshots, next_state) = crate::sources::capture_fleet(config, &state, &show);
    let failing = failing_sources(&snapshots);
    announce_failing(&failing, how.tty);
    let settled = |code: i32| {
        if failing.is_empty() {
            code
        } else {
            EXIT_DEGRADED
        }
    };
    let Some(at) = snapshots.iter().map(|s| s.captured_at).max() else {
        return Err(Error::Runtime("the capture produced no snapshots".into()));
    };
    let archive = store_capture(config, archive, &snapshots, &next_state)?;
    // The state is saved after the snapshots: a crash in between reads some log lines twice
    // rather than losing them.
    next_state.save(state_root)?;
    if how.capture_only {
        if how.tty {
            println!(
                "{} snapshots archived in {}",
                snapshots.len(),
                archive.describe()
            );
        }
        return Ok(settled(EXIT_OK));
    }
    crate::fsutil::crash_point("after-archive");
    let worst = analyse_capture(config, library, &archive, (at, span), how)?;
    Ok(settled(fail_code(worst, how.fail_on)))
}

/// One run of a fleet at a time: two would interleave the archive state and the report. The
/// output is locked too (unless only capturing), so a report writing there waits its turn. Then
/// the temp files killed writes left are removed.
fn lock_fleet(config: &config::Config, how: &Capture) -> Result<FleetGuard> {
    let state_root = config.state_root();
    let mut roots = vec![state_root];
    let mut clean = vec![state_root.join(".state")];
    if !how.capture_only {
        roots.push(config.output.as_path());
        clean.push(config.output.clone());
        // Made here with the reports' mode, not as a side effect of the private lock in it.
        crate::fsutil::create_dirs(&config.output, shared_mode(Some(config)), &roots)?;
    }
    let clean: Vec<&Path> = clean.iter().map(PathBuf::as_path).collect();
    let started = std::time::SystemTime::now();
    let lock = hold_fleet(&roots, how.wait, &clean)?;
    if let ArchiveSpec::Dir(dir) = &config.archive {
        remove_archive_temps(dir, started);
    }
    Ok(lock)
}

/// A capture killed mid-write left its temp file beside the node's newest captures
/// (`<node>/<day>/`) or the fleet's metadata: older days are never written again.
fn remove_archive_temps(dir: &Path, started: std::time::SystemTime) {
    crate::fsutil::remove_stale_temps(dir, started, 0);
    for node in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let mut days: Vec<PathBuf> = std::fs::read_dir(node.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|d| d.path())
            .filter(|p| p.is_dir())
            .collect();
        days.sort();
        for day in days.iter().rev().take(2) {
            crate::fsutil::remove_stale_temps(day, started, 0);
        }
    }
}

/// A blind run must never look like a quiet one: each failing source is named on stderr, one
/// line each, unless the terminal summary already showed it.
fn announce_failing(failing: &[String], tty: bool) {
    if tty && std::io::stderr().is_terminal() {
        return;
    }
    let stamp = if std::io::stderr().is_terminal() {
        String::new()
    } else {
        format!("{} ", Utc::now().format("%Y-%m-%dT%H:%M:%SZ"))
    };
    for line in failing {
        eprintln!("{stamp}patrol: {line}");
    }
}

/// Writes the capture to the archive; a shared archive out of reach gets it in the local spool
/// instead (with the collector's state, so the next run goes on from here) and the run fails.
fn store_capture(
    config: &config::Config,
    archive: Result<Archive>,
    snapshots: &[Snapshot],
    next_state: &crate::sources::CollectState,
) -> Result<Archive> {
    let state_root = config.state_root();
    let spool = Archive::open(state_root.join(".state/spool"));
    match archive.and_then(|a| archive_capture(&a, config, snapshots, &spool).map(|()| a)) {
        Ok(a) => Ok(a),
        Err(e) if matches!(config.archive, ArchiveSpec::Postgres { .. }) => {
            spool.write_all(snapshots)?;
            next_state.save(state_root)?;
            Err(Error::Runtime(format!(
                "{e}\n{} of this capture {} in {} and {} to the archive with the next run",
                units::plural(snapshots.len(), "snapshot"),
                if snapshots.len() == 1 {
                    "waits"
                } else {
                    "wait"
                },
                spool.describe(),
                if snapshots.len() == 1 { "goes" } else { "go" }
            )))
        }
        Err(e) => Err(e),
    }
}

/// Analyses every capture round since the last analysis, thins the archive when due and, on a
/// terminal, says where the report is; returns the worst open or new severity.
fn analyse_capture(
    config: &config::Config,
    library: Library,
    archive: &Archive,
    (at, span): (DateTime<Utc>, chrono::Duration),
    how: &Capture,
) -> Result<Option<Severity>> {
    let mut analyzer = Analyzer::new(library, config.timezone, &config.fleet, &config.output)?;
    analyzer.configure(&config.report)?;
    analyzer.keep_window_in_memory = how.daemon;
    let analysis = analyzer.analyse_through(archive, at, span)?;
    if let Some(r) = &config.retention {
        prune_due(archive, &mut analyzer, &retention_of(r), at)?;
    }
    if how.tty {
        let rolling = analyzer.writer.output.rolling();
        match &analysis.section_file {
            Some(f) => println!("report: {} (section {})", rolling.display(), f.display()),
            None => println!("nothing new; report: {}", rolling.display()),
        }
    }
    Ok(analysis.worst)
}

/// One line per source that failed in a capture: node, source and its error on one line.
fn failing_sources(snapshots: &[crate::model::Snapshot]) -> Vec<String> {
    snapshots
        .iter()
        .flat_map(|snap| {
            snap.sources.iter().filter(|s| !s.ok).map(|s| {
                let error = s.error.as_deref().unwrap_or("no error recorded");
                plain(&format!(
                    "degraded: node {} source {} failed: {}",
                    snap.node,
                    s.name,
                    error.split_whitespace().collect::<Vec<_>>().join(" ")
                ))
            })
        })
        .collect()
}

/// Writes one capture round to the archive, after whatever an earlier run left in the spool, with
/// the fleet's metadata.
fn archive_capture(
    archive: &Archive,
    config: &config::Config,
    snapshots: &[crate::model::Snapshot],
    spool: &Archive,
) -> Result<()> {
    // The configuration is the authority on the fleet's time zone; the metadata follows it.
    let meta = archive.read_meta()?;
    if meta
        .as_ref()
        .is_none_or(|m| m.timezone != config.timezone.name())
    {
        archive.write_meta(&ArchiveMeta {
            fleet: archive.fleet().unwrap_or(&config.fleet).to_string(),
            timezone: config.timezone.name().to_string(),
            interval_s: meta.and_then(|m| m.interval_s),
        })?;
    }
    let waiting = spool.list(None, None, None)?;
    if !waiting.is_empty() {
        let mut sent = 0;
        for batch in waiting.chunks(COPY_BATCH) {
            sent += copy_batch(spool, archive, batch)?.copied;
            // Gone from the spool only once the archive has them (unreadable ones too: they
            // were named, and would fail the same way every run).
            spool.delete(batch)?;
        }
        eprintln!(
            "patrol: {} kept while {} was out of reach now archived",
            units::plural(sent, "snapshot"),
            archive.describe()
        );
    }
    archive.write_all(snapshots)
}
