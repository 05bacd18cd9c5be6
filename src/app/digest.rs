//! `patrol digest` (and the daemon's scheduled digest): the week's digest written as markdown
//! and charts beside the report, split into Telegram messages, and delivered through the outbox.

use std::path::{Path, PathBuf};

use chrono::Utc;
use chrono_tz::Tz;

use super::{
    EXIT_FINDINGS, EXIT_OK, FleetGuard, config_library, default_output, fleet_config, hold_fleet,
    load_library, open_archive, open_spec, parse_wait, shared_mode, template_dir,
};
use crate::cli::DigestArgs;
use crate::config;
use crate::digest::{Digest, Week};
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::markdown::plain;
use crate::report;
use crate::store::Archive;

/// `patrol digest`: the week's digest (markdown and charts), its Telegram messages, delivery.
pub(super) fn digest_cmd(args: DigestArgs) -> Result<i32> {
    let wait = parse_wait(args.wait.as_deref())?;
    make_digest(&args, wait)
}

/// Makes the digest the arguments describe, waiting up to `wait` for a run or report writing the
/// same output (the daemon passes its interval).
pub(super) fn make_digest(args: &DigestArgs, wait: std::time::Duration) -> Result<i32> {
    let config = fleet_config(args.config.clone())?;
    let (archive, out, fleet, tz) = match &config {
        Some(c) => (
            open_spec(&c.archive, Some(&c.fleet))?,
            args.out.clone().unwrap_or_else(|| c.output.clone()),
            c.fleet.clone(),
            c.timezone,
        ),
        None => {
            let (archive, fleet, tz) = open_archive(&args.archive)?;
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| default_output(&archive, &fleet));
            (archive, out, fleet, tz)
        }
    };
    let week = match &args.week {
        Some(w) => Week::parse(w, tz)?,
        None => Week::containing(Utc::now(), tz).previous(tz),
    };
    // The output is the report's: a digest reads its ledger and writes beside it, so it waits
    // for a run or report writing there, as they wait for each other.
    let lock = hold_fleet(&[out.as_path()], wait, &[out.as_path()])?;
    let ledger = Ledger::load(&out.join("ledger.json"))?;
    let library = match &config {
        Some(c) => config_library(c)?,
        None => load_library(None)?,
    };
    let rollups = crate::digest::rollup::under(&out, shared_mode(config.as_ref()));
    let digest = crate::digest::build(
        &archive,
        &ledger,
        &library,
        (&fleet, tz),
        &week,
        Some(rollups),
    )?;
    if digest.rounds == 0 {
        return Err(no_captures(&archive, &week, &digest));
    }
    let path = write_digest(&digest, &week, tz, &out, config.as_ref())?;
    let output = report::Output {
        dir: out.clone(),
        mode: shared_mode(config.as_ref()),
    };
    let as_of = ledger.last_analysis.unwrap_or_else(Utc::now);
    if let Err(e) = report::write_site(&output, &fleet, tz, &ledger, as_of) {
        tracing::warn!("the reports' web page was not written: {e}");
    }
    println!("{}", path.display());
    let messages = crate::telegram::split(
        &crate::digest::telegram_lines(&digest),
        crate::telegram::MESSAGE_LIMIT,
        5,
    );
    if args.dry_run {
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
    if !args.send {
        return Ok(EXIT_OK);
    }
    send(config.as_ref(), &out, &week, messages, lock)
}

fn no_captures(archive: &Archive, week: &Week, digest: &Digest) -> Error {
    Error::Usage(format!(
        "{}: no captures in {} ({} to {})",
        archive.describe(),
        week.label,
        digest.from,
        digest.to
    ))
}

/// The charts and the markdown digest under `<out>/digests/`; returns the markdown's path.
fn write_digest(
    digest: &Digest,
    week: &Week,
    tz: Tz,
    out: &Path,
    config: Option<&config::Config>,
) -> Result<PathBuf> {
    let dir = out.join("digests");
    let mode = shared_mode(config);
    let charts = crate::digest::charts(digest, tz, week.start.timestamp(), week.end.timestamp());
    // A digest made again may draw fewer charts: the week's old ones it no longer draws go.
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with(&format!("{}-", week.label)) && name.ends_with(".svg");
        if ours && !charts.iter().any(|(file, _, _)| *file == name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let mut chart_views = Vec::new();
    for (file, alt, svg) in &charts {
        crate::fsutil::write_atomic(&dir.join(file), svg.as_bytes(), mode)?;
        chart_views.push(crate::digest::ChartView {
            file: file.clone(),
            alt: alt.clone(),
        });
    }
    let view = crate::digest::view(digest, chart_views);
    let config_dir = config.and_then(|c| c.report.config_dir.as_deref());
    let markdown = report::render_digest(&view, template_dir(config_dir).as_deref())?;
    let path = dir.join(format!("{}.md", week.label));
    crate::fsutil::write_atomic(&path, markdown.as_bytes(), mode)?;
    Ok(path)
}

/// Posts the week's messages to the outbox and delivers everything waiting there. The fleet lock
/// is released before delivery: it has its own sender lock, and a slow Bot API must not hold up
/// the reports.
fn send(
    config: Option<&config::Config>,
    out: &Path,
    week: &Week,
    messages: Vec<String>,
    lock: FleetGuard,
) -> Result<i32> {
    let settings = config.and_then(|c| c.telegram.clone()).ok_or_else(|| {
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
    let mailroom = crate::telegram::Mailroom::new(out);
    mailroom.post(&week.label, &bot.chat_id, messages)?;
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
