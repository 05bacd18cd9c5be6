//! The fleet-wide settings tables: `[logs]`, `[report]`, `[daemon]` and `[retention]`, each
//! with its defaults (also those of a run without a config) and its reader.

use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::tomlread::{Ctx, Fields};
use crate::units::DurationRange;

use super::values::{bytes_in, count_in, duration, regex};

/// `[retention]`: ages after which captures are thinned (see `store::retention`).
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    pub full: chrono::Duration,
    pub hourly: chrono::Duration,
    pub daily: chrono::Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            full: chrono::Duration::days(14),
            hourly: chrono::Duration::days(60),
            daily: chrono::Duration::days(730),
        }
    }
}

/// `[daemon]`
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// Time between captures; recorded in every snapshot, by `patrol run` under cron too.
    pub interval: Duration,
    /// Cron expression (fleet time zone) for the weekly digest; sent when [telegram] is set.
    pub digest: Option<String>,
    /// Capture and archive only: a site collector of a shared archive, whose reporter runs
    /// elsewhere.
    pub capture_only: bool,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            interval: Duration::from_secs(900),
            digest: Some("0 8 * * 1".into()),
            capture_only: false,
        }
    }
}

/// `[report]`: how often findings are told again, acknowledgements, machine outputs.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// An unchanged open finding is repeated after this long.
    pub repeat_after: Duration,
    /// A headline value moving by this share (percent) is reported as changed.
    pub material_change_pct: f64,
    /// A rate growing by this share (percent) escalates.
    pub worse_rate_pct: f64,
    /// `acknowledged.toml` (default: next to the config, when it exists).
    pub acknowledged: Option<PathBuf>,
    /// A Prometheus textfile (node-exporter's textfile collector) of open findings.
    pub textfile: Option<PathBuf>,
    /// `file_mode`: the mode of reports, digests and charts (the textfile is always 0644).
    pub file_mode: u32,
    /// The directory of the config these settings came from (absolute): its `rules/` and
    /// `report-templates/`, when there, are the defaults, wherever patrol runs from. None
    /// without a config: ./rules and ./report-templates.
    pub config_dir: Option<PathBuf>,
    /// Dated section files (`reports/YYYY/MM/…`) older than this are deleted; the monthly
    /// rolling files are the long-term record.
    pub keep_dated: Duration,
    /// Resolved ledger entries are forgotten this long after they resolved.
    pub keep_resolved: Duration,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            repeat_after: Duration::from_secs(24 * 3600),
            material_change_pct: 25.0,
            worse_rate_pct: 50.0,
            acknowledged: None,
            textfile: None,
            file_mode: crate::fsutil::DEFAULT_SHARED_MODE,
            config_dir: None,
            keep_dated: Duration::from_secs(90 * 24 * 3600),
            keep_resolved: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Lines read per stream per capture; past it reading stops and the stream says so.
    pub max_lines: usize,
    /// Bytes read per container stream per capture; past it reading stops and the stream says
    /// so.
    pub max_bytes: u64,
    /// Time one container's log read may take (within the Docker source's own deadline).
    pub read_time: Duration,
    /// Distinct templates kept per stream; lines of further templates are counted per level.
    pub max_templates: usize,
    /// Further templates kept for WARNING and above once `max_templates` is reached.
    pub warn_templates: usize,
    pub samples: usize,
    /// Fields extracted from messages: name and a regex whose first group is the value.
    pub fields: Vec<(String, Regex)>,
    /// How far back the first capture of a stream reads.
    pub first_window: Duration,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            max_lines: 1_000_000,
            max_bytes: 64 * 1024 * 1024,
            read_time: Duration::from_secs(30),
            max_templates: 200,
            warn_templates: 50,
            samples: 3,
            fields: Vec::new(),
            first_window: Duration::from_secs(15 * 60),
        }
    }
}

/// `[logs]`: how much of each log stream a capture reads, and the fields pulled from messages.
pub(super) fn logs(f: &mut Fields, ctx: &mut Ctx) -> LogSettings {
    let mut logs = LogSettings::default();
    let Some(mut l) = f.table(ctx, "logs", "[logs]") else {
        return logs;
    };
    logs.max_lines = count_in(&mut l, ctx, "max_lines", 1, 1_000_000).unwrap_or(logs.max_lines);
    logs.max_templates =
        count_in(&mut l, ctx, "max_templates", 1, 100_000).unwrap_or(logs.max_templates);
    logs.warn_templates =
        count_in(&mut l, ctx, "warn_templates", 0, 100_000).unwrap_or(logs.warn_templates);
    if let Some(b) = bytes_in(&mut l, ctx, "max_bytes") {
        logs.max_bytes = b;
    }
    logs.read_time = duration(
        &mut l,
        ctx,
        "read_time",
        logs.read_time,
        DurationRange::TIMEOUT,
    );
    logs.samples = count_in(&mut l, ctx, "samples", 0, 100).unwrap_or(logs.samples);
    logs.first_window = duration(
        &mut l,
        ctx,
        "first_window",
        logs.first_window,
        DurationRange::SPAN,
    );
    if let Some(mut fields) = l.table(ctx, "fields", "[logs.fields]") {
        logs.fields = log_fields(&mut fields, ctx);
        fields.finish(ctx);
    }
    l.finish(ctx);
    logs
}

/// `[logs.fields]`: name = regex, whose first group is the value.
fn log_fields(fields: &mut Fields, ctx: &mut Ctx) -> Vec<(String, Regex)> {
    let mut out = Vec::new();
    let names: Vec<String> = fields.keys();
    for name in names {
        if let Some(s) = fields.string(ctx, &name, false)
            && let Some(r) = regex(ctx, &format!("logs.fields.{name}"), &s)
        {
            if r.captures_len() < 2 {
                ctx.report(
                    s.span(),
                    format!("logs.fields.{name}: the regex needs a capture group for the value"),
                );
            } else {
                out.push((name, r));
            }
        }
    }
    out
}

/// `[report]`; `acknowledged.toml` beside the config is the default acknowledgements file.
pub(super) fn report(f: &mut Fields, ctx: &mut Ctx, base: &Path) -> ReportSettings {
    let mut report = ReportSettings::default();
    if let Some(mut r) = f.table(ctx, "report", "[report]") {
        report.repeat_after = duration(
            &mut r,
            ctx,
            "repeat_after",
            report.repeat_after,
            DurationRange::SPAN,
        );
        for (key, slot) in [
            ("material_change_pct", &mut report.material_change_pct),
            ("worse_rate_pct", &mut report.worse_rate_pct),
        ] {
            if let Some(v) = r.number(ctx, key) {
                if *v.get_ref() <= 0.0 {
                    ctx.report(v.span(), format!("[report]: `{key}` must be above 0"));
                } else {
                    *slot = *v.get_ref();
                }
            }
        }
        report.acknowledged = r
            .string(ctx, "acknowledged", false)
            .map(|p| base.join(p.into_inner()));
        report.textfile = r
            .string(ctx, "textfile", false)
            .map(|p| base.join(p.into_inner()));
        if let Some(m) = r.string(ctx, "file_mode", false) {
            match crate::fsutil::Mode::parse_shared(m.get_ref()) {
                Ok(mode) => report.file_mode = mode,
                Err(e) => ctx.report(m.span(), format!("[report]: `file_mode` {e}")),
            }
        }
        report.keep_dated = duration(
            &mut r,
            ctx,
            "keep_dated",
            report.keep_dated,
            DurationRange::SPAN,
        );
        report.keep_resolved = duration(
            &mut r,
            ctx,
            "keep_resolved",
            report.keep_resolved,
            DurationRange::SPAN,
        );
        r.finish(ctx);
    }
    if report.acknowledged.is_none() && base.join("acknowledged.toml").exists() {
        report.acknowledged = Some(base.join("acknowledged.toml"));
    }
    report.config_dir = Some(base.to_path_buf());
    report
}

/// `[daemon]`: the capture interval, the digest's schedule, capture only.
pub(super) fn daemon(f: &mut Fields, ctx: &mut Ctx) -> DaemonSettings {
    let mut daemon = DaemonSettings::default();
    let Some(mut d) = f.table(ctx, "daemon", "[daemon]") else {
        return daemon;
    };
    daemon.interval = duration(
        &mut d,
        ctx,
        "interval",
        daemon.interval,
        DurationRange::INTERVAL,
    );
    daemon.capture_only = d
        .boolean(ctx, "capture_only")
        .unwrap_or(daemon.capture_only);
    if let Some(cron) = d.string(ctx, "digest", false) {
        if cron.get_ref().is_empty() || cron.get_ref() == "off" {
            daemon.digest = None;
        } else if let Err(e) = cron.get_ref().parse::<croner::Cron>() {
            ctx.report(
                cron.span(),
                format!("[daemon]: `digest` is not a cron expression: {e}"),
            );
        } else {
            daemon.digest = Some(cron.into_inner());
        }
    }
    d.finish(ctx);
    daemon
}

/// `[retention]`: on unless a fleet says `enabled = false`, since an archive nobody thins fills
/// its disk.
pub(super) fn retention(f: &mut Fields, ctx: &mut Ctx) -> Option<RetentionSettings> {
    let Some(mut r) = f.table(ctx, "retention", "[retention]") else {
        return Some(RetentionSettings::default());
    };
    let d = RetentionSettings::default();
    let enabled = r.boolean(ctx, "enabled").unwrap_or(true);
    let full = age(&mut r, ctx, "full", d.full);
    let hourly = age(&mut r, ctx, "hourly", d.hourly);
    let daily = age(&mut r, ctx, "daily", d.daily);
    if !(full <= hourly && hourly <= daily) {
        ctx.report(
            r.span.clone(),
            "[retention]: `full` ≤ `hourly` ≤ `daily` (each is an age)",
        );
    }
    r.finish(ctx);
    enabled.then_some(RetentionSettings {
        full,
        hourly,
        daily,
    })
}

/// One retention age: a span, kept as the `chrono` duration the store compares with.
fn age(r: &mut Fields, ctx: &mut Ctx, key: &str, default: chrono::Duration) -> chrono::Duration {
    let std = duration(
        r,
        ctx,
        key,
        default.to_std().unwrap_or_default(),
        DurationRange::SPAN,
    );
    chrono::Duration::from_std(std).unwrap_or(default)
}
