//! The only module that wires layers together: collect → archive → history window → rules →
//! ledger → report. Errors become exit code 2 with one clear message.
//!
//! This file holds the entry point, the dispatch to one function per subcommand, the exit codes
//! and what several commands share (opening archives and configs, the rule library, the fleet
//! lock). Each command family has its own file; `analysis` holds the one step that analyses a
//! capture round, which every command that evaluates rules goes through.

mod analysis;
mod archive;
mod capture;
mod digest;
mod inspect;
mod report;
mod rules;
mod score;
mod window;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clap::Parser;

use crate::cli::{Cli, Command, FailOn};
use crate::config;
use crate::config::ArchiveSpec;
use crate::error::{Error, Result};
use crate::history::Window;
use crate::markdown::plain;
use crate::model::Severity;
use crate::rules::Library;
use crate::store::Archive;
use crate::units;

pub use analysis::{Analysis, Analyzer, Round, SectionWriter, replay_rounds, rounds};
pub use report::replay;
pub use rules::{fixture_findings, run_fixture};

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
        Command::Run(args) => capture::run(args),
        Command::Daemon(args) => capture::daemon(args.config),
        Command::Report(args) => report::report_cmd(args),
        Command::Demo(args) => report::demo(args),
        Command::Simulate(args) => report::simulate_cmd(&args),
        Command::Show(args) => inspect::show(&args),
        Command::Rules(args) => rules::rules_cmd(args),
        Command::Archive(args) => archive::archive_cmd(args),
        Command::Compare(args) => inspect::compare_cmd(args),
        Command::History(args) => inspect::history_cmd(args),
        Command::Digest(args) => digest::digest_cmd(args),
        Command::Backtest(args) => rules::backtest(&args),
    }
}

/// The rule library of a fleet config: the built-in library with the config's `rules` files
/// layered on it, else the `rules/` beside the config, else nothing more.
pub(super) fn config_library(config: &config::Config) -> Result<Library> {
    if !config.rules.is_empty() {
        return Library::load_all(&config.rules);
    }
    match &config.report.config_dir {
        Some(dir) if dir.join("rules").is_dir() => Library::load(&dir.join("rules")),
        Some(_) => Library::load_all(&[]),
        None => load_library(None),
    }
}

/// The rule library without a config: the built-in library with an explicit path, else
/// ./rules, layered on it.
pub fn load_library(path: Option<&Path>) -> Result<Library> {
    match path {
        Some(p) => Library::load(p),
        None if Path::new("rules").is_dir() => Library::load(Path::new("rules")),
        None => Library::load_all(&[]),
    }
}

/// `report-templates/` beside the config (or here, without one), when it exists.
fn template_dir(config_dir: Option<&Path>) -> Option<PathBuf> {
    let d = match config_dir {
        Some(dir) => dir.join("report-templates"),
        None => PathBuf::from("report-templates"),
    };
    d.is_dir().then_some(d)
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

/// Fills a window from the archive with the captures in `[at - span, at]`, oldest first, a few
/// hundred decoded at a time.
fn load_window(archive: &Archive, at: DateTime<Utc>, span: chrono::Duration) -> Result<Window> {
    let mut listing = archive.list(Some(at - span), Some(at), None)?;
    window::sort_listing(&mut listing);
    Ok(window::window_at(archive, &listing, at, span, None))
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

/// output/<archive directory name>, or output/<fleet> for a shared archive.
fn default_output(archive: &Archive, fleet: &str) -> PathBuf {
    let name = archive
        .dir()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| fleet.to_string());
    PathBuf::from("output").join(name)
}

/// Who may read the reports, digests and charts of a fleet (`[report] file_mode`).
fn shared_mode(config: Option<&config::Config>) -> crate::fsutil::Mode {
    crate::fsutil::Mode::Shared(
        config.map_or(crate::fsutil::DEFAULT_SHARED_MODE, |c| c.report.file_mode),
    )
}
