//! The only module that wires layers together: collect → archive → history window → rules →
//! ledger → report. Errors become exit code 2 with one clear message.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use clap::Parser;

use crate::cli::{ArchiveCommand, Cli, Command, FailOn, Format, RulesCommand};
use crate::config;
use crate::config::ArchiveSpec;
use crate::error::{Error, Result};
use crate::history::Window;
use crate::history::metrics::metric_unit;
use crate::ledger::{Ledger, Reason, Recheck};
use crate::markdown::plain;
use crate::model::{Finding, Severity};
use crate::report::{self, Output};
use crate::rules::{self, Evaluation, Library};
use crate::simulate;
use crate::store::PgTarget;
use crate::store::{Archive, ArchiveMeta, Entry, group_rounds, read_snapshot_file};
use crate::units::{self, fmt_value};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FINDINGS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
/// `patrol run`: a node or source could not be read in this capture. It wins over
/// [`EXIT_FINDINGS`] (a partial capture's findings are not the whole story) and loses to
/// [`EXIT_ERROR`].
pub const EXIT_DEGRADED: i32 = 3;

pub fn main() -> i32 {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // Colours only for a person at a terminal (and never under NO_COLOR); under cron or systemd
    // the log is a file, where escape codes are noise and each line needs its time.
    let tty = std::io::stderr().is_terminal();
    let colour = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let log = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PATROL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour);
    let _ = if tty {
        log.without_time().try_init()
    } else {
        log.try_init()
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote fleet text (an endpoint's answer, a name): shown, never obeyed.
            let stamp = if tty {
                String::new()
            } else {
                format!("{} ", Utc::now().format("%Y-%m-%dT%H:%M:%SZ"))
            };
            eprintln!("{stamp}patrol: {}", plain(&e.to_string()));
            EXIT_ERROR
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run {
            config,
            fail_on,
            wait,
            capture_only,
        } => run(config, fail_on, wait.as_deref(), capture_only),
        Command::Report {
            archive,
            config,
            at,
            rules,
            out,
            window,
            fail_on,
            acks,
            format,
            textfile,
            wait,
        } => report_cmd(
            archive.as_deref(),
            config,
            at.as_deref(),
            rules,
            out,
            window.as_deref(),
            fail_on,
            ReportOptions {
                acks,
                format,
                textfile,
                wait,
            },
        ),
        Command::Demo {
            archive,
            out,
            rules,
        } => demo(&archive, &out, rules),
        Command::Simulate { scenario, out } => simulate_cmd(&scenario, &out),
        Command::Show { target, archive } => show(&target, &archive),
        Command::Rules { command, rules } => rules_cmd(command, rules),
        Command::Daemon { config } => daemon(config),
        Command::Archive {
            command,
            config,
            archive,
        } => archive_cmd(command, config, &archive),
        Command::Compare {
            a,
            b,
            at,
            archive,
            out,
            format,
        } => compare_cmd(&a, &b, at.as_deref(), &archive, out, format),
        Command::History {
            node,
            entity,
            metric,
            since,
            archive,
            out,
        } => history_cmd(
            &node,
            entity.as_deref(),
            metric.as_deref(),
            since.as_deref(),
            &archive,
            out,
        ),
        Command::Digest {
            week,
            config,
            archive,
            out,
            send,
            dry_run,
            wait,
        } => digest_cmd(
            week.as_deref(),
            config,
            &archive,
            out,
            (send, dry_run),
            parse_wait(wait.as_deref())?,
        ),
        Command::Backtest {
            rule,
            archive,
            rules,
            window,
        } => backtest(&rule, &archive, rules.as_deref(), &window),
    }
}

/// The rule library a fleet config names, else the `rules/` beside the config, else the
/// built-in one.
fn config_library(config: &config::Config) -> Result<Library> {
    if !config.rules.is_empty() {
        return Library::load_all(&config.rules);
    }
    match &config.report.config_dir {
        Some(dir) if dir.join("rules").is_dir() => Library::load(&dir.join("rules")),
        Some(_) => built_in_library(),
        None => load_library(None),
    }
}

/// The rule library: an explicit path, else ./rules, else the library built into the binary.
pub fn load_library(path: Option<&Path>) -> Result<Library> {
    match path {
        Some(p) => Library::load_all(&[p.to_path_buf()]),
        None if Path::new("rules").is_dir() => Library::load(Path::new("rules")),
        None => built_in_library(),
    }
}

fn built_in_library() -> Result<Library> {
    Library::from_sources(
        &rules::defaults::FILES
            .iter()
            .map(|(name, text)| {
                (
                    PathBuf::from(format!("(built-in) rules/{name}")),
                    text.to_string(),
                )
            })
            .collect::<Vec<_>>(),
    )
}

/// `report-templates/` beside the config (or here, without one), when it exists.
fn template_dir(config_dir: Option<&Path>) -> Option<PathBuf> {
    let d = match config_dir {
        Some(dir) => dir.join("report-templates"),
        None => PathBuf::from("report-templates"),
    };
    d.is_dir().then_some(d)
}

/// Everything one analysis needs besides the window.
pub struct Analyzer {
    pub library: Library,
    pub tz: Tz,
    pub fleet: String,
    pub output: Output,
    pub ledger: Ledger,
    /// Where to write the Prometheus textfile of open findings, if anywhere.
    pub textfile: Option<PathBuf>,
    /// Templates that override the built-in ones, if any.
    pub templates: Option<PathBuf>,
    /// Dated section files older than this (before the analysed capture) are deleted.
    pub keep_dated: chrono::Duration,
}

/// What one analysis did.
pub struct Analysis {
    pub findings: Vec<Finding>,
    pub section_file: Option<PathBuf>,
    /// Worst of what was reported now and what is still open.
    pub worst: Option<Severity>,
    /// What the ledger made of the findings.
    pub outcome: crate::ledger::Outcome,
}

/// `patrol report` options about what else to read and write.
pub struct ReportOptions {
    pub acks: Option<PathBuf>,
    pub format: Format,
    pub textfile: Option<PathBuf>,
    /// How long to wait for another run or report of the fleet (`--wait`).
    pub wait: Option<String>,
}

impl Analyzer {
    pub fn new(library: Library, tz: Tz, fleet: &str, out_dir: &Path) -> Result<Analyzer> {
        let output = Output {
            dir: out_dir.to_path_buf(),
            mode: crate::fsutil::Mode::SHARED,
        };
        let mut ledger = Ledger::load(&output.ledger())?;
        // A section the previous run saved but may not have written (it crashed in between).
        if let Some(pending) = ledger.pending.take() {
            report::commit_section(&output, &pending)?;
            ledger.save(&output.ledger())?;
        }
        Ok(Analyzer {
            library,
            tz,
            fleet: fleet.to_string(),
            output,
            ledger,
            textfile: None,
            templates: template_dir(None),
            keep_dated: chrono::Duration::days(90),
        })
    }

    /// Applies `[report]` settings: the re-emission policy, acknowledgements, the textfile.
    pub fn configure(&mut self, settings: &config::ReportSettings) -> Result<()> {
        self.ledger.policy = crate::ledger::Policy {
            repeat_after: chrono::Duration::from_std(settings.repeat_after)
                .unwrap_or(chrono::Duration::hours(24)),
            material_change_pct: settings.material_change_pct,
            worse_rate_pct: settings.worse_rate_pct,
            keep_resolved: chrono::Duration::from_std(settings.keep_resolved)
                .unwrap_or(chrono::Duration::days(30)),
        };
        self.keep_dated =
            chrono::Duration::from_std(settings.keep_dated).unwrap_or(chrono::Duration::days(90));
        if let Some(path) = &settings.acknowledged {
            self.ledger.acks = crate::ledger::acks::Acks::load(path, self.tz)?;
        }
        self.textfile = settings.textfile.clone();
        self.output.mode = crate::fsutil::Mode::Shared(settings.file_mode);
        if let Some(dir) = &settings.config_dir {
            self.templates = template_dir(Some(dir));
        }
        Ok(())
    }

    /// Runs the rules over the window as of its newest capture, updates the ledger and writes a
    /// section when there is something to say.
    pub fn analyse(&mut self, window: &Window) -> Result<Analysis> {
        let Some(at) = window.latest_at() else {
            return Ok(Analysis {
                findings: Vec::new(),
                section_file: None,
                worst: None,
                outcome: Default::default(),
            });
        };
        let mut evaluation = self.library.evaluate(window, self.tz);
        let findings = std::mem::take(&mut evaluation.findings);
        let outcome = self
            .ledger
            .update(findings.clone(), at, |f| recheck(&evaluation, window, f));
        crate::fsutil::crash_point("before-ledger");
        let worst_new = outcome.reported.iter().map(|n| n.finding.severity).max();
        let worst = worst_new.max(self.ledger.worst_open());
        let ledger_path = self.output.ledger();
        let section_file = match report::build_section(
            &outcome,
            self.ledger.worst_open(),
            at,
            self.tz,
            self.ledger.sections.back().map(|s| s.at),
        ) {
            Some(section) => {
                // The ledger (with the section it is about to write) is saved first, the
                // report second, the ledger cleared third: a crash anywhere loses nothing
                // and repeats nothing (the next run finishes the pending section).
                self.ledger
                    .count_month(&report::month_key(at, self.tz), &outcome);
                let pending = report::render_section(
                    &self.output,
                    &self.fleet,
                    self.tz,
                    at,
                    &section,
                    &self.ledger.months,
                    self.templates.as_deref(),
                )?;
                self.ledger.log_section(at, &outcome);
                self.ledger.pending = Some(pending.clone());
                self.ledger.save(&ledger_path)?;
                crate::fsutil::crash_point("after-ledger");
                let dated = report::commit_section(&self.output, &pending)?;
                crate::fsutil::crash_point("after-report");
                self.ledger.pending = None;
                self.ledger.save(&ledger_path)?;
                report::prune_dated(&self.output, at - self.keep_dated)?;
                Some(dated)
            }
            None => {
                self.ledger.save(&ledger_path)?;
                None
            }
        };
        if let Some(path) = &self.textfile {
            crate::fsutil::write_atomic(
                path,
                crate::report::prometheus_textfile(
                    &self.fleet,
                    &self.ledger,
                    &source_health(window),
                    at,
                )
                .as_bytes(),
                // node-exporter, which reads it, runs as its own user.
                crate::fsutil::Mode::Public,
            )?;
        }
        Ok(Analysis {
            findings,
            section_file,
            worst,
            outcome,
        })
    }

    /// Analyses, oldest first, every capture round after the ledger's last analysis up to `at`.
    /// A run killed before its ledger was saved leaves its capture unanalysed, and the events of
    /// that one capture (a jump, a removal) would never reach a section if the next run read
    /// only its own. Rounds older than the window are not revisited; a fleet's first analysis
    /// reads only `at`. Returns the last analysis, with the worst of them all.
    pub fn analyse_through(
        &mut self,
        archive: &Archive,
        at: DateTime<Utc>,
        span: chrono::Duration,
    ) -> Result<Analysis> {
        let from = match self.ledger.last_analysis {
            Some(last) if last < at => last.max(at - span),
            _ => return self.analyse(&load_window(archive, at, span)?),
        };
        let missed: Vec<Entry> = archive
            .list(Some(from), Some(at), None)?
            .into_iter()
            .filter(|e| e.captured_at > from)
            .collect();
        let missed = rounds(missed);
        let first_at = missed
            .first()
            .and_then(|r| r.iter().map(|e| e.captured_at).max());
        let (Some(first_at), true) = (first_at, missed.len() > 1) else {
            return self.analyse(&load_window(archive, at, span)?);
        };
        tracing::info!(
            "analysing {} capture rounds since the last analysis",
            missed.len()
        );
        let mut window = load_window(archive, first_at, span)?;
        let mut analysis = self.analyse(&window)?;
        for round in &missed[1..] {
            for s in archive.load_each(round).into_iter().flatten() {
                window.push(s);
            }
            if let Some(latest) = window.latest_at() {
                window.evict_before(latest.timestamp() - window.span_s());
            }
            let next = self.analyse(&window)?;
            analysis = Analysis {
                worst: analysis.worst.max(next.worst),
                section_file: next.section_file.or(analysis.section_file),
                ..next
            };
        }
        Ok(analysis)
    }
}

/// The fleet locks a command holds while it writes (see [`hold_fleet`]).
pub struct FleetGuard {
    _locks: Vec<crate::fsutil::RunLock>,
}

/// Takes the lock `patrol run` takes (`<root>/.state/run.lock`) for each root, in order
/// (the collector's state root first, then the output), waiting up to `wait` for another holder;
/// then removes the temp files killed writes left under `clean`. Two commands writing one
/// report can therefore never interleave, whichever commands they are.
pub fn hold_fleet(
    roots: &[&Path],
    wait: std::time::Duration,
    clean: &[&Path],
) -> Result<FleetGuard> {
    let started = std::time::SystemTime::now();
    let mut locks = Vec::new();
    let mut taken: Vec<PathBuf> = Vec::new();
    for root in roots {
        let path = root.join(".state/run.lock");
        // The same directory named twice (a shared archive's state lives in its output).
        let key = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        if taken.contains(&key) {
            continue;
        }
        locks.push(crate::fsutil::RunLock::acquire(&path, wait, roots)?);
        taken.push(key);
    }
    for dir in clean {
        let removed = crate::fsutil::remove_stale_temps(dir, started, 8);
        if removed > 0 {
            tracing::warn!(
                "removed {} left by an interrupted write in {}",
                units::plural(removed, "temporary file"),
                dir.display()
            );
        }
    }
    Ok(FleetGuard { _locks: locks })
}

fn parse_wait(wait: Option<&str>) -> Result<std::time::Duration> {
    Ok(match wait {
        Some(w) => std::time::Duration::from_secs_f64(
            units::parse_duration_secs(w).map_err(|e| Error::Usage(format!("--wait: {e}")))?,
        ),
        None => std::time::Duration::ZERO,
    })
}

/// Can an open finding's evidence be read at the window's newest capture, and what does it say?
/// (The verdict is the rules' own: [`crate::rules::resolution`].)
fn recheck(evaluation: &Evaluation, window: &Window, f: &Finding) -> Recheck {
    use crate::rules::resolution::{Verdict, verdict};
    match verdict(evaluation, window, f) {
        Verdict::Healthy { now } => Recheck::Gone { now },
        Verdict::Unchecked { .. } => Recheck::CouldNotCheck,
        Verdict::Holds => Recheck::Holds,
    }
}

fn fail_code(worst: Option<Severity>, fail_on: Option<FailOn>) -> i32 {
    let threshold = match fail_on {
        None => return EXIT_OK,
        Some(FailOn::Warning) => Severity::Warning,
        Some(FailOn::Info) => Severity::Info,
        Some(FailOn::Suggestion) => Severity::Suggestion,
    };
    if worst.is_some_and(|w| w >= threshold) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

fn window_span(text: &str) -> Result<chrono::Duration> {
    let secs =
        units::parse_duration_secs(text).map_err(|e| Error::Usage(format!("--window: {e}")))?;
    Ok(chrono::Duration::seconds(secs as i64))
}

/// Fills a window from the archive with the captures in `(at - span, at]`.
fn load_window(archive: &Archive, at: DateTime<Utc>, span: chrono::Duration) -> Result<Window> {
    let entries = archive.list(Some(at - span), Some(at), None)?;
    let (mut snaps, _skipped) = archive.load_entries(&entries);
    snaps.sort_by(|a, b| {
        a.captured_at
            .cmp(&b.captured_at)
            .then_with(|| a.node.cmp(&b.node))
    });
    let mut window = Window::new(span);
    for s in snaps {
        window.push(s);
    }
    Ok(window)
}

/// Opens the archive a spec names; a shared archive defaults to `default_fleet`.
fn open_spec(spec: &ArchiveSpec, default_fleet: Option<&str>) -> Result<Archive> {
    match spec {
        ArchiveSpec::Dir(dir) => Ok(Archive::open(dir)),
        ArchiveSpec::Postgres { target, password } => {
            let password = password
                .as_ref()
                .map(|s| {
                    s.resolve().map_err(|e| {
                        Error::Usage(format!("{}: archive password: {e}", target.display()))
                    })
                })
                .transpose()?;
            Archive::connect(target, password.as_deref(), default_fleet)
        }
    }
}

/// The archive named by `--archive` (a directory that must exist, or a `postgres://` URL),
/// with its fleet name and time zone.
fn open_archive(arg: &str) -> Result<(Archive, String, Tz)> {
    let spec = ArchiveSpec::from_arg(arg).map_err(|e| Error::Usage(format!("--archive: {e}")))?;
    if let ArchiveSpec::Dir(dir) = &spec
        && !dir.is_dir()
    {
        return Err(Error::Usage(format!(
            "{}: no such archive directory",
            dir.display()
        )));
    }
    let archive = open_spec(&spec, None)?;
    let (fleet, tz) = archive_meta(&archive)?;
    Ok((archive, fleet, tz))
}

fn archive_meta(archive: &Archive) -> Result<(String, Tz)> {
    let name = match (archive.fleet(), archive.dir()) {
        (Some(f), _) => f.to_string(),
        (None, Some(dir)) => dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "fleet".into()),
        (None, None) => "fleet".into(),
    };
    match archive.read_meta()? {
        Some(meta) => {
            let tz = meta.timezone.parse::<Tz>().map_err(|_| {
                Error::bad_file(
                    format!("{} (fleet metadata)", archive.describe()),
                    format!("`{}` is not an IANA time zone", meta.timezone),
                )
            })?;
            Ok((meta.fleet, tz))
        }
        None => Ok((name, chrono_tz::UTC)),
    }
}

fn parse_time(text: &str, tz: Tz) -> Result<DateTime<Utc>> {
    let spec = crate::units::parse_time(text).map_err(Error::Usage)?;
    Ok(spec.resolve(tz, Utc::now()))
}

/// The fleet config given, else ./patrol.toml when there is one.
fn fleet_config(config_path: Option<PathBuf>) -> Result<Option<config::Config>> {
    match config_path {
        Some(p) => config::load(&p).map(Some),
        None if Path::new("patrol.toml").exists() => {
            config::load(Path::new("patrol.toml")).map(Some)
        }
        None => Ok(None),
    }
}

/// The config of a run: as [`fleet_config`], else this machine.
fn run_config(config_path: Option<PathBuf>) -> Result<config::Config> {
    Ok(fleet_config(config_path)?
        .unwrap_or_else(|| config::local_default(crate::sources::default_docker_socket())))
}

fn run(
    config_path: Option<PathBuf>,
    fail_on: Option<FailOn>,
    wait: Option<&str>,
    capture_only: bool,
) -> Result<i32> {
    let config = run_config(config_path)?;
    warn_exposed_secrets(&config);
    let wait = parse_wait(wait)?;
    capture_once(
        &config,
        fail_on,
        wait,
        std::io::stdout().is_terminal(),
        capture_only,
    )
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
fn daemon(config_path: Option<PathBuf>) -> Result<i32> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let config = run_config(config_path.clone())?;
    warn_exposed_secrets(&config);
    let interval = config.daemon.interval;
    let stop = Arc::new(AtomicBool::new(false));
    // Signals are taken before the first capture, so a SIGTERM during it is ours to handle: the
    // capture finishes its writes, then the daemon ends.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the signal handler: {e}")))?;
    let (mut term, mut int) = runtime
        .block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            Ok::<_, std::io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })
        .map_err(|e| Error::Usage(format!("cannot listen for signals: {e}")))?;
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            });
            eprintln!("patrol: stop requested; finishing the capture under way");
            stop.store(true, Ordering::SeqCst);
        });
    }
    let digest_cron: Option<croner::Cron> =
        config.daemon.digest.as_deref().and_then(|c| c.parse().ok());
    let digest_record = config.output.join(".state/digest.json");
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
        if let Some(cron) = &digest_cron {
            let now = Utc::now().with_timezone(&config.timezone);
            match digest_due(cron, now, &digest_record) {
                Ok(Some(due)) => {
                    if now.with_timezone(&Utc) - due > chrono::Duration::seconds(120) {
                        eprintln!(
                            "patrol: making the digest scheduled at {}, missed while the daemon was not running",
                            due.with_timezone(&config.timezone).format("%Y-%m-%d %H:%M")
                        );
                    }
                    let send = config.telegram.is_some();
                    let made = digest_cmd(
                        None,
                        config_path.clone(),
                        "snapshots",
                        None,
                        (send, false),
                        interval,
                    );
                    if let Err(e) = made {
                        eprintln!("patrol: digest failed: {}", plain(&e.to_string()));
                    }
                    // Recorded even when it failed: a digest is not retried every tick (a
                    // message waiting in the outbox goes with the next send).
                    if let Err(e) = save_digest_record(&digest_record, due) {
                        eprintln!("patrol: {}", plain(&e.to_string()));
                    }
                }
                Ok(None) => {}
                Err(e) => eprintln!("patrol: digest schedule: {}", plain(&e.to_string())),
            }
        }
        // A config without nodes is a shared archive's reporter: each tick reports instead.
        let (what, tick) = if config.nodes.is_empty() {
            let report = Reporter::from_config(&config).and_then(|r| r.analyse(None, interval));
            ("report", report.map(|_| EXIT_OK))
        } else {
            let capture = capture_once(&config, None, interval, false, config.daemon.capture_only);
            ("capture", capture)
        };
        if let Err(e) = tick {
            eprintln!("patrol: {what} failed: {}", plain(&e.to_string()));
        }
        let took = started.elapsed();
        // A capture longer than the interval is reported and the missed ticks are skipped:
        // captures never stack up.
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
    eprintln!("patrol: stopped");
    Ok(EXIT_OK)
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
fn capture_once(
    config: &config::Config,
    fail_on: Option<FailOn>,
    wait: std::time::Duration,
    tty: bool,
    capture_only: bool,
) -> Result<i32> {
    if config.nodes.is_empty() {
        return Err(Error::Usage(
            "the configuration lists no nodes to capture: a shared archive's reporter runs `patrol report --config` or `patrol daemon`".into(),
        ));
    }
    let library = config_library(config)?;
    let span = window_span(&config.window)?;
    let state_root = config.state_root();
    // One run of a fleet at a time: two would interleave the archive state and the report. The
    // output is locked too (unless only capturing), so a report writing there waits its turn.
    let archive_dir = match &config.archive {
        ArchiveSpec::Dir(d) => Some(d.as_path()),
        ArchiveSpec::Postgres { .. } => None,
    };
    let mut roots = vec![state_root];
    let mut clean = vec![state_root.join(".state")];
    if !capture_only {
        roots.push(config.output.as_path());
        clean.push(config.output.clone());
        // Made here with the reports' mode, not as a side effect of the private lock in it.
        crate::fsutil::create_dirs(&config.output, shared_mode(Some(config)), &roots)?;
    }
    let clean: Vec<&Path> = clean.iter().map(PathBuf::as_path).collect();
    let started = std::time::SystemTime::now();
    let _lock = hold_fleet(&roots, wait, &clean)?;
    if let Some(dir) = archive_dir {
        // A capture killed mid-write left its temp file beside the node's newest captures
        // (`<node>/<day>/`) or the fleet's metadata: older days are never written again.
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
    // A directory archive that cannot be opened is a local problem: stop. A shared archive out of
    // reach must not cost the capture: it waits in a local spool for the next run.
    let archive = match open_spec(&config.archive, Some(&config.fleet)) {
        Err(e) if matches!(config.archive, ArchiveSpec::Dir(_)) => return Err(e),
        other => other,
    };
    let state = crate::sources::CollectState::load(state_root);
    let show = |s: &crate::model::Snapshot| {
        if tty {
            println!("{}", plain(&crate::sources::describe(s)));
        }
    };
    let (snapshots, next_state) = crate::sources::capture_fleet(config, &state, &show);
    // A blind run must never look like a quiet one: each failing source is named on stderr, one
    // line each, unless the terminal summary above already showed it.
    let failing = failing_sources(&snapshots);
    if !(tty && std::io::stderr().is_terminal()) {
        let stamp = if std::io::stderr().is_terminal() {
            String::new()
        } else {
            format!("{} ", Utc::now().format("%Y-%m-%dT%H:%M:%SZ"))
        };
        for line in &failing {
            eprintln!("{stamp}patrol: {line}");
        }
    }
    let settled = |code: i32| {
        if failing.is_empty() {
            code
        } else {
            EXIT_DEGRADED
        }
    };
    let Some(at) = snapshots.iter().map(|s| s.captured_at).max() else {
        return Err(Error::Usage("the capture produced no snapshots".into()));
    };
    let spool = Archive::open(state_root.join(".state/spool"));
    let archive =
        match archive.and_then(|a| archive_capture(&a, config, &snapshots, &spool).map(|()| a)) {
            Ok(a) => a,
            Err(e) if matches!(config.archive, ArchiveSpec::Postgres { .. }) => {
                spool.write_all(&snapshots)?;
                next_state.save(state_root)?;
                return Err(Error::Usage(format!(
                    "{e}\n{} of this capture {} in {} and {} to the archive with the next run",
                    units::plural(snapshots.len(), "snapshot"),
                    if snapshots.len() == 1 {
                        "waits"
                    } else {
                        "wait"
                    },
                    spool.describe(),
                    if snapshots.len() == 1 { "goes" } else { "go" }
                )));
            }
            Err(e) => return Err(e),
        };
    // The state is saved after the snapshots: a crash in between reads some log lines twice
    // rather than losing them.
    next_state.save(state_root)?;
    if capture_only {
        if tty {
            println!(
                "{} snapshots archived in {}",
                snapshots.len(),
                archive.describe()
            );
        }
        return Ok(settled(EXIT_OK));
    }
    crate::fsutil::crash_point("after-archive");
    let mut analyzer = Analyzer::new(library, config.timezone, &config.fleet, &config.output)?;
    analyzer.configure(&config.report)?;
    let analysis = analyzer.analyse_through(&archive, at, span)?;
    if let Some(r) = &config.retention {
        prune_due(&archive, &mut analyzer, &retention_of(r), at)?;
    }
    if tty {
        match &analysis.section_file {
            Some(f) => println!(
                "report: {} (section {})",
                analyzer.output.rolling().display(),
                f.display()
            ),
            None => println!(
                "nothing new; report: {}",
                analyzer.output.rolling().display()
            ),
        }
    }
    Ok(settled(fail_code(analysis.worst, fail_on)))
}

/// Each source of each node's newest capture in the window, with its last success there.
fn source_health(window: &Window) -> Vec<report::SourceHealth> {
    window
        .nodes()
        .filter_map(|node| node.latest().map(|latest| (node, latest)))
        .flat_map(|(node, latest)| {
            latest.sources.iter().map(|s| report::SourceHealth {
                node: node.node.clone(),
                source: s.name.clone(),
                up: s.ok,
                last_success: node.last_ok().get(&s.name).copied(),
            })
        })
        .collect()
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

/// What one analysis of an archive needs: where it reads and writes, and how it reports.
struct Reporter {
    archive: Archive,
    /// Where the collector of this fleet keeps its state and run lock, when a config says.
    state_root: Option<PathBuf>,
    fleet: String,
    tz: Tz,
    out: PathBuf,
    library: Library,
    span: chrono::Duration,
    settings: config::ReportSettings,
    /// How the archive is thinned after the newest analysis; None for an archive named
    /// without a config (someone else's), or with `[retention] enabled = false`.
    retention: Option<config::RetentionSettings>,
}

impl Reporter {
    /// The reporter a fleet config describes.
    fn from_config(config: &config::Config) -> Result<Reporter> {
        Ok(Reporter {
            archive: open_spec(&config.archive, Some(&config.fleet))?,
            state_root: Some(config.state_root().to_path_buf()),
            fleet: config.fleet.clone(),
            tz: config.timezone,
            out: config.output.clone(),
            library: config_library(config)?,
            span: window_span(&config.window)?,
            settings: config.report.clone(),
            retention: config.retention.clone(),
        })
    }

    /// Analyses the archive as of `at` (default: every capture since the last analysis, up to
    /// the newest) and appends the sections, holding the fleet (waiting up to `wait`).
    fn analyse(
        self,
        at: Option<DateTime<Utc>>,
        wait: std::time::Duration,
    ) -> Result<(Analysis, Analyzer)> {
        let roots: Vec<&Path> = self
            .state_root
            .iter()
            .map(PathBuf::as_path)
            .chain([self.out.as_path()])
            .collect();
        let state = self.state_root.as_ref().map(|r| r.join(".state"));
        let clean: Vec<&Path> = state
            .iter()
            .map(PathBuf::as_path)
            .chain([self.out.as_path()])
            .collect();
        let mode = crate::fsutil::Mode::Shared(self.settings.file_mode);
        crate::fsutil::create_dirs(&self.out, mode, &roots)?;
        let _lock = hold_fleet(&roots, wait, &clean)?;
        let newest = at.is_none();
        let at = match at {
            Some(t) => t,
            None => self
                .archive
                .list(None, None, None)?
                .last()
                .map(|e| e.captured_at)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "{}: the archive holds no snapshots",
                        self.archive.describe()
                    ))
                })?,
        };
        let mut analyzer = Analyzer::new(self.library, self.tz, &self.fleet, &self.out)?;
        analyzer.configure(&self.settings)?;
        let analysis = if newest {
            analyzer.analyse_through(&self.archive, at, self.span)?
        } else {
            analyzer.analyse(&load_window(&self.archive, at, self.span)?)?
        };
        // The reporter is what thins a shared archive: its collectors only capture and cannot
        // know what open findings point to. Still under the lock, and only as of the newest
        // capture (an analysis of the past prunes nothing).
        if newest && let Some(r) = &self.retention {
            prune_due(&self.archive, &mut analyzer, &retention_of(r), at)?;
        }
        Ok((analysis, analyzer))
    }
}

#[allow(clippy::too_many_arguments)]
fn report_cmd(
    archive_arg: Option<&str>,
    config_path: Option<PathBuf>,
    at: Option<&str>,
    rules: Option<PathBuf>,
    out: Option<PathBuf>,
    window: Option<&str>,
    fail_on: Option<FailOn>,
    options: ReportOptions,
) -> Result<i32> {
    let config = match (archive_arg, config_path) {
        (_, Some(p)) => Some(config::load(&p)?),
        (None, None) => Some(fleet_config(None)?.ok_or_else(|| {
            Error::Usage(
                "give --archive (a directory or postgres://…) or --config, or run where patrol.toml is"
                    .into(),
            )
        })?),
        (Some(_), None) => None,
    };
    let mut reporter = match (config, archive_arg) {
        (Some(c), None) => Reporter::from_config(&c)?,
        (Some(c), Some(arg)) => {
            // The archive named on the command line, everything else from the config.
            let spec =
                ArchiveSpec::from_arg(arg).map_err(|e| Error::Usage(format!("--archive: {e}")))?;
            Reporter::from_config(&config::Config { archive: spec, ..c })?
        }
        (None, arg) => {
            let (archive, fleet, tz) = open_archive(arg.unwrap_or_default())?;
            let out = default_output(&archive, &fleet);
            Reporter {
                archive,
                state_root: None,
                fleet,
                tz,
                out,
                library: load_library(None)?,
                span: window_span("24h")?,
                settings: config::ReportSettings {
                    acknowledged: Some(PathBuf::from("acknowledged.toml")).filter(|p| p.exists()),
                    ..config::ReportSettings::default()
                },
                retention: None,
            }
        }
    };
    if let Some(r) = rules {
        reporter.library = load_library(Some(&r))?;
    }
    if let Some(o) = out {
        reporter.out = o;
    }
    if let Some(w) = window {
        reporter.span = window_span(w)?;
    }
    if options.acks.is_some() {
        reporter.settings.acknowledged = options.acks;
    }
    if options.textfile.is_some() {
        reporter.settings.textfile = options.textfile;
    }
    let at = at.map(|t| parse_time(t, reporter.tz)).transpose()?;
    let (fleet, tz) = (reporter.fleet.clone(), reporter.tz);
    let wait = parse_wait(options.wait.as_deref())?;
    let (analysis, analyzer) = reporter.analyse(at, wait)?;
    if options.format == Format::Json {
        let doc = crate::report::json(
            &fleet,
            tz,
            &analysis.outcome,
            &analyzer.ledger,
            analysis.section_file.as_deref(),
        );
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| Error::Usage(format!("cannot write JSON: {e}")))?;
        println!("{text}");
        return Ok(fail_code(analysis.worst, fail_on));
    }
    match &analysis.section_file {
        Some(f) => println!("{}", f.display()),
        None => println!(
            "nothing new since the last report ({} findings open)",
            analysis.findings.len()
        ),
    }
    Ok(fail_code(analysis.worst, fail_on))
}

/// output/<archive directory name>, or output/<fleet> for a shared archive.
fn default_output(archive: &Archive, fleet: &str) -> PathBuf {
    let name = archive
        .dir()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| fleet.to_string());
    PathBuf::from("output").join(name)
}

/// Groups archive entries (sorted by time) into capture rounds.
pub fn rounds(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    group_rounds(entries, |e| e.node.as_str(), |e| e.captured_at)
}

/// Capture rounds loaded per read: one query brings many rounds from a shared archive.
const ROUNDS_PER_LOAD: usize = 32;

/// Calls `each` with the readable snapshots of every capture round, oldest first, reading the
/// archive a batch of rounds at a time.
fn for_each_round(
    archive: &Archive,
    entries: Vec<Entry>,
    mut each: impl FnMut(Vec<crate::model::Snapshot>) -> Result<()>,
) -> Result<()> {
    for batch in rounds(entries).chunks(ROUNDS_PER_LOAD) {
        let flat: Vec<Entry> = batch.iter().flatten().cloned().collect();
        let mut loaded = archive.load_each(&flat).into_iter();
        for round in batch {
            let snaps = loaded
                .by_ref()
                .take(round.len())
                .filter_map(|r| r.ok())
                .collect();
            each(snaps)?;
        }
    }
    Ok(())
}

/// Replays an archive round by round into a fresh report; returns the number of sections.
pub fn replay(
    archive: &Archive,
    out: &Path,
    rules: Option<&Path>,
    span: chrono::Duration,
) -> Result<(usize, Output)> {
    let (fleet, tz) = archive_meta(archive)?;
    let library = load_library(rules)?;
    let output = Output {
        dir: out.to_path_buf(),
        mode: crate::fsutil::Mode::SHARED,
    };
    crate::fsutil::create_dir_all(out, output.mode)?;
    // The replay rewrites the output from scratch: nothing else may write there meanwhile.
    let _lock = hold_fleet(&[out], std::time::Duration::ZERO, &[out])?;
    for stale in [output.rolling(), output.ledger()] {
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| Error::io(&stale, e))?;
        }
    }
    for dir in [output.reports_dir(), output.months_dir()] {
        if dir.is_dir() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
    }
    let entries = archive.list(None, None, None)?;
    if entries.is_empty() {
        return Err(Error::Usage(format!(
            "{}: the archive holds no snapshots",
            archive.describe()
        )));
    }
    let mut analyzer = Analyzer::new(library, tz, &fleet, out)?;
    let mut window = Window::new(span);
    let mut sections = 0;
    for_each_round(archive, entries, |snaps| {
        for s in snaps {
            window.push(s);
        }
        if let Some(latest) = window.latest_at() {
            window.evict_before(latest.timestamp() - window.span_s());
        }
        if analyzer.analyse(&window)?.section_file.is_some() {
            sections += 1;
        }
        Ok(())
    })?;
    Ok((sections, analyzer.output))
}

/// What the rules said at one capture round of a replay.
pub struct Round {
    pub at: DateTime<Utc>,
    /// Every finding the rules raised at this round (open or new).
    pub findings: Vec<Finding>,
    /// Findings the ledger resolved at this round.
    pub resolved: Vec<Finding>,
    /// Findings the report would write in full at this round, with why.
    pub reported: Vec<(Finding, Reason)>,
}

/// Replays an archive round by round without writing anything, returning what the rules said
/// at each round: for coverage tests, `backtest` and benchmarks.
pub fn replay_rounds(
    archive: &Archive,
    library: &Library,
    span: chrono::Duration,
) -> Result<Vec<Round>> {
    let (_, tz) = archive_meta(archive)?;
    let entries = archive.list(None, None, None)?;
    let mut window = Window::new(span);
    let mut ledger = Ledger::default();
    let mut out = Vec::new();
    for_each_round(archive, entries, |snaps| {
        for s in snaps {
            window.push(s);
        }
        let Some(at) = window.latest_at() else {
            return Ok(());
        };
        window.evict_before(at.timestamp() - window.span_s());
        let mut evaluation = library.evaluate(&window, tz);
        let findings = std::mem::take(&mut evaluation.findings);
        let outcome = ledger.update(findings.clone(), at, |f| recheck(&evaluation, &window, f));
        out.push(Round {
            at,
            findings,
            resolved: outcome.resolved.into_iter().map(|r| r.finding).collect(),
            reported: outcome
                .reported
                .into_iter()
                .map(|r| (r.finding, r.reason))
                .collect(),
        });
        Ok(())
    })?;
    Ok(out)
}

fn demo(archive_arg: &str, out: &Path, rules: Option<PathBuf>) -> Result<i32> {
    if !PgTarget::is_url(archive_arg) && !Path::new(archive_arg).is_dir() {
        return Err(Error::Usage(format!(
            "{archive_arg}: no demo archive here; run from the repository root, or regenerate it with `patrol simulate scenarios/visionking.toml --out snapshots/demo`"
        )));
    }
    let (archive, _, _) = open_archive(archive_arg)?;
    let (sections, output) = replay(&archive, out, rules.as_deref(), chrono::Duration::hours(24))?;
    println!(
        "{} sections written to {}/ (one file per month; index: {})",
        sections,
        output.months_dir().display(),
        output.rolling().display()
    );
    Ok(EXIT_OK)
}

fn simulate_cmd(scenario_path: &Path, out: &Path) -> Result<i32> {
    let scenario = simulate::load(scenario_path)?;
    let snapshots = simulate::generate(&scenario)?;
    let archive = Archive::open(out);
    archive.clear_captures()?;
    for s in &snapshots {
        archive.write(s)?;
    }
    archive.write_meta(&ArchiveMeta {
        fleet: scenario.scenario.fleet.clone(),
        timezone: scenario.scenario.timezone.0.name().to_string(),
        interval_s: Some(scenario.scenario.interval.0 as u64),
    })?;
    let nodes = simulate::expand_nodes(&scenario).len();
    println!(
        "{} snapshots of {} nodes written to {}",
        snapshots.len(),
        nodes,
        out.display()
    );
    Ok(EXIT_OK)
}

/// A snapshot named by a file, `node@time` or (with `at`) a node name; the note says which
/// capture was taken when it is not exactly the time asked.
/// "(5 s after the time asked)": how far a capture is from the time someone asked for.
fn offset_note(captured_at: DateTime<Utc>, asked: DateTime<Utc>) -> String {
    let off = (captured_at - asked).num_seconds();
    format!(
        "({} {} the time asked)",
        units::fmt_duration(off.abs() as f64),
        if off >= 0 { "after" } else { "before" }
    )
}

fn resolve_snapshot(
    spec: &str,
    archive: &Archive,
    tz: Tz,
    at: Option<DateTime<Utc>>,
) -> Result<(crate::model::Snapshot, Option<String>)> {
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

fn retention_of(r: &config::RetentionSettings) -> crate::store::retention::Retention {
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
fn prune_due(
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
    analyzer.ledger.save(&analyzer.output.ledger())
}

/// `patrol archive stats|prune`.
fn archive_cmd(
    command: ArchiveCommand,
    config_path: Option<PathBuf>,
    archive_arg: &str,
) -> Result<i32> {
    if let ArchiveCommand::Copy { from, to } = &command {
        return archive_copy(from, to);
    }
    let config = fleet_config(config_path)?;
    let (archive, default_out) = match &config {
        Some(c) => (open_spec(&c.archive, Some(&c.fleet))?, c.output.clone()),
        None => {
            let (archive, fleet, _) = open_archive(archive_arg)?;
            let out = default_output(&archive, &fleet);
            (archive, out)
        }
    };
    match command {
        ArchiveCommand::Copy { .. } => Ok(EXIT_OK),
        ArchiveCommand::Stats => {
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
            if let crate::store::Archive::Postgres(pg) = &archive {
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
        ArchiveCommand::Prune { dry_run, out } => {
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
    }
}

/// Captures read and written per step of a copy: bounds memory, and each step is one
/// statement for a shared archive.
const COPY_BATCH: usize = 200;

/// What copying one batch of captures did.
struct Copied {
    copied: usize,
    bytes: u64,
    unreadable: Vec<String>,
}

/// Copies the given captures, bytes unchanged, checking each decodes first; one that does not
/// is named on stderr and left out.
fn copy_batch(source: &Archive, target: &Archive, batch: &[Entry]) -> Result<Copied> {
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
fn archive_copy(from: &str, to: &str) -> Result<i32> {
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

/// `patrol history`: one node's readings over time.
fn history_cmd(
    node: &str,
    entity: Option<&str>,
    metric: Option<&str>,
    since: Option<&str>,
    archive_arg: &str,
    out: Option<PathBuf>,
) -> Result<i32> {
    let (archive, fleet, tz) = open_archive(archive_arg)?;
    let entity = entity.unwrap_or("host");
    let metric = metric.unwrap_or(if entity.starts_with("container:") {
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
    let from = match since {
        Some(t) => parse_time(t, tz)?,
        None => newest - chrono::Duration::hours(24),
    };
    let entries: Vec<Entry> = all.into_iter().filter(|e| e.captured_at >= from).collect();
    let (snaps, _) = archive.load_entries(&entries);
    // entity -> points
    let mut series: std::collections::BTreeMap<String, Vec<(i64, f64)>> = Default::default();
    for s in &snaps {
        for r in crate::history::metrics::readings(s) {
            if r.metric == metric
                && crate::rules::select::glob_match(entity, &r.entity)
                && let Some(v) = r.value
            {
                series
                    .entry(r.entity)
                    .or_default()
                    .push((s.captured_at.timestamp(), v));
            }
        }
    }
    if series.is_empty() {
        return Err(Error::Usage(format!(
            "no `{metric}` readings of `{entity}` on {node} since {}",
            from.with_timezone(&tz).format("%Y-%m-%d %H:%M")
        )));
    }
    let (dim, suffix) = metric_unit(metric);
    let tty = std::io::stdout().is_terminal();
    for (ent, points) in &series {
        println!("{}", plain(&format!("{node} {ent} {metric}")));
        if tty {
            println!("  {}", sparkline(points));
        }
        for (t, v) in points {
            let local = Utc
                .timestamp_opt(*t, 0)
                .single()
                .map(|x| x.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            println!("  {local}  {}", fmt_value(*v, dim, suffix));
        }
    }
    let out = out.unwrap_or_else(|| default_output(&archive, &fleet));
    let lines: Vec<crate::chart::Series> = series
        .iter()
        .map(|(e, p)| crate::chart::Series {
            label: e.clone(),
            points: p,
            projection: None,
        })
        .collect();
    let day = |t: i64| {
        Utc.timestamp_opt(t, 0)
            .single()
            .map(|x| x.with_timezone(&tz).format("%b %-d %H:%M").to_string())
            .unwrap_or_default()
    };
    let svg = crate::chart::line_chart(
        &format!("{fleet}: {node} {entity} {metric}"),
        &lines,
        from.timestamp(),
        newest.timestamp(),
        &|v| fmt_value(v, dim, suffix),
        &day,
    );
    let safe = |s: &str| s.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    let path = out.join("history").join(format!(
        "{}_{}_{}.svg",
        safe(node),
        safe(entity),
        safe(metric)
    ));
    crate::fsutil::write_atomic(&path, svg.as_bytes(), crate::fsutil::Mode::SHARED)?;
    eprintln!("chart: {}", path.display());
    Ok(EXIT_OK)
}

/// Who may read the reports, digests and charts of a fleet (`[report] file_mode`).
fn shared_mode(config: Option<&config::Config>) -> crate::fsutil::Mode {
    crate::fsutil::Mode::Shared(
        config.map_or(crate::fsutil::DEFAULT_SHARED_MODE, |c| c.report.file_mode),
    )
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

/// `patrol compare`: the differences between two snapshots, most important first.
fn compare_cmd(
    a: &str,
    b: &str,
    at: Option<&str>,
    archive_arg: &str,
    out: Option<PathBuf>,
    format: Format,
) -> Result<i32> {
    let (archive, fleet, tz) = open_archive(archive_arg)?;
    let at = at.map(|t| parse_time(t, tz)).transpose()?;
    let (sa, note_a) = resolve_snapshot(a, &archive, tz, at)?;
    let (sb, note_b) = resolve_snapshot(b, &archive, tz, at)?;
    let diffs = crate::compare::diff(&sa, &sb, tz);
    let notes: Vec<String> = note_a.into_iter().chain(note_b).collect();
    let out = out.unwrap_or_else(|| default_output(&archive, &fleet));
    let stamp = |s: &crate::model::Snapshot| {
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
            .map_err(|e| Error::Usage(format!("cannot write JSON: {e}")))?;
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

fn show(target: &str, archive_arg: &str) -> Result<i32> {
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
    let json = serde_json::to_string_pretty(&snapshot).map_err(|e| Error::Usage(e.to_string()))?;
    println!("{json}");
    Ok(EXIT_OK)
}

fn rules_cmd(command: RulesCommand, path: Option<PathBuf>) -> Result<i32> {
    match command {
        RulesCommand::List => {
            let lib = load_library(path.as_deref())?;
            for r in &lib.rules {
                let line = format!(
                    "{:<40} {:<24} {:<10} {}",
                    r.id,
                    r.kind_name,
                    r.severity.label(),
                    rules::location(r)
                );
                println!("{}", plain(&line));
            }
            Ok(EXIT_OK)
        }
        RulesCommand::Explain { name } => {
            if let Some(kind) = rules::kinds::spec(&name) {
                print!("{}", kind.doc);
                return Ok(EXIT_OK);
            }
            let lib = load_library(path.as_deref())?;
            match lib.get(&name) {
                Some(r) => {
                    let line = format!(
                        "rule `{}` ({}), defined at {}: {}\n",
                        r.id,
                        r.severity.label(),
                        rules::location(r),
                        r.description
                    );
                    println!("{}", plain(&line));
                    if let Some(k) = rules::kinds::spec(r.kind_name) {
                        print!("{}", k.doc);
                    }
                    Ok(EXIT_OK)
                }
                None => {
                    let mut names: Vec<&str> = rules::kinds::KINDS.iter().map(|k| k.name).collect();
                    names.extend(lib.rules.iter().map(|r| r.id.as_str()));
                    Err(Error::Usage(format!(
                        "no kind or rule named `{name}`{}",
                        crate::error::did_you_mean(&name, &names)
                    )))
                }
            }
        }
        RulesCommand::Check => {
            let lib = load_library(path.as_deref())?;
            println!("{} rules loaded, no problems", lib.rules.len());
            Ok(EXIT_OK)
        }
        RulesCommand::Test { paths, bless } => rules_test(paths, path.as_deref(), bless),
        RulesCommand::Noise { out, last } => noise(&out, last),
    }
}

/// `patrol rules noise`: which rules spoke in most of the recent sections, or flapped.
fn noise(out: &Path, last: usize) -> Result<i32> {
    let path = out.join("ledger.json");
    if !path.exists() {
        return Err(Error::Usage(format!(
            "{}: no ledger here; run `patrol report` or `patrol demo` with --out {} first",
            path.display(),
            out.display()
        )));
    }
    let ledger = Ledger::load(&path)?;
    let rows = crate::report::noise(&ledger, last);
    if rows.is_empty() {
        println!("no sections yet in {}", path.display());
        return Ok(EXIT_OK);
    }
    let sections = ledger.sections.len().min(last);
    println!("over the last {sections} sections of {}:", path.display());
    println!(
        "{:<40} {:>9} {:>6} {:>7}  verdict",
        "rule", "sections", "share", "flaps"
    );
    for r in rows {
        let line = format!(
            "{:<40} {:>9} {:>5.0}% {:>7}  {}",
            r.rule, r.sections, r.share_pct, r.flaps, r.verdict
        );
        println!("{}", plain(&line));
    }
    Ok(EXIT_OK)
}

fn fixture_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    for entry in entries {
        let p = entry.map_err(|e| Error::io(path, e))?.path();
        if p.is_dir() {
            fixture_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
    Ok(())
}

/// `patrol rules test`: every fixture against its expected findings, and, over the whole set,
/// which kinds have a firing and a quiet case.
fn rules_test(paths: Vec<PathBuf>, rules_dir: Option<&Path>, bless: bool) -> Result<i32> {
    let mut roots = paths;
    if roots.is_empty() {
        let mut defaults = vec![PathBuf::from("tests/rules")];
        defaults.push(rules_dir.unwrap_or(Path::new("rules")).join("tests"));
        roots = defaults.into_iter().filter(|p| p.is_dir()).collect();
        if roots.is_empty() {
            return Err(Error::Usage(
                "no fixtures: give a file or directory, or create tests/rules/<kind>/<case>.toml"
                    .into(),
            ));
        }
    }
    let mut files = Vec::new();
    for root in &roots {
        if !root.exists() {
            return Err(Error::Usage(format!(
                "{}: no such fixture file or directory",
                root.display()
            )));
        }
        fixture_files(root, &mut files)?;
    }
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    // kind -> (firing cases, quiet cases), by the fixture's directory name
    let mut by_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for file in &files {
        let got = run_fixture(file)?;
        let expected_path = file.with_extension("expected");
        if bless {
            // A fixture's expected output is a source file of its repository.
            crate::fsutil::write_atomic(
                &expected_path,
                got.as_bytes(),
                crate::fsutil::Mode::Public,
            )?;
        }
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("FAIL {}: no {}", file.display(), expected_path.display());
                failed += 1;
                continue;
            }
            Err(e) => return Err(Error::io(&expected_path, e)),
        };
        let kind = file
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let entry = by_kind.entry(kind).or_default();
        if got.is_empty() {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
        if got == expected {
            passed += 1;
            println!("ok   {}", file.display());
        } else {
            failed += 1;
            println!("FAIL {}", file.display());
            for line in diff_lines(&expected, &got) {
                println!("     {}", plain(&line));
            }
        }
    }
    let lacking: Vec<String> = rules::kinds::KINDS
        .iter()
        .filter_map(|k| {
            let (firing, quiet) = by_kind.get(k.name).copied().unwrap_or_default();
            (firing == 0 || quiet == 0)
                .then(|| format!("{} ({firing} firing, {quiet} quiet)", k.name))
        })
        .collect();
    let covered = rules::kinds::KINDS.len() - lacking.len();
    println!("{passed} passed, {failed} failed");
    // Coverage of kinds only means something for a whole fixture tree.
    if roots.iter().any(|r| r.is_dir()) {
        println!(
            "{covered} of {} kinds have a firing and a quiet fixture",
            rules::kinds::KINDS.len()
        );
        if !lacking.is_empty() {
            println!("kinds without both: {}", lacking.join(", "));
        }
    }
    Ok(if failed == 0 { EXIT_OK } else { EXIT_FINDINGS })
}

/// Lines only in `expected` (-) and only in `got` (+), in order, for a readable failure.
fn diff_lines(expected: &str, got: &str) -> Vec<String> {
    let e: Vec<&str> = expected.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out = Vec::new();
    for line in &e {
        if !g.contains(line) {
            out.push(format!("- {line}"));
        }
    }
    for line in &g {
        if !e.contains(line) {
            out.push(format!("+ {line}"));
        }
    }
    out
}

/// `patrol digest`: the week's digest (markdown and charts), its Telegram messages, delivery.
fn digest_cmd(
    week: Option<&str>,
    config_path: Option<PathBuf>,
    archive_arg: &str,
    out: Option<PathBuf>,
    (send, dry_run): (bool, bool),
    wait: std::time::Duration,
) -> Result<i32> {
    let config = fleet_config(config_path)?;
    let (archive, out, fleet, tz) = match &config {
        Some(c) => (
            open_spec(&c.archive, Some(&c.fleet))?,
            out.unwrap_or_else(|| c.output.clone()),
            c.fleet.clone(),
            c.timezone,
        ),
        None => {
            let (archive, fleet, tz) = open_archive(archive_arg)?;
            let out = out.unwrap_or_else(|| default_output(&archive, &fleet));
            (archive, out, fleet, tz)
        }
    };
    let week = match week {
        Some(w) => crate::digest::Week::parse(w, tz)?,
        None => crate::digest::Week::containing(Utc::now(), tz).previous(tz),
    };
    // The output is the report's: a digest reads its ledger and writes beside it, so it waits
    // for a run or report writing there, as they wait for each other.
    let lock = hold_fleet(&[out.as_path()], wait, &[out.as_path()])?;
    let ledger = Ledger::load(&out.join("ledger.json"))?;
    let digest = crate::digest::build(&archive, &ledger, &fleet, tz, &week)?;
    if digest.rounds == 0 {
        return Err(Error::Usage(format!(
            "{}: no captures in {} ({} to {})",
            archive.describe(),
            week.label,
            digest.from,
            digest.to
        )));
    }
    let dir = out.join("digests");
    let mode = shared_mode(config.as_ref());
    let charts = crate::digest::charts(&digest, tz, week.start.timestamp(), week.end.timestamp());
    let mut chart_views = Vec::new();
    for (file, alt, svg) in &charts {
        crate::fsutil::write_atomic(&dir.join(file), svg.as_bytes(), mode)?;
        chart_views.push(crate::digest::ChartView {
            file: file.clone(),
            alt: alt.clone(),
        });
    }
    let view = crate::digest::view(&digest, chart_views);
    let config_dir = config.as_ref().and_then(|c| c.report.config_dir.as_deref());
    let markdown = report::render_digest(&view, template_dir(config_dir).as_deref())?;
    let path = dir.join(format!("{}.md", week.label));
    crate::fsutil::write_atomic(&path, markdown.as_bytes(), mode)?;
    println!("{}", path.display());
    let messages = crate::telegram::split(
        &crate::digest::telegram_lines(&digest),
        crate::telegram::MESSAGE_LIMIT,
        5,
    );
    if dry_run {
        for (i, m) in messages.iter().enumerate() {
            println!(
                "--- message {} of {} ({} characters)",
                i + 1,
                messages.len(),
                m.chars().count()
            );
            println!("{}", plain(m));
        }
        return Ok(EXIT_OK);
    }
    if !send {
        return Ok(EXIT_OK);
    }
    let settings = config
        .as_ref()
        .and_then(|c| c.telegram.clone())
        .ok_or_else(|| {
            Error::Usage(
                "--send needs a [telegram] section in the fleet config (api_base, token_env or token_file, chat_id)".into(),
            )
        })?;
    let (token, chat_id) = settings.resolve()?;
    let bot = crate::telegram::Bot {
        api_base: settings.api_base.clone(),
        token,
        chat_id,
        attempts: settings.attempts,
        backoff: settings.backoff,
        max_retry_after: std::time::Duration::from_secs(60),
        request_timeout: settings.timeout,
        tls: settings.tls.clone(),
    };
    let mailroom = crate::telegram::Mailroom::new(&out);
    mailroom.post(&week.label, &bot.chat_id, messages)?;
    // Delivery has its own sender lock; a slow Bot API must not hold up the reports.
    drop(lock);
    let delivery = crate::telegram::deliver(&mailroom, &bot)?;
    println!(
        "telegram: {} sent, {} found already delivered, {} refused and skipped, {} waiting in {}",
        delivery.sent,
        delivery.recovered,
        delivery.refused,
        delivery.left,
        mailroom.dir.display()
    );
    for e in &delivery.errors {
        eprintln!("patrol: telegram: {e}");
    }
    Ok(if delivery.left == 0 && delivery.refused == 0 {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    })
}

/// `patrol backtest`: one rule over every capture of an archive; prints each time it opened,
/// resolved or could not check, and a summary.
fn backtest(rule_id: &str, archive_arg: &str, rules: Option<&Path>, window: &str) -> Result<i32> {
    let mut library = load_library(rules)?;
    if library.get(rule_id).is_none() {
        let names: Vec<&str> = library.rules.iter().map(|r| r.id.as_str()).collect();
        return Err(Error::Usage(format!(
            "no rule `{rule_id}` in the library{}",
            crate::error::did_you_mean(rule_id, &names)
        )));
    }
    library.rules.retain(|r| r.id == rule_id);
    let span = window_span(window)?;
    let (archive, _, tz) = open_archive(archive_arg)?;
    let rounds = replay_rounds(&archive, &library, span)?;
    let mut open: std::collections::BTreeSet<String> = Default::default();
    let (mut opened, mut resolved, mut rounds_firing) = (0, 0, 0);
    for round in &rounds {
        let stamp = round.at.with_timezone(&tz).format("%Y-%m-%d %H:%M");
        if !round.findings.is_empty() {
            rounds_firing += 1;
        }
        for f in &round.findings {
            if open.insert(f.key()) || f.event {
                opened += 1;
                println!(
                    "{stamp} FIRES    [{}] {}",
                    f.severity.label(),
                    plain(&f.title)
                );
            }
            if f.event {
                open.remove(&f.key());
            }
        }
        for f in &round.resolved {
            open.remove(&f.key());
            resolved += 1;
            println!("{stamp} RESOLVED {}", plain(&f.title));
        }
    }
    println!(
        "{rule_id}: {} capture rounds, fired in {rounds_firing}; {opened} findings opened, {resolved} resolved, {} still open",
        rounds.len(),
        open.len()
    );
    Ok(EXIT_OK)
}

/// Runs one rule fixture: a scenario file that also carries `[[rule]]` instances. The scenario is
/// replayed capture by capture and every finding the rules open or resolve is written down, one
/// block per event, in UTC. The text is compared with `<fixture>.expected`.
pub fn run_fixture(path: &Path) -> Result<String> {
    let text = crate::fsutil::read_to_string(path)?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| Error::bad_file(path, e.message().to_string()))?;
    let rules_value = table
        .remove("rule")
        .ok_or_else(|| Error::bad_file(path, "a fixture needs at least one [[rule]]"))?;
    let mut rules_table = toml::Table::new();
    rules_table.insert("rule".into(), rules_value);
    // States and aliases belong to the rule library, not to the scenario.
    for key in ["state", "alias"] {
        if let Some(v) = table.remove(key) {
            rules_table.insert(key.into(), v);
        }
    }
    let to_text =
        |t: &toml::Table| toml::to_string(t).map_err(|e| Error::bad_file(path, e.to_string()));
    let library = Library::from_sources(&[(path.to_path_buf(), to_text(&rules_table)?)])?;
    let scenario = simulate::parse(path, &to_text(&table)?)?;
    let snapshots = simulate::generate(&scenario)?;
    let mut window = Window::new(chrono::Duration::hours(24));
    let mut ledger = Ledger::default();
    let mut out = String::new();
    for round in group_rounds(snapshots, |s| s.node.as_str(), |s| s.captured_at) {
        for s in round {
            window.push(s);
        }
        let Some(at) = window.latest_at() else {
            continue;
        };
        let mut evaluation = library.evaluate(&window, chrono_tz::UTC);
        let findings = std::mem::take(&mut evaluation.findings);
        let outcome = ledger.update(findings, at, |f| recheck(&evaluation, &window, f));
        let stamp = at.format("%Y-%m-%d %H:%M:%S");
        for n in &outcome.reported {
            let f = &n.finding;
            let tag = match &n.reason {
                Reason::New => "NEW".to_string(),
                Reason::Reopened { .. } => "REOPENED".to_string(),
                Reason::Escalated { why } => format!("ESCALATED ({why})"),
                Reason::Changed { what } => format!("CHANGED ({what})"),
                Reason::Unchanged { nth, .. } => format!("REPEATED (report {nth})"),
                Reason::AckExpired { .. } => "ACK EXPIRED".to_string(),
            };
            out.push_str(&format!(
                "{stamp} {tag} [{}] {} {}\n  title: {}\n  evidence: {}\n",
                f.severity.label(),
                f.rule_id,
                f.nodes.join(","),
                f.title,
                f.evidence
            ));
        }
        for r in &outcome.resolved {
            out.push_str(&format!(
                "{stamp} RESOLVED {} {} now {}\n",
                r.finding.rule_id,
                r.finding.nodes.join(","),
                r.now.clone().unwrap_or_else(|| "-".into())
            ));
        }
    }
    Ok(out)
}
