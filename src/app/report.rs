//! `patrol report`, `demo` and `simulate`: analysing an archive that is already written, as of
//! a time or capture by capture from its start, and writing the archive a scenario describes.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::analysis::{Analysis, Analyzer, advance, for_each_round};
use super::archive::{prune_due, retention_of};
use super::{
    EXIT_OK, archive_meta, config_library, default_output, fail_code, fleet_config, hold_fleet,
    load_library, load_window, open_archive, open_spec, parse_time, parse_wait, window_span,
};
use crate::cli::{DemoArgs, Format, ReportArgs, SimulateArgs};
use crate::config::{self, ArchiveSpec};
use crate::error::{Error, Result};
use crate::history::Window;
use crate::report::Output;
use crate::rules::Library;
use crate::simulate;
use crate::store::{Archive, ArchiveMeta, PgTarget};

/// What one analysis of an archive needs: where it reads and writes, and how it reports.
pub(super) struct Reporter {
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
    /// Rebuild the history window instead of starting from the saved one.
    rebuild_window: bool,
    /// A daemon's report tick: the history window stays in memory for the next one.
    pub(super) daemon: bool,
}

impl Reporter {
    /// The reporter a fleet config describes.
    pub(super) fn from_config(config: &config::Config) -> Result<Reporter> {
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
            rebuild_window: false,
            daemon: false,
        })
    }

    /// Analyses the archive as of `at` (default: every capture since the last analysis, up to
    /// the newest) and appends the sections, holding the fleet (waiting up to `wait`).
    pub(super) fn analyse(
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
        let span = self.library.history_span(self.span);
        let mut analyzer = Analyzer::new(self.library, self.tz, &self.fleet, &self.out)?;
        analyzer.configure(&self.settings)?;
        if self.rebuild_window {
            analyzer.saved_window = super::analysis::SavedWindow::Rebuild;
        }
        analyzer.keep_window_in_memory = self.daemon;
        let analysis = if newest {
            analyzer.analyse_through(&self.archive, at, span)?
        } else {
            analyzer.analyse(&load_window(&self.archive, at, span)?)?
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

/// `patrol report`: analyses an archive (named, or a config's) and prints the section written,
/// or every open finding as JSON.
pub(super) fn report_cmd(args: ReportArgs) -> Result<i32> {
    let reporter = reporter_for(&args)?;
    let at = args
        .at
        .as_deref()
        .map(|t| parse_time(t, reporter.tz))
        .transpose()?;
    let (fleet, tz) = (reporter.fleet.clone(), reporter.tz);
    let wait = parse_wait(args.wait.as_deref())?;
    let (analysis, analyzer) = reporter.analyse(at, wait)?;
    if args.format == Format::Json {
        let doc = crate::report::json(
            &fleet,
            tz,
            &analysis.outcome,
            &analyzer.ledger,
            analysis.section_file.as_deref(),
        );
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| Error::Runtime(format!("cannot write JSON: {e}")))?;
        println!("{text}");
        return Ok(fail_code(analysis.worst, args.fail_on));
    }
    match &analysis.section_file {
        Some(f) => println!("{}", f.display()),
        None => println!(
            "nothing new since the last report ({} findings open)",
            analysis.findings.len()
        ),
    }
    Ok(fail_code(analysis.worst, args.fail_on))
}

/// The reporter `patrol report`'s arguments describe: a config's (with `--archive` replacing its
/// archive), or an archive's alone, then each option given on the command line over it.
fn reporter_for(args: &ReportArgs) -> Result<Reporter> {
    let archive_arg = args.archive.as_deref();
    let config = match (archive_arg, &args.config) {
        (_, Some(p)) => Some(config::load(p)?),
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
                rebuild_window: false,
                daemon: false,
            }
        }
    };
    reporter.rebuild_window = args.rebuild_window;
    if let Some(r) = &args.rules {
        reporter.library = load_library(Some(r))?;
    }
    if let Some(o) = &args.out {
        reporter.out = o.clone();
    }
    if let Some(w) = &args.window {
        reporter.span = window_span(w)?;
    }
    if args.acks.is_some() {
        reporter.settings.acknowledged = args.acks.clone();
    }
    if args.textfile.is_some() {
        reporter.settings.textfile = args.textfile.clone();
    }
    Ok(reporter)
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
    let span = library.history_span(span);
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
        advance(&mut window, snaps);
        if analyzer.analyse(&window)?.section_file.is_some() {
            sections += 1;
        }
        Ok(())
    })?;
    Ok((sections, analyzer.writer.output))
}

pub(super) fn demo(args: DemoArgs) -> Result<i32> {
    let archive_arg = args.archive.as_str();
    if !PgTarget::is_url(archive_arg) && !Path::new(archive_arg).is_dir() {
        return Err(Error::Usage(format!(
            "{archive_arg}: no demo archive here; run from the repository root, or regenerate it with `patrol simulate scenarios/visionking.toml --out snapshots/demo`"
        )));
    }
    let (archive, _, _) = open_archive(archive_arg)?;
    let (sections, output) = replay(
        &archive,
        &args.out,
        args.rules.as_deref(),
        chrono::Duration::hours(24),
    )?;
    println!(
        "{} sections written to {}/ (one file per month; index: {})",
        sections,
        output.months_dir().display(),
        output.rolling().display()
    );
    Ok(EXIT_OK)
}

/// `patrol simulate`: the archive a scenario describes, same scenario, same bytes.
pub(super) fn simulate_cmd(args: &SimulateArgs) -> Result<i32> {
    let out = args.out.as_path();
    let scenario = simulate::load(&args.scenario)?;
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
