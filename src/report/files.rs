//! Where sections go: the month's rolling report, the dated file of each section, and the index
//! of the months (`improvements.md`); a report from before monthly files is kept and linked;
//! dated files past their retention are pruned. A section is rendered first (nothing written)
//! and committed after the ledger holds it, so a crash neither loses nor repeats it.
//!
//! `open.md` is the whole list of open and acknowledged findings, by node, that a section only
//! summarises. It is a view of the ledger, rewritten by every analysis whether or not it writes
//! a section, and never read back: a crash before it is rewritten leaves the previous one, which
//! the next analysis replaces.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::section::{
    OpenFinding, acknowledged_line, all_open, by_severity, local_date_in, node_of, open_line,
};
use super::{HEADER_TEMPLATE, SECTION_TEMPLATE, Section, environment, heading_time};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ledger::{Acknowledged, Ledger, MonthCounts, Outcome, PendingSection};
use crate::markdown::{escape_inline, plain};

/// Where a fleet's reports go.
pub struct Output {
    pub dir: PathBuf,
    /// Who may read the reports (`[report] file_mode`).
    pub mode: fsutil::Mode,
}

/// The first line of the index: how a pre-monthly `improvements.md` (the whole report) is told
/// from the index that replaced it.
pub(super) const INDEX_MARKER: &str =
    "<!-- patrol: index of the monthly reports in improvements/ -->";

impl Output {
    /// The entry point: the index of the monthly reports.
    pub fn rolling(&self) -> PathBuf {
        self.dir.join("improvements.md")
    }

    /// The folder of the monthly reports.
    pub fn months_dir(&self) -> PathBuf {
        self.dir.join("improvements")
    }

    /// The rolling report of the month (fleet time) of `at`.
    pub fn month(&self, at: DateTime<Utc>, tz: Tz) -> PathBuf {
        self.months_dir().join(format!("{}.md", month_key(at, tz)))
    }

    /// Where a single `improvements.md` from before monthly files is kept.
    pub fn earlier(&self) -> PathBuf {
        self.months_dir().join("earlier.md")
    }

    pub fn ledger(&self) -> PathBuf {
        self.dir.join("ledger.json")
    }

    /// Every open and acknowledged finding, by node, as of the last analysis.
    pub fn open(&self) -> PathBuf {
        self.dir.join("open.md")
    }

    /// The folder of dated section files.
    pub fn reports_dir(&self) -> PathBuf {
        self.dir.join("reports")
    }

    /// The dated file of a section, in `reports/YYYY/MM/` (local): local minute and UTC offset
    /// (unique across a fall-back hour), with `_2`, `_3`… when a file of another capture already
    /// has the name (two runs in one minute).
    pub fn dated(&self, at: DateTime<Utc>, tz: Tz) -> PathBuf {
        let local = at.with_timezone(&tz);
        let stem = local.format("%Y-%m-%d_%H%M%z").to_string();
        let dir = self
            .reports_dir()
            .join(local.format("%Y").to_string())
            .join(local.format("%m").to_string());
        let mut path = dir.join(format!("{stem}.md"));
        let mut n = 2;
        while path.exists() {
            path = dir.join(format!("{stem}_{n}.md"));
            n += 1;
        }
        path
    }

    /// Whether `improvements.md` is a whole report from before monthly files.
    fn legacy_rolling(&self) -> Result<bool> {
        use std::io::Read;
        let path = self.rolling();
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut head = vec![0u8; INDEX_MARKER.len()];
        let n = file.read(&mut head).map_err(|e| Error::io(&path, e))?;
        Ok(&head[..n] != INDEX_MARKER.as_bytes())
    }

    /// Where a pre-monthly `improvements.md` goes: `earlier.md`, else the first free
    /// `earlier-N.md`.
    fn legacy_target(&self) -> PathBuf {
        let mut to = self.earlier();
        let mut n = 2;
        while to.exists() {
            to = self.months_dir().join(format!("earlier-{n}.md"));
            n += 1;
        }
        to
    }

    /// Moves a pre-monthly `improvements.md` to `improvements/earlier.md` (never over another
    /// file: `earlier-2.md`…), so its content stays readable and linked from the index.
    fn keep_legacy(&self) -> Result<()> {
        if !self.legacy_rolling()? {
            return Ok(());
        }
        let dir = self.months_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let to = self.legacy_target();
        let from = self.rolling();
        std::fs::rename(&from, &to).map_err(|e| Error::io(&from, e))
    }
}

/// "2026-02": the month of `at` in the fleet's time zone, as the index and file names say it.
pub fn month_key(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m").to_string()
}

/// The index: one line per month, newest first, the current month first of all, and the
/// report from before monthly files (when there is one) last.
pub fn render_index(
    fleet: &str,
    tz: Tz,
    months: &std::collections::BTreeMap<String, MonthCounts>,
    earlier: &[String],
) -> String {
    let mut out = format!(
        "{INDEX_MARKER}\n# {} -- Live Improvements Report\n\n",
        escape_inline(fleet)
    );
    match months.keys().next_back() {
        Some(current) => out.push_str(&format!(
            "Current month: [{current}](improvements/{current}.md). One file per month ({}), newest first; dated files of single sections are in `reports/YYYY/MM/`.\n\n",
            tz.name()
        )),
        None => out.push_str("No monthly report yet.\n\n"),
    }
    out.push_str("| month | sections | new findings | resolved |\n|---|---:|---:|---:|\n");
    for (month, c) in months.iter().rev() {
        out.push_str(&format!(
            "| [{month}](improvements/{month}.md) | {} | {} | {} |\n",
            c.sections, c.new, c.resolved
        ));
    }
    for name in earlier {
        out.push_str(&format!(
            "| [before monthly files](improvements/{name}) | | | |\n"
        ));
    }
    out
}

/// The names of reports kept from before monthly files (`earlier.md`, `earlier-2.md`…).
fn earlier_files(output: &Output) -> Result<Vec<String>> {
    let dir = output.months_dir();
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("earlier") && n.ends_with(".md"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    names.sort_by_key(|n| (n.len(), n.clone()));
    if output.legacy_rolling()?
        && let Some(name) = output.legacy_target().file_name()
    {
        names.push(name.to_string_lossy().to_string());
    }
    Ok(names)
}

/// The time a dated file's name gives (`2026-02-18_2153-0300.md`, `…_2.md`).
fn dated_time(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.strip_suffix(".md")?;
    let stem = stem.get(..20)?;
    DateTime::parse_from_str(stem, "%Y-%m-%d_%H%M%z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Deletes dated section files older than `before` (in `reports/YYYY/MM/`, and flat in
/// `reports/` from before dated folders), and the folders they leave empty. Only months that
/// can hold such files are read, so it stays cheap. Returns how many files went.
pub fn prune_dated(output: &Output, before: DateTime<Utc>) -> Result<usize> {
    let root = output.reports_dir();
    let read = |dir: &Path| -> Result<Vec<std::fs::DirEntry>> {
        match std::fs::read_dir(dir) {
            Ok(rd) => Ok(rd.flatten().collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(dir, e)),
        }
    };
    let remove = |path: &Path| -> Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    };
    // Local months run at most 14 h either side of UTC's: a month after `before`'s cannot hold
    // an older file.
    let last_month = (before + chrono::Duration::days(1))
        .format("%Y-%m")
        .to_string();
    let mut deleted = 0;
    for entry in read(&root)? {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_file() {
            if dated_time(&name).is_some_and(|t| t < before) {
                remove(&path)?;
                deleted += 1;
            }
            continue;
        }
        if !(name.len() == 4 && name.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        for month in read(&path)? {
            let mpath = month.path();
            let key = format!("{name}-{}", month.file_name().to_string_lossy());
            if key > last_month || !mpath.is_dir() {
                continue;
            }
            for file in read(&mpath)? {
                let fname = file.file_name().to_string_lossy().to_string();
                if dated_time(&fname).is_some_and(|t| t < before) {
                    remove(&file.path())?;
                    deleted += 1;
                }
            }
            // Gone only when empty: anything else someone put there stays.
            let _ = std::fs::remove_dir(&mpath);
        }
        let _ = std::fs::remove_dir(&path);
    }
    Ok(deleted)
}

/// Renders a section into the text appended to its month's rolling report (with the header
/// when the month's file does not exist yet), the text of its dated file, and the index as it
/// reads with `months` (which already count this section). Nothing is written.
pub fn render_section(
    output: &Output,
    fleet: &str,
    tz: Tz,
    at: DateTime<Utc>,
    section: &Section,
    months: &std::collections::BTreeMap<String, MonthCounts>,
    template_dir: Option<&Path>,
) -> Result<PendingSection> {
    let env = environment(template_dir)?;
    let render = |name: &str, ctx: minijinja::Value| -> Result<String> {
        env.get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| Error::Template {
                name: name.to_string(),
                message: e.to_string(),
            })
    };
    // The same section in two places: its link to `open.md` is relative to each.
    let body_in = |open_link: &str| {
        render(
            SECTION_TEMPLATE,
            minijinja::context! {
                section => minijinja::Value::from(minijinja::value::Serde(section)),
                open_link => open_link,
            },
        )
    };
    let body = body_in("../open.md")?;
    let dated_body = body_in("../../../open.md")?;
    let header = render(
        HEADER_TEMPLATE,
        minijinja::context! { fleet => escape_inline(fleet), timezone => tz.name(), month => month_key(at, tz) },
    )?;
    // Whatever a template (perhaps a local one) did with the values, no control character but
    // the line feed reaches the file.
    let (header, body, dated_body) = (plain(&header), plain(&body), plain(&dated_body));
    let month = output.month(at, tz);
    let mut rolling_text = String::new();
    if !month.exists() {
        rolling_text.push_str(&header);
    }
    rolling_text.push('\n');
    rolling_text.push_str(&body);
    let dated = output.dated(at, tz);
    Ok(PendingSection {
        at,
        rolling_path: Some(month.to_string_lossy().to_string()),
        rolling_text,
        index_text: Some(render_index(fleet, tz, months, &earlier_files(output)?)),
        dated_path: dated.to_string_lossy().to_string(),
        dated_text: format!("{header}\n{dated_body}"),
    })
}

/// Writes a rendered section: its dated file, its text appended to the month's report unless
/// that already ends with it (a run that crashed after writing it), then the index. A
/// pre-monthly `improvements.md` is moved aside first. Safe to call twice. Returns the dated
/// file.
pub fn commit_section(output: &Output, pending: &PendingSection) -> Result<PathBuf> {
    let dated = PathBuf::from(&pending.dated_path);
    fsutil::write_atomic(&dated, pending.dated_text.as_bytes(), output.mode)?;
    let rolling = match &pending.rolling_path {
        Some(p) => PathBuf::from(p),
        // Saved by a patrol from before monthly files: it belongs to the single report, which
        // is then kept as it is.
        None => output.rolling(),
    };
    if pending.rolling_path.is_some() {
        output.keep_legacy()?;
    }
    let already = match std::fs::read_to_string(&rolling) {
        Ok(text) => text.ends_with(&pending.rolling_text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io(&rolling, e)),
    };
    if !already {
        fsutil::append_atomic(&rolling, &pending.rolling_text, output.mode)?;
    }
    if let Some(index) = &pending.index_text {
        fsutil::write_atomic(&output.rolling(), index.as_bytes(), output.mode)?;
    }
    Ok(dated)
}

/// The text of `open.md` after the analysis of the capture at `at`: every open finding (those
/// the section reports in full included) and every acknowledged one, under its node (a finding
/// about several nodes or a peer group under "fleet", last), most important first.
pub fn render_open(
    fleet: &str,
    tz: Tz,
    at: DateTime<Utc>,
    outcome: &Outcome,
    ledger: &Ledger,
) -> String {
    let open = all_open(outcome, ledger);
    let mut acknowledged: Vec<&Acknowledged> = outcome.acknowledged.iter().collect();
    acknowledged.sort_by(|a, b| {
        b.finding
            .severity
            .cmp(&a.finding.severity)
            .then_with(|| a.finding.title.cmp(&b.finding.title))
    });
    let by_severity = by_severity(&open);
    let mut out = format!(
        "# {} -- Open findings\n\nWritten by the analysis of the capture at {}: {} open{}, {} acknowledged. Every analysis rewrites this file; what changed when is in the sections of the [report](improvements.md).\n",
        escape_inline(fleet),
        heading_time(at, tz, None),
        open.len(),
        if by_severity.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_severity.join(", "))
        },
        acknowledged.len()
    );
    // Nodes by name, then the fleet.
    let mut groups: Vec<Option<&str>> = open
        .iter()
        .map(|o| o.node())
        .chain(acknowledged.iter().map(|a| node_of(&a.finding)))
        .collect();
    groups.sort_by_key(|g| (g.is_none(), *g));
    groups.dedup();
    let local_date = local_date_in(tz);
    for group in groups {
        let lines: Vec<String> = open
            .iter()
            .filter(|o: &&OpenFinding| o.node() == group)
            .map(|o| format!("- {}", open_line(o, &local_date)))
            .collect();
        let acks: Vec<String> = acknowledged
            .iter()
            .filter(|a| node_of(&a.finding) == group)
            .map(|a| format!("- acknowledged: {}", acknowledged_line(a)))
            .collect();
        let name = group.map_or_else(|| "Fleet".to_string(), escape_inline);
        let counts = match acks.len() {
            0 => format!("{} open", lines.len()),
            n => format!("{} open, {n} acknowledged", lines.len()),
        };
        out.push_str(&format!("\n## {name} ({counts})\n\n"));
        for line in lines.iter().chain(&acks) {
            out.push_str(line);
            out.push('\n');
        }
    }
    plain(&out)
}

/// Rewrites `open.md` (atomically, with the reports' mode) from the analysis at `at`. Called
/// after the ledger is saved: it is a view of the ledger, never the record.
pub fn write_open(
    output: &Output,
    fleet: &str,
    tz: Tz,
    at: DateTime<Utc>,
    outcome: &Outcome,
    ledger: &Ledger,
) -> Result<PathBuf> {
    let path = output.open();
    let text = render_open(fleet, tz, at, outcome, ledger);
    fsutil::write_atomic(&path, text.as_bytes(), output.mode)?;
    Ok(path)
}
