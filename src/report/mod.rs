//! The improvements report: each analysis that has something to say appends one section to the
//! rolling report of its month (`improvements/2026-02.md`, the fleet's time zone) and writes the
//! same section alone to a dated file (`reports/2026/02/2026-02-18_2153-0300.md`).
//!
//! Output stays bounded over years: a month's file holds a month (a 3-node fleet every 15 min
//! writes about 2 MB), `improvements.md` is a small index of the months, newest first, with
//! their counts, and dated files older than `keep_dated` are deleted (they are for mail and
//! attachments; the monthly files are the record). A single `improvements.md` written before
//! monthly files is moved, whole, to `improvements/earlier.md` and linked from the index.
//!
//! Sections are rendered by minijinja templates (report-templates/); the binary carries copies
//! so it works from any directory, and a `report-templates/` directory next to where patrol runs
//! overrides them.
//!
//! Times are local to the fleet, so a heading carries the UTC offset in force at its time: when
//! clocks fall back, 02:30 summer time and 02:30 winter time are two headings and two dated files
//! (`2026-10-25_0230+0200.md`, `2026-10-25_0230+0100.md`), never one overwriting the other.
//! Every value of a section is flattened to one line with its control characters made visible,
//! so fleet text cannot open a block (a forged `## ` heading) or reach a terminal as an escape.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::ledger::{Deployment, Ledger, MonthCounts, Outcome, PendingSection, Reason, Status};
use crate::markdown::{escape_inline, one_line, plain};
use crate::model::Severity;
use crate::units::fmt_duration;

pub const HEADER_TEMPLATE: &str = "improvements-header.md.j2";
pub const SECTION_TEMPLATE: &str = "section.md.j2";
pub const DIGEST_TEMPLATE: &str = "digest.md.j2";

const BUILTIN: &[(&str, &str)] = &[
    (
        HEADER_TEMPLATE,
        include_str!("../../report-templates/improvements-header.md.j2"),
    ),
    (
        SECTION_TEMPLATE,
        include_str!("../../report-templates/section.md.j2"),
    ),
    (
        DIGEST_TEMPLATE,
        include_str!("../../report-templates/digest.md.j2"),
    ),
];

/// Renders a digest view with `digest.md.j2`.
pub fn render_digest<T: Serialize>(view: &T, template_dir: Option<&Path>) -> Result<String> {
    let env = environment(template_dir)?;
    env.get_template(DIGEST_TEMPLATE)
        .and_then(|t| {
            t.render(
                minijinja::context! { d => minijinja::Value::from(minijinja::value::Serde(view)) },
            )
        })
        .map(|text| plain(&text))
        .map_err(|e| Error::Template {
            name: DIGEST_TEMPLATE.to_string(),
            message: e.to_string(),
        })
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub severity: String,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// "2026-02-18 21:53 (UTC-03:00)" in the fleet's time zone, with the offset in force then
    /// (and seconds when the previous section was in the same minute).
    pub heading_time: String,
    pub severity: String,
    pub items: Vec<Item>,
    /// One line per open finding not repeated in full.
    pub still_open: Vec<String>,
    /// One line per acknowledged finding.
    pub acknowledged: Vec<String>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Counts {
    pub new: usize,
    pub escalated: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub resolved: usize,
    pub still_open: usize,
    pub acknowledged: usize,
}

/// Where a fleet's reports go.
pub struct Output {
    pub dir: PathBuf,
    /// Who may read the reports (`[report] file_mode`).
    pub mode: fsutil::Mode,
}

/// The first line of the index: how a pre-monthly `improvements.md` (the whole report) is told
/// from the index that replaced it.
const INDEX_MARKER: &str = "<!-- patrol: index of the monthly reports in improvements/ -->";

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

fn environment(template_dir: Option<&Path>) -> Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| Error::Template {
            name: "syntax".into(),
            message: e.to_string(),
        })?;
    env.set_syntax(syntax);
    for (name, builtin) in BUILTIN {
        let source = match template_dir.map(|d| d.join(name)) {
            Some(p) if p.exists() => fsutil::read_to_string(&p)?,
            _ => builtin.to_string(),
        };
        env.add_template_owned(name.to_string(), source)
            .map_err(|e| Error::Template {
                name: name.to_string(),
                message: e.to_string(),
            })?;
    }
    Ok(env)
}

/// "Feb 19 00:30", with the UTC offset when the local time happens twice (clocks falling back).
fn local_date(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    let text = local.format("%b %-d %H:%M").to_string();
    if is_ambiguous(&local) {
        format!("{text} (UTC{})", local.format("%:z"))
    } else {
        text
    }
}

/// Whether this local time is read twice on the clock (the hour repeated when clocks fall back).
fn is_ambiguous(local: &DateTime<Tz>) -> bool {
    use chrono::TimeZone;
    matches!(
        local.timezone().from_local_datetime(&local.naive_local()),
        chrono::LocalResult::Ambiguous(..)
    )
}

/// A section's heading time: local, with the UTC offset in force then, and with seconds when the
/// previous section was written in the same minute (two runs in one minute stay two headings).
pub fn heading_time(at: DateTime<Utc>, tz: Tz, previous: Option<DateTime<Utc>>) -> String {
    let local = at.with_timezone(&tz);
    let same_minute =
        previous.is_some_and(|p| p.timestamp().div_euclid(60) == at.timestamp().div_euclid(60));
    let clock = if same_minute {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M"
    };
    format!("{} (UTC{})", local.format(clock), local.format("%:z"))
}

/// Turns what the ledger says into a section; `None` when there is nothing new to say.
/// `previous` is when the last section was written.
pub fn build_section(
    outcome: &Outcome,
    worst_open: Option<Severity>,
    at: DateTime<Utc>,
    tz: Tz,
    previous: Option<DateTime<Utc>>,
) -> Option<Section> {
    if outcome.is_empty() {
        return None;
    }
    let local_date = |t: DateTime<Utc>| local_date(t, tz);
    let mut items = Vec::new();
    for r in &outcome.reported {
        let f = &r.finding;
        let mut title = f.title.clone();
        let mut body = f.evidence.clone();
        match &r.reason {
            Reason::New => {}
            Reason::Reopened { after } => {
                body = format!("Back after resolving at {}. {body}", local_date(*after));
            }
            Reason::Escalated { why } => {
                title = format!("{title} — escalated: {why}");
                body = format!("Open since {}. {body}", local_date(r.first_seen));
            }
            Reason::Changed { what } => {
                title = format!("{title} — changed: {what}");
                body = format!("Open since {}. {body}", local_date(r.first_seen));
            }
            Reason::Unchanged { since, nth } => {
                title = format!(
                    "{title} — unchanged since {}, {} report",
                    local_date(*since),
                    ordinal(*nth)
                );
            }
            Reason::AckExpired { owner, reason } => {
                body = format!(
                    "The acknowledgement by {owner} ({reason}) has expired and it still holds. {body}"
                );
            }
        }
        if r.leaves_unchecked > 0 {
            body.push_str(&format!(
                " It leaves {} about it unchecked: they stay open until it is seen again.",
                crate::units::plural(r.leaves_unchecked, "open finding")
            ));
        }
        if !f.recommendation.is_empty() {
            body.push(' ');
            body.push_str(&f.recommendation);
        }
        match &r.deployment {
            Some(Deployment::NotYet { missing, since }) => body.push_str(&format!(
                " Recommendation not yet deployed: {missing} (since {}).",
                local_date(*since)
            )),
            Some(Deployment::Deployed { on }) => {
                body.push_str(&format!(" Recommendation deployed on {}.", local_date(*on)))
            }
            None => {}
        }
        items.push(Item {
            severity: f.severity.label().to_string(),
            title: one_line(&title),
            body: one_line(&body),
        });
    }
    for r in &outcome.resolved {
        let open_for = fmt_duration((r.resolved_at - r.first_seen).num_seconds() as f64);
        let now = match &r.now {
            Some(n) => format!("Now {n}. "),
            None => String::new(),
        };
        items.push(Item {
            severity: Severity::Info.label().to_string(),
            title: one_line(&format!("Resolved: {}", r.finding.title)),
            body: one_line(&format!(
                "{now}The condition first reported at {} no longer holds; it was open for {open_for}.",
                local_date(r.first_seen)
            )),
        });
    }
    let reported_worst = outcome
        .reported
        .iter()
        .map(|n| n.finding.severity)
        .chain(std::iter::once(Severity::Info).filter(|_| !outcome.resolved.is_empty()))
        .max();
    let severity = worst_open.max(reported_worst).unwrap_or(Severity::Info);
    let mut open_sorted: Vec<&crate::ledger::StillOpen> = outcome.still_open.iter().collect();
    open_sorted.sort_by(|a, b| {
        b.finding
            .severity
            .cmp(&a.finding.severity)
            .then_with(|| a.finding.title.cmp(&b.finding.title))
    });
    let still_open: Vec<String> = open_sorted
        .into_iter()
        .map(|o| {
            let f = &o.finding;
            one_line(&match o.unchecked_since {
                Some(t) => format!(
                    "[{}] {} (could not check since {})",
                    f.severity.label(),
                    f.title,
                    local_date(t)
                ),
                None => format!(
                    "[{}] {} (since {})",
                    f.severity.label(),
                    f.title,
                    local_date(o.first_seen)
                ),
            })
        })
        .collect();
    let acknowledged: Vec<String> = outcome
        .acknowledged
        .iter()
        .map(|a| {
            one_line(&format!(
                "[{}] {} ({}: {}; until {})",
                a.finding.severity.label(),
                a.finding.title,
                escape_inline(&a.owner),
                escape_inline(&a.reason),
                a.expires
            ))
        })
        .collect();
    let count = |pred: fn(&Reason) -> bool| outcome.count(pred);
    Some(Section {
        heading_time: heading_time(at, tz, previous),
        severity: severity.label().to_string(),
        counts: Counts {
            new: count(|r| matches!(r, Reason::New | Reason::Reopened { .. })),
            escalated: count(|r| matches!(r, Reason::Escalated { .. })),
            changed: count(|r| matches!(r, Reason::Changed { .. })),
            unchanged: count(|r| matches!(r, Reason::Unchanged { .. } | Reason::AckExpired { .. })),
            resolved: outcome.resolved.len(),
            still_open: still_open.len(),
            acknowledged: acknowledged.len(),
        },
        items,
        still_open,
        acknowledged,
    })
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Renders a section into the text appended to its month's rolling report (with the header
/// when the month's file does not exist yet), the text of its dated file, and the index as it
/// reads with `months` (which already count this section). Nothing is written.
#[allow(clippy::too_many_arguments)]
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
    let body = render(
        SECTION_TEMPLATE,
        minijinja::context! { section => minijinja::Value::from(minijinja::value::Serde(section)) },
    )?;
    let header = render(
        HEADER_TEMPLATE,
        minijinja::context! { fleet => escape_inline(fleet), timezone => tz.name(), month => month_key(at, tz) },
    )?;
    // Whatever a template (perhaps a local one) did with the values, no control character but
    // the line feed reaches the file.
    let (header, body) = (plain(&header), plain(&body));
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
        dated_text: format!("{header}\n{body}"),
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

/// Open findings as a Prometheus textfile (for node-exporter's textfile collector): counts by
/// severity and by rule, acknowledged ones apart, when the analysis ran, and whether each
/// source of the newest captures answered, so the fleet's Prometheus can alert on patrol itself.
pub fn prometheus_textfile(
    fleet: &str,
    ledger: &Ledger,
    sources: &[SourceHealth],
    at: DateTime<Utc>,
) -> String {
    let label = |v: &str| label_value(&plain(v));
    let open: Vec<&crate::ledger::Entry> = ledger
        .entries
        .values()
        .filter(|e| e.status == Status::Open && !e.finding.event)
        .collect();
    let mut out = String::new();
    out.push_str(
        "# HELP patrol_open_findings Open findings by severity, acknowledged ones excluded.\n",
    );
    out.push_str("# TYPE patrol_open_findings gauge\n");
    for sev in [Severity::Warning, Severity::Info, Severity::Suggestion] {
        let n = open
            .iter()
            .filter(|e| e.finding.severity == sev && !e.acknowledged)
            .count();
        out.push_str(&format!(
            "patrol_open_findings{{fleet=\"{}\",severity=\"{}\"}} {n}\n",
            label(fleet),
            sev.label().to_ascii_lowercase()
        ));
    }
    out.push_str("# HELP patrol_acknowledged_findings Open findings under an acknowledgement.\n");
    out.push_str("# TYPE patrol_acknowledged_findings gauge\n");
    out.push_str(&format!(
        "patrol_acknowledged_findings{{fleet=\"{}\"}} {}\n",
        label(fleet),
        open.iter().filter(|e| e.acknowledged).count()
    ));
    out.push_str("# HELP patrol_open_findings_by_rule Open findings by rule.\n");
    out.push_str("# TYPE patrol_open_findings_by_rule gauge\n");
    let mut by_rule: std::collections::BTreeMap<(&str, Severity), usize> = Default::default();
    for e in &open {
        *by_rule
            .entry((e.finding.rule_id.as_str(), e.finding.severity))
            .or_default() += 1;
    }
    for ((rule, sev), n) in by_rule {
        out.push_str(&format!(
            "patrol_open_findings_by_rule{{fleet=\"{}\",rule=\"{}\",severity=\"{}\"}} {n}\n",
            label(fleet),
            label(rule),
            sev.label().to_ascii_lowercase()
        ));
    }
    out.push_str(
        "# HELP patrol_last_analysis_timestamp_seconds When the findings were computed.\n",
    );
    out.push_str("# TYPE patrol_last_analysis_timestamp_seconds gauge\n");
    out.push_str(&format!(
        "patrol_last_analysis_timestamp_seconds{{fleet=\"{}\"}} {}\n",
        label(fleet),
        at.timestamp()
    ));
    out.push_str(
        "# HELP patrol_source_up Whether the source answered in the node's newest capture (1) or failed (0).\n",
    );
    out.push_str("# TYPE patrol_source_up gauge\n");
    for s in sources {
        out.push_str(&format!(
            "patrol_source_up{{fleet=\"{}\",node=\"{}\",source=\"{}\"}} {}\n",
            label(fleet),
            label(&s.node),
            label(&s.source),
            u8::from(s.up)
        ));
    }
    out.push_str(
        "# HELP patrol_source_last_success_timestamp_seconds When the source last answered, within the analysis window (absent: not in the window).\n",
    );
    out.push_str("# TYPE patrol_source_last_success_timestamp_seconds gauge\n");
    for s in sources {
        if let Some(t) = s.last_success {
            out.push_str(&format!(
                "patrol_source_last_success_timestamp_seconds{{fleet=\"{}\",node=\"{}\",source=\"{}\"}} {t}\n",
                label(fleet),
                label(&s.node),
                label(&s.source)
            ));
        }
    }
    out
}

/// One source of one node as the newest capture left it, for the textfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHealth {
    pub node: String,
    pub source: String,
    /// It answered in the node's newest capture.
    pub up: bool,
    /// When it last answered within the analysis window (unix s).
    pub last_success: Option<i64>,
}

/// A label value in the text exposition format: backslash, double quote and line feed are the
/// three characters it escapes; other control characters were made visible before.
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Every open finding with its evidence and lifecycle, what this analysis reported and
/// resolved, as one JSON document.
pub fn json(
    fleet: &str,
    tz: Tz,
    outcome: &Outcome,
    ledger: &Ledger,
    section: Option<&Path>,
) -> serde_json::Value {
    use serde_json::json;
    let reason = |r: &Reason| -> serde_json::Value {
        match r {
            Reason::New => json!({ "status": "new" }),
            Reason::Reopened { after } => json!({ "status": "reopened", "resolved_at": after }),
            Reason::Escalated { why } => json!({ "status": "escalated", "why": why }),
            Reason::Changed { what } => json!({ "status": "changed", "what": what }),
            Reason::Unchanged { since, nth } => {
                json!({ "status": "unchanged", "since": since, "report": nth })
            }
            Reason::AckExpired { owner, reason } => {
                json!({ "status": "acknowledgement-expired", "owner": owner, "reason": reason })
            }
        }
    };
    let reported: std::collections::BTreeMap<String, serde_json::Value> = outcome
        .reported
        .iter()
        .map(|r| (r.finding.key(), reason(&r.reason)))
        .collect();
    let open: Vec<serde_json::Value> = ledger
        .entries
        .iter()
        .filter(|(_, e)| e.status == Status::Open && !e.finding.event)
        .map(|(key, e)| {
            let lifecycle = reported.get(key).cloned().unwrap_or_else(
                || json!({ "status": if e.acknowledged { "acknowledged" } else { "persisting" } }),
            );
            json!({
                "key": key,
                "finding": e.finding,
                "lifecycle": lifecycle,
                "first_seen": e.first_seen,
                "last_seen": e.last_seen,
                "occurrences": e.occurrences,
                "consecutive": e.consecutive,
                "reports": e.reports,
                "last_reported": e.last_reported,
                "reopened": e.reopened,
                "unchecked_since": e.unchecked_since,
                "acknowledged": e.acknowledged,
            })
        })
        .collect();
    let events: Vec<serde_json::Value> = outcome
        .reported
        .iter()
        .filter(|r| r.finding.event)
        .map(|r| json!({ "finding": r.finding, "lifecycle": reason(&r.reason) }))
        .collect();
    let resolved: Vec<serde_json::Value> = outcome
        .resolved
        .iter()
        .map(|r| {
            json!({
                "key": r.finding.key(),
                "finding": r.finding,
                "first_seen": r.first_seen,
                "resolved_at": r.resolved_at,
                "now": r.now,
            })
        })
        .collect();
    json!({
        "fleet": fleet,
        "timezone": tz.name(),
        "analysed_at": ledger.last_analysis,
        "section": section.map(|p| p.display().to_string()),
        "worst_open": ledger.worst_open().map(|s| s.label()),
        "open": open,
        "events": events,
        "resolved": resolved,
    })
}

/// One row of `patrol rules noise`.
pub struct NoiseRow {
    pub rule: String,
    pub sections: usize,
    pub share_pct: f64,
    pub flaps: u32,
    pub verdict: &'static str,
}

/// Rules by how often they spoke in the last `last` sections, and how often their findings came
/// back after resolving; the noisiest first.
pub fn noise(ledger: &Ledger, last: usize) -> Vec<NoiseRow> {
    let recent: Vec<&crate::ledger::SectionLog> = ledger.sections.iter().rev().take(last).collect();
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in &recent {
        for r in &s.rules {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut flaps: std::collections::BTreeMap<&str, u32> = Default::default();
    for e in ledger.entries.values() {
        *flaps.entry(e.finding.rule_id.as_str()).or_default() += e.reopened;
    }
    let mut rows: Vec<NoiseRow> = counts
        .keys()
        .chain(flaps.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|rule| {
            let sections = counts.get(rule).copied().unwrap_or(0);
            let share_pct = sections as f64 / recent.len().max(1) as f64 * 100.0;
            let flaps = flaps.get(rule).copied().unwrap_or(0);
            let verdict = if share_pct > 50.0 {
                "noisy: speaks in most sections; raise its threshold or lengthen its window"
            } else if flaps >= 3 {
                "flaps: resolves and comes back; add hysteresis (for_captures) or widen its window"
            } else {
                "ok"
            };
            NoiseRow {
                rule: rule.to_string(),
                sections,
                share_pct,
                flaps,
                verdict,
            }
        })
        .filter(|r| r.sections > 0 || r.flaps > 0)
        .collect();
    rows.sort_by(|a, b| {
        b.share_pct
            .total_cmp(&a.share_pct)
            .then(b.flaps.cmp(&a.flaps))
            .then(a.rule.cmp(&b.rule))
    });
    rows
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_textfile_says_which_sources_answered_and_when_each_last_did() {
        let node = "odd \"name\" \\ here";
        let health = |source: &str, up: bool, last_success: Option<i64>| SourceHealth {
            node: node.to_string(),
            source: source.to_string(),
            up,
            last_success,
        };
        let text = prometheus_textfile(
            "fleet",
            &Ledger::default(),
            &[
                health("host", true, Some(2_000)),
                health("docker", false, Some(1_000)),
                health("ssh", false, None),
            ],
            DateTime::from_timestamp(2_000, 0).unwrap(),
        );
        let esc = "odd \\\"name\\\" \\\\ here";
        for line in [
            "# TYPE patrol_source_up gauge".to_string(),
            "# TYPE patrol_source_last_success_timestamp_seconds gauge".to_string(),
            format!("patrol_source_up{{fleet=\"fleet\",node=\"{esc}\",source=\"host\"}} 1"),
            format!("patrol_source_up{{fleet=\"fleet\",node=\"{esc}\",source=\"docker\"}} 0"),
            format!("patrol_source_up{{fleet=\"fleet\",node=\"{esc}\",source=\"ssh\"}} 0"),
            format!(
                "patrol_source_last_success_timestamp_seconds{{fleet=\"fleet\",node=\"{esc}\",source=\"host\"}} 2000"
            ),
            format!(
                "patrol_source_last_success_timestamp_seconds{{fleet=\"fleet\",node=\"{esc}\",source=\"docker\"}} 1000"
            ),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(!text.contains("source_last_success_timestamp_seconds{fleet=\"fleet\",node=\"odd \\\"name\\\" \\\\ here\",source=\"ssh\"}"));
    }

    fn pending(output: &Output, at: DateTime<Utc>, months: &[(&str, u32)]) -> PendingSection {
        let tz: Tz = "America/Sao_Paulo".parse().unwrap();
        let section = Section {
            heading_time: heading_time(at, tz, None),
            severity: "INFO".into(),
            items: vec![Item {
                severity: "INFO".into(),
                title: format!("at {at}"),
                body: "b".into(),
            }],
            still_open: vec![],
            acknowledged: vec![],
            counts: Counts {
                new: 1,
                escalated: 0,
                changed: 0,
                unchanged: 0,
                resolved: 0,
                still_open: 0,
                acknowledged: 0,
            },
        };
        let months = months
            .iter()
            .map(|(m, n)| {
                (
                    m.to_string(),
                    MonthCounts {
                        sections: *n,
                        new: *n,
                        resolved: 0,
                    },
                )
            })
            .collect();
        render_section(output, "f", tz, at, &section, &months, None).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn sections_go_to_the_file_of_their_local_month_and_the_index_points_at_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let output = Output {
            dir: dir.path().to_path_buf(),
            mode: fsutil::Mode::SHARED,
        };
        // 01:00 UTC on Mar 1 is still Feb 28 in São Paulo (UTC-3).
        let feb = utc("2026-03-01T01:00:00Z");
        let p = pending(&output, feb, &[("2026-02", 1)]);
        commit_section(&output, &p).unwrap();
        let mar = utc("2026-03-01T04:00:00Z");
        let p = pending(&output, mar, &[("2026-02", 1), ("2026-03", 1)]);
        // Written twice (a crash after the first): appended once.
        commit_section(&output, &p).unwrap();
        commit_section(&output, &p).unwrap();
        let month = |m: &str| {
            std::fs::read_to_string(dir.path().join(format!("improvements/{m}.md"))).unwrap()
        };
        assert_eq!(month("2026-02").matches("\n## ").count(), 1);
        assert_eq!(month("2026-03").matches("\n## ").count(), 1);
        assert!(month("2026-03").starts_with("# f -- Live Improvements Report"));
        let index = std::fs::read_to_string(output.rolling()).unwrap();
        assert!(
            index.contains("Current month: [2026-03](improvements/2026-03.md)"),
            "{index}"
        );
        let rows: Vec<&str> = index.lines().filter(|l| l.starts_with("| [")).collect();
        assert_eq!(
            rows,
            vec![
                "| [2026-03](improvements/2026-03.md) | 1 | 1 | 0 |",
                "| [2026-02](improvements/2026-02.md) | 1 | 1 | 0 |",
            ]
        );
        assert!(
            dir.path()
                .join("reports/2026/02/2026-02-28_2200-0300.md")
                .exists()
        );
        assert!(
            dir.path()
                .join("reports/2026/03/2026-03-01_0100-0300.md")
                .exists()
        );
    }

    #[test]
    fn a_report_from_before_monthly_files_is_kept_whole_and_linked_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let output = Output {
            dir: dir.path().to_path_buf(),
            mode: fsutil::Mode::SHARED,
        };
        let old =
            "# f -- Live Improvements Report\n\n## 2026-01-05 10:00 (UTC-03:00) -- INFO\nold\n";
        std::fs::write(output.rolling(), old).unwrap();
        // A section a patrol from before monthly files left pending: it ends the old report.
        let legacy = PendingSection {
            rolling_path: None,
            index_text: None,
            ..pending(&output, utc("2026-01-06T13:00:00Z"), &[])
        };
        commit_section(&output, &legacy).unwrap();
        let p = pending(&output, utc("2026-02-01T13:00:00Z"), &[("2026-02", 1)]);
        commit_section(&output, &p).unwrap();
        let kept = std::fs::read_to_string(output.earlier()).unwrap();
        assert!(kept.starts_with(old), "the old report is kept unchanged");
        assert_eq!(kept.matches("\n## ").count(), 2, "with the pending section");
        let index = std::fs::read_to_string(output.rolling()).unwrap();
        assert!(index.starts_with(INDEX_MARKER));
        assert!(index.contains("| [before monthly files](improvements/earlier.md) | | | |"));
        // The index, now in place, is never taken for an old report.
        let p = pending(&output, utc("2026-02-02T13:00:00Z"), &[("2026-02", 2)]);
        commit_section(&output, &p).unwrap();
        assert!(!dir.path().join("improvements/earlier-2.md").exists());
    }

    #[test]
    fn dated_files_older_than_the_cutoff_go_with_their_empty_folders() {
        let dir = tempfile::tempdir().unwrap();
        let output = Output {
            dir: dir.path().to_path_buf(),
            mode: fsutil::Mode::SHARED,
        };
        let files = [
            "reports/2025-12-30_1000-0300.md",
            "reports/2026/01/2026-01-30_2300-0300.md",
            "reports/2026/01/2026-01-31_2300-0300_2.md",
            "reports/2026/02/2026-02-01_0000-0300.md",
            "reports/2026/02/2026-02-20_1000-0300.md",
        ];
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x").unwrap();
        }
        std::fs::write(dir.path().join("reports/notes.txt"), "mine").unwrap();
        // 2026-02-01 02:00 UTC is Jan 31 23:00 in São Paulo.
        let deleted = prune_dated(&output, utc("2026-02-01T02:30:00Z")).unwrap();
        assert_eq!(deleted, 3);
        let left: Vec<bool> = files.iter().map(|f| dir.path().join(f).exists()).collect();
        assert_eq!(left, vec![false, false, false, true, true]);
        assert!(
            !dir.path().join("reports/2026/01").exists(),
            "empty month folder removed"
        );
        assert!(
            dir.path().join("reports/notes.txt").exists(),
            "other files stay"
        );
    }

    #[test]
    fn label_values_escape_exactly_what_the_exposition_format_escapes() {
        assert_eq!(label_value("a\\b\"c\nd\te"), "a\\\\b\\\"c\\nd e");
    }
}
