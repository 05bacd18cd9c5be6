//! The one step that analyses a capture round: the rules over the window as of its newest
//! capture, a recheck of the open findings they no longer raise, the ledger's verdict and, when
//! a report is being written, its section. `run`, `report`, `demo`, `backtest`, the rule
//! fixtures, the coverage test and the benches all go through [`analyse_round`], so what they
//! say about a round cannot drift apart; what differs between them (writing or only counting,
//! the time zone) is data passed to it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::template_dir;
use super::window::{self, WindowFile};
use crate::config;
use crate::error::Result;
use crate::history::Window;
use crate::ledger::{Ledger, Outcome, Reason};
use crate::model::{Finding, Severity, Snapshot};
use crate::report::{self, Output};
use crate::rules::Library;
use crate::store::{Archive, Entry, group_rounds};

/// Everything one analysis of a fleet's report needs besides the window.
pub struct Analyzer {
    pub library: Library,
    pub tz: Tz,
    pub ledger: Ledger,
    pub writer: SectionWriter,
    /// Whether `analyse_through` starts from the saved history window.
    pub saved_window: SavedWindow,
    /// Whether the saved window also stays in this process's memory for its next analysis.
    pub keep_window_in_memory: bool,
}

/// Where and how a report's sections are written; an analysis without one writes nothing.
pub struct SectionWriter {
    pub fleet: String,
    pub output: Output,
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
    pub outcome: Outcome,
}

/// Analyses the window as of its newest capture: the library's findings, a recheck of each open
/// finding they no longer raise, the ledger's update; then, with a `writer`, the section (when
/// there is something to say), the saved ledger and the textfile. Without a writer nothing is
/// written: a replay that only counts, a rule fixture.
pub fn analyse_round(
    library: &Library,
    tz: Tz,
    ledger: &mut Ledger,
    window: &Window,
    writer: Option<&SectionWriter>,
) -> Result<Analysis> {
    let Some(at) = window.latest_at() else {
        return Ok(Analysis {
            findings: Vec::new(),
            section_file: None,
            worst: None,
            outcome: Outcome::default(),
        });
    };
    // A count "since X" counts over the finding's episode, not over the window that slides.
    let mut evaluation = library.evaluate_counted(window, tz, &|f| ledger.episode_count(f, at));
    let findings = crate::rules::group::hold_families(
        library,
        ledger.open_findings(),
        std::mem::take(&mut evaluation.findings),
        |f| {
            !matches!(
                crate::rules::resolution::recheck(&evaluation, window, f),
                crate::ledger::Recheck::Gone { .. }
            )
        },
    );
    ledger.enter_week(&crate::digest::Week::containing(at, tz).label);
    let outcome = ledger.update_grouped(findings.clone(), &evaluation.baseline, at, |f| {
        crate::rules::resolution::recheck(&evaluation, window, f)
    });
    let worst = worst(&outcome, ledger);
    let section_file = match writer {
        Some(writer) => {
            crate::fsutil::crash_point("before-ledger");
            let section_file = writer.write_section(ledger, &outcome, at, tz)?;
            writer.write_open(ledger, &outcome, at, tz)?;
            writer.write_textfile(ledger, window, at)?;
            ledger.score_card = score_card(library, window);
            // The site is a view of what was just written: a site that cannot be written is
            // said, and the reports, the ledger and the textfile stand.
            if let Err(e) = report::write_site(&writer.output, &writer.fleet, tz, ledger, at) {
                tracing::warn!("the reports' web page was not written: {e}");
            }
            section_file
        }
        None => None,
    };
    Ok(Analysis {
        findings,
        section_file,
        worst,
        outcome,
    })
}

/// Each node's score card at its newest capture, for the site's index.
fn score_card(library: &Library, window: &Window) -> Vec<crate::model::ScoreRow> {
    use crate::rules::kinds::score_card as card;
    let job = card::cleanup_job(library);
    window
        .nodes()
        .filter_map(|n| {
            let s = n.latest()?;
            let row = match card::score(s, &job) {
                Some(dims) => {
                    let (total, possible) = card::total(&dims);
                    crate::model::ScoreRow {
                        node: n.node.clone(),
                        score: (possible > 0).then_some(total),
                        note: card::weakest(&dims)
                            .map(card::Dimension::text)
                            .unwrap_or_default(),
                    }
                }
                None => crate::model::ScoreRow {
                    node: n.node.clone(),
                    score: None,
                    note: format!(
                        "could not check: {}",
                        card::unscored_why(s).unwrap_or("a reading is missing")
                    ),
                },
            };
            Some(row)
        })
        .collect()
}

/// The worst of what was reported now and what is still open.
fn worst(outcome: &Outcome, ledger: &Ledger) -> Option<Severity> {
    let worst_new = outcome.reported.iter().map(|n| n.finding.severity).max();
    worst_new.max(ledger.worst_open())
}

impl SectionWriter {
    /// Writes the section of this outcome when there is something to say, and saves the ledger
    /// either way; returns the dated section file.
    fn write_section(
        &self,
        ledger: &mut Ledger,
        outcome: &Outcome,
        at: DateTime<Utc>,
        tz: Tz,
    ) -> Result<Option<PathBuf>> {
        let ledger_path = self.output.ledger();
        let Some(section) = report::build_section(
            outcome,
            ledger,
            at,
            tz,
            ledger.sections.back().map(|s| s.at),
        ) else {
            ledger.save(&ledger_path)?;
            return Ok(None);
        };
        // The ledger (with the section it is about to write) is saved first, the report second,
        // the ledger cleared third: a crash anywhere loses nothing and repeats nothing (the next
        // run finishes the pending section).
        ledger.count_month(&report::month_key(at, tz), outcome);
        let still_open = report::open_by_severity(outcome, ledger);
        ledger.count_week(
            &crate::digest::Week::containing(at, tz).label,
            outcome,
            still_open,
        );
        let pending = report::render_section(
            &self.output,
            &self.fleet,
            tz,
            at,
            &section,
            &ledger.months,
            self.templates.as_deref(),
        )?;
        ledger.log_section(at, outcome);
        ledger.log_top(&section.open_top_keys, section.open_hash);
        ledger.pending = Some(pending.clone());
        ledger.save(&ledger_path)?;
        crate::fsutil::crash_point("after-ledger");
        let dated = report::commit_section(&self.output, &pending)?;
        crate::fsutil::crash_point("after-report");
        ledger.pending = None;
        ledger.save(&ledger_path)?;
        report::prune_dated(&self.output, at - self.keep_dated)?;
        Ok(Some(dated))
    }

    /// Rewrites `open.md`, the whole list a section summarises. Only after `write_section`
    /// saved the ledger (and wrote and cleared any pending section): the ledger is the record
    /// and `open.md` a view of it, so a crash before this line loses nothing the next analysis
    /// does not rewrite.
    fn write_open(
        &self,
        ledger: &Ledger,
        outcome: &Outcome,
        at: DateTime<Utc>,
        tz: Tz,
    ) -> Result<()> {
        report::write_open(&self.output, &self.fleet, tz, at, outcome, ledger).map(|_| ())
    }

    /// The Prometheus textfile of open findings and source health, when one is configured.
    fn write_textfile(&self, ledger: &Ledger, window: &Window, at: DateTime<Utc>) -> Result<()> {
        let Some(path) = &self.textfile else {
            return Ok(());
        };
        crate::fsutil::write_atomic(
            path,
            report::prometheus_textfile(&self.fleet, ledger, &source_health(window), at).as_bytes(),
            // node-exporter, which reads it, runs as its own user.
            crate::fsutil::Mode::Public,
        )
    }
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
            ledger,
            writer: SectionWriter {
                fleet: fleet.to_string(),
                output,
                textfile: None,
                templates: template_dir(None),
                keep_dated: chrono::Duration::days(90),
            },
            saved_window: SavedWindow::Use,
            keep_window_in_memory: false,
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
        self.writer.keep_dated =
            chrono::Duration::from_std(settings.keep_dated).unwrap_or(chrono::Duration::days(90));
        if let Some(path) = &settings.acknowledged {
            self.ledger.acks = crate::ledger::acks::Acks::load(path, self.tz)?;
        }
        self.writer.textfile = settings.textfile.clone();
        self.writer.output.mode = crate::fsutil::Mode::Shared(settings.file_mode);
        if let Some(dir) = &settings.config_dir {
            self.writer.templates = template_dir(Some(dir));
        }
        Ok(())
    }

    /// Runs the rules over the window as of its newest capture, updates the ledger and writes a
    /// section when there is something to say.
    pub fn analyse(&mut self, window: &Window) -> Result<Analysis> {
        analyse_round(
            &self.library,
            self.tz,
            &mut self.ledger,
            window,
            Some(&self.writer),
        )
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
        let file = (self.saved_window != SavedWindow::Off).then(|| {
            let mut f = WindowFile::new(
                &self.writer.output.dir,
                archive,
                &self.writer.fleet,
                &self.library,
            );
            f.rebuild = self.saved_window == SavedWindow::Rebuild;
            f.mode = self.writer.output.mode;
            f.keep_in_memory = self.keep_window_in_memory;
            f
        });
        let saved = file.as_ref().and_then(|f| f.read(span));
        // One listing serves the saved window's check, the missed rounds and the next stamp.
        let list_from = saved
            .as_ref()
            .and_then(|(_, stamp)| DateTime::from_timestamp(stamp.at, 0))
            .map_or(at - span, |saved_at| (saved_at - span).min(at - span));
        let mut listing = archive.list(Some(list_from), Some(at), None)?;
        window::sort_listing(&mut listing);
        let missed = match self.ledger.last_analysis {
            Some(last) if last < at => {
                let from = last.max(at - span);
                rounds(
                    listing
                        .iter()
                        .filter(|e| e.captured_at > from)
                        .cloned()
                        .collect(),
                )
            }
            _ => Vec::new(),
        };
        let first_at = missed
            .first()
            .and_then(|r| r.iter().map(|e| e.captured_at).max())
            .filter(|_| missed.len() > 1);
        let mut window = window::window_at(archive, &listing, first_at.unwrap_or(at), span, saved);
        let mut analysis = self.analyse(&window)?;
        if first_at.is_some() {
            tracing::info!(
                "analysing {} capture rounds since the last analysis",
                missed.len()
            );
            for round in &missed[1..] {
                advance(&mut window, archive.load_each(round).into_iter().flatten());
                let next = self.analyse(&window)?;
                analysis = Analysis {
                    worst: analysis.worst.max(next.worst),
                    section_file: next.section_file.or(analysis.section_file),
                    ..next
                };
            }
        }
        // The captures just analysed join their day's rollup for the weekly digest, from the
        // snapshots already decoded.
        let rollups =
            crate::digest::rollup::under(&self.writer.output.dir, self.writer.output.mode);
        crate::digest::rollup::land(
            &rollups,
            self.tz,
            &listing,
            window
                .nodes()
                .map(|n| (n.node.as_str(), n.recent().collect())),
        );
        if let Some(f) = &file {
            // A window that cannot be saved costs the next run a rebuild, not this run's report.
            if let Err(e) = f.save(window, &listing, at) {
                tracing::warn!("the history window was not saved: {e}");
            }
        }
        Ok(analysis)
    }
}

/// Whether a run starts from the window the previous run saved (and saves its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedWindow {
    /// Neither read nor write one.
    Off,
    /// Read it when it matches the archive, else rebuild; save the new one.
    Use,
    /// Rebuild from the snapshots whatever is saved; save the new one.
    Rebuild,
}

/// Adds a capture round to the window and drops what fell out of its span, nodes that stopped
/// reporting included.
pub(super) fn advance(window: &mut Window, round: impl IntoIterator<Item = Snapshot>) {
    for s in round {
        window.push(s);
    }
    if let Some(latest) = window.latest_at() {
        window.evict_before(latest.timestamp() - window.span_s());
    }
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

/// Groups archive entries (sorted by time) into capture rounds.
pub fn rounds(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    group_rounds(entries, |e| e.node.as_str(), |e| e.captured_at)
}

/// Capture rounds loaded per read: one query brings many rounds from a shared archive.
const ROUNDS_PER_LOAD: usize = 32;

/// Calls `each` with the readable snapshots of every capture round, oldest first, reading the
/// archive a batch of rounds at a time.
pub(super) fn for_each_round(
    archive: &Archive,
    entries: Vec<Entry>,
    mut each: impl FnMut(Vec<Snapshot>) -> Result<()>,
) -> Result<()> {
    let rounds = rounds(entries);
    let mut rest = rounds.as_slice();
    while !rest.is_empty() {
        // Up to ROUNDS_PER_LOAD rounds per read, but never more than a read's worth of captures
        // decoded at once (one round at least): a thousand-node fleet's 32 rounds are 32,000.
        let mut take = 0;
        let mut captures = 0;
        while take < rest.len().min(ROUNDS_PER_LOAD)
            && (take == 0 || captures + rest[take].len() <= window::CAPTURES_PER_READ)
        {
            captures += rest[take].len();
            take += 1;
        }
        let (batch, later) = rest.split_at(take);
        rest = later;
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
    let mut out = Vec::new();
    replay_each(archive, library, span, &mut |round, analysis, _| {
        out.push(Round {
            at: round.at,
            findings: analysis.findings,
            resolved: analysis
                .outcome
                .resolved
                .into_iter()
                .map(|r| r.finding)
                .collect(),
            reported: analysis
                .outcome
                .reported
                .into_iter()
                .map(|r| (r.finding, r.reason))
                .collect(),
        });
    })?;
    Ok(out)
}

/// Replays an archive round by round without writing anything, handing each round's time,
/// analysis and the ledger after it to `each` (`rules score` reads the ledger's episodes).
/// When a replayed round happened: its earliest capture and its newest (the time the analysis
/// speaks at). Nodes are captured seconds apart; a reader of a round thinks of `first`.
#[derive(Debug, Clone, Copy)]
pub(super) struct RoundTime {
    pub first: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

pub(super) fn replay_each(
    archive: &Archive,
    library: &Library,
    span: chrono::Duration,
    each: &mut dyn FnMut(RoundTime, Analysis, &Ledger),
) -> Result<()> {
    let (_, tz) = super::archive_meta(archive)?;
    let entries = archive.list(None, None, None)?;
    let mut window = Window::new(span);
    let mut ledger = Ledger::default();
    for_each_round(archive, entries, |snaps| {
        let first = snaps.iter().map(|s| s.captured_at).min();
        advance(&mut window, snaps);
        let Some(at) = window.latest_at() else {
            return Ok(());
        };
        let analysis = analyse_round(library, tz, &mut ledger, &window, None)?;
        let first = first.unwrap_or(at).min(at);
        each(RoundTime { first, at }, analysis, &ledger);
        Ok(())
    })
}
