//! The fleet configuration (`patrol.toml`, docs/configuration.md): the fleet, its nodes and the
//! sources of each. Read by hand through [`crate::tomlread`] so every mistake in the file is
//! reported at once with its line. Secrets never appear in it: a password is named by the
//! environment variable or the file that holds it.
//!
//! This file holds [`Config`] and the top-level keys; each group of tables is read in its own
//! module, and everything public is re-exported here so callers say `config::…`.

mod docker;
mod nodes;
mod services;
mod settings;
mod ssh;
mod telegram;
mod values;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use regex::Regex;

use crate::error::{Error, Result};
use crate::tomlread::{Ctx, Fields, Spanned};
use crate::units::DurationRange;

pub use docker::{DEFAULT_SIZE_EVERY, DockerEndpoint};
pub use nodes::{NodeConfig, Source};
pub use services::WatchKey;
pub use settings::{DaemonSettings, LogSettings, ReportSettings, RetentionSettings};
pub use ssh::{SSH_COMMANDS, SshSettings, ssh_target_problem};
pub use telegram::{ChatId, TelegramSettings};
pub use values::{Secret, http_url_problem};

use values::{count_in, duration, regex};

#[derive(Debug, Clone)]
pub struct Config {
    pub fleet: String,
    pub timezone: Tz,
    pub archive: ArchiveSpec,
    pub output: PathBuf,
    /// Rules directories or files, loaded together (empty: the config's `rules/`, else the
    /// built-in library; without a config, ./rules).
    pub rules: Vec<PathBuf>,
    pub window: String,
    /// Sources collected at once, across all nodes.
    pub concurrency: usize,
    /// Default time a source may take.
    pub timeout: Duration,
    pub logs: LogSettings,
    /// Extra secret patterns masked in every stored string (besides DSN passwords).
    pub redact: Vec<Regex>,
    pub report: ReportSettings,
    pub telegram: Option<TelegramSettings>,
    /// `[daemon]`: how `patrol daemon` schedules captures and the digest.
    pub daemon: DaemonSettings,
    /// `[retention]`: how the analysing command (`patrol run`, or the reporter of a shared
    /// archive) thins the archive; on by default, None when `enabled = false`.
    pub retention: Option<RetentionSettings>,
    pub nodes: Vec<NodeConfig>,
}

/// Where captures are archived: a directory, or a shared PostgreSQL archive whose password is
/// named, never written.
#[derive(Debug, Clone, PartialEq)]
pub enum ArchiveSpec {
    Dir(PathBuf),
    Postgres {
        target: crate::store::PgTarget,
        password: Option<Secret>,
    },
}

impl Config {
    /// Where this collector keeps its own state (log positions, the run lock): beside a
    /// directory archive, or in the output directory when the archive is shared.
    pub fn state_root(&self) -> &Path {
        match &self.archive {
            ArchiveSpec::Dir(d) => d,
            ArchiveSpec::Postgres { .. } => &self.output,
        }
    }

    /// Every file the config names that holds a secret, once each: (the key that names it,
    /// the file, whether ssh's stricter rule applies: an identity, which no group may read).
    pub fn secret_files(&self) -> Vec<(String, PathBuf, bool)> {
        let mut out: Vec<(String, PathBuf, bool)> = Vec::new();
        let mut add = |what: String, secret: Option<&Secret>| {
            if let Some(Secret::File(p)) = secret
                && !out.iter().any(|(_, q, _)| q == p)
            {
                out.push((what, p.clone(), false));
            }
        };
        if let ArchiveSpec::Postgres { password, .. } = &self.archive {
            add("archive_password_file".into(), password.as_ref());
        }
        if let Some(t) = &self.telegram {
            add("[telegram] token_file".into(), Some(&t.token));
        }
        let mut identities = Vec::new();
        for node in &self.nodes {
            for source in &node.sources {
                let what = format!(
                    "password_file of node `{}` source `{}`",
                    node.name,
                    source.name()
                );
                match source {
                    Source::Postgres { password, .. }
                    | Source::Redis { password, .. }
                    | Source::RabbitMq { password, .. } => add(what, password.as_ref()),
                    Source::Ssh { settings, .. } => identities.push((&node.name, settings)),
                    Source::Docker { ssh: Some(s), .. } => identities.push((&node.name, s)),
                    _ => {}
                }
            }
        }
        for (node, ssh) in identities {
            if let Some(p) = &ssh.identity
                && !out.iter().any(|(_, q, _)| q == p)
            {
                out.push((format!("ssh identity of node `{node}`"), p.clone(), true));
            }
        }
        out
    }
}

impl ArchiveSpec {
    /// A directory, or a `postgres://` URL (password from PGPASSWORD).
    pub fn from_arg(text: &str) -> std::result::Result<ArchiveSpec, String> {
        if crate::store::PgTarget::is_url(text) {
            let target = crate::store::PgTarget::parse(text)?;
            Ok(ArchiveSpec::Postgres {
                target,
                password: std::env::var_os("PGPASSWORD").map(|_| Secret::Env("PGPASSWORD".into())),
            })
        } else {
            Ok(ArchiveSpec::Dir(PathBuf::from(text)))
        }
    }

    /// The directory or URL, for messages.
    pub fn describe(&self) -> String {
        match self {
            ArchiveSpec::Dir(d) => d.display().to_string(),
            ArchiveSpec::Postgres { target, .. } => target.display(),
        }
    }
}

pub fn load(path: &Path) -> Result<Config> {
    let text = crate::fsutil::read_to_string(path)?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Config> {
    // Every relative path in the config is the config's: the same file names the same files
    // (rules, archive, output, secrets, CA) from whatever directory cron or a shell runs it.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base = absolute
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut ctx = Ctx::new(text);
    let mut config = None;
    if let Some(doc) = ctx.parse() {
        let mut f = Fields::new(doc.get_ref(), doc.span(), "patrol.toml");
        let top = top_level(&mut f, &mut ctx, base);
        let tables = tables(&mut f, &mut ctx, base, top.timeout);
        f.finish(&mut ctx);
        config = assemble(&mut ctx, doc.span().start, base, top, tables);
    }
    ctx.into_result(path)?;
    config.ok_or_else(|| Error::bad_file(path, "empty configuration"))
}

/// The keys at the top of `patrol.toml`, as written: defaults that depend on the fleet's name
/// are applied by [`assemble`].
struct TopLevel {
    fleet: Option<Spanned<String>>,
    timezone: Option<Tz>,
    archive: Archive,
    output: Option<Spanned<String>>,
    rules: Vec<Spanned<String>>,
    window: Option<Spanned<String>>,
    concurrency: usize,
    timeout: Duration,
    redact: Vec<Regex>,
}

/// `archive` and its password, as written, with the PostgreSQL target when it is a URL.
struct Archive {
    path: Option<Spanned<String>>,
    target: Option<crate::store::PgTarget>,
    password: Option<Secret>,
}

/// The tables after the top-level keys, each read by its module.
struct Tables {
    logs: LogSettings,
    report: ReportSettings,
    daemon: DaemonSettings,
    retention: Option<RetentionSettings>,
    telegram: Option<TelegramSettings>,
    nodes: Vec<NodeConfig>,
}

fn top_level(f: &mut Fields, ctx: &mut Ctx, base: &Path) -> TopLevel {
    let fleet = f.string(ctx, "fleet", true);
    let timezone = timezone(f, ctx);
    let archive = archive(f, ctx, base);
    let output = f.string(ctx, "output", false);
    let rules = f.strings(ctx, "rules").unwrap_or_default();
    let window = f.string(ctx, "window", false);
    if let Some(w) = &window
        && let Err(e) = crate::units::parse_duration_in(w.get_ref(), DurationRange::SPAN)
    {
        ctx.report(w.span(), format!("window: {e}"));
    }
    let concurrency = count_in(f, ctx, "concurrency", 1, 1024).unwrap_or(8);
    let timeout = duration(
        f,
        ctx,
        "timeout",
        Duration::from_secs(10),
        DurationRange::TIMEOUT,
    );
    let redact: Vec<Regex> = f
        .strings(ctx, "redact")
        .unwrap_or_default()
        .iter()
        .filter_map(|s| regex(ctx, "redact", s))
        .collect();
    TopLevel {
        fleet,
        timezone,
        archive,
        output,
        rules,
        window,
        concurrency,
        timeout,
        redact,
    }
}

fn timezone(f: &mut Fields, ctx: &mut Ctx) -> Option<Tz> {
    let t = f.string(ctx, "timezone", false)?;
    let parsed = t.get_ref().parse::<Tz>().ok();
    if parsed.is_none() {
        ctx.report(
            t.span(),
            format!(
                "`{}` is not an IANA time zone (e.g. America/Sao_Paulo)",
                t.get_ref()
            ),
        );
    }
    parsed
}

/// `archive`: a directory, or a `postgres://` URL whose password is named by
/// `archive_password_env` or `archive_password_file` (which only such a URL may have).
fn archive(f: &mut Fields, ctx: &mut Ctx, base: &Path) -> Archive {
    let path = f.string(ctx, "archive", false);
    let password = {
        let env = f.string(ctx, "archive_password_env", false);
        let file = f.string(ctx, "archive_password_file", false);
        match (env, file) {
            (Some(e), Some(_)) => {
                ctx.report(
                    e.span(),
                    "give `archive_password_env` or `archive_password_file`, not both",
                );
                None
            }
            (Some(e), None) => Some((e.span(), Secret::Env(e.into_inner()))),
            (None, Some(p)) => Some((p.span(), Secret::File(base.join(p.into_inner())))),
            (None, None) => None,
        }
    };
    let is_url = |a: &Spanned<String>| crate::store::PgTarget::is_url(a.get_ref());
    let target = path.as_ref().filter(|a| is_url(a)).and_then(|a| {
        match crate::store::PgTarget::parse(a.get_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                ctx.report(a.span(), format!("archive: {e}"));
                None
            }
        }
    });
    if target.is_none()
        && let Some((span, _)) = &password
        && !path.as_ref().is_some_and(is_url)
    {
        ctx.report(
            span.clone(),
            "an archive password is only for a postgres:// archive",
        );
    }
    Archive {
        path,
        target,
        password: password.map(|(_, s)| s),
    }
}

fn tables(f: &mut Fields, ctx: &mut Ctx, base: &Path, default_timeout: Duration) -> Tables {
    Tables {
        logs: settings::logs(f, ctx),
        report: settings::report(f, ctx, base),
        daemon: settings::daemon(f, ctx),
        retention: settings::retention(f, ctx),
        telegram: telegram::telegram(f, ctx, base),
        nodes: nodes::nodes(f, ctx, base, default_timeout),
    }
}

/// The config, once the file names its fleet: paths made the config's, defaults named after
/// the fleet.
fn assemble(
    ctx: &mut Ctx,
    doc_start: usize,
    base: &Path,
    top: TopLevel,
    tables: Tables,
) -> Option<Config> {
    let fleet = top.fleet?;
    // Only the reporter of a shared archive has nothing to capture.
    if tables.nodes.is_empty() && top.archive.target.is_none() {
        ctx.report(
            doc_start..doc_start,
            "patrol.toml: no [[node]]: list the nodes to capture (only a reporter of a postgres:// archive may list none)",
        );
    }
    let slug = slug(fleet.get_ref());
    let rel = |p: Option<Spanned<String>>, default: String| {
        base.join(p.map(|s| s.into_inner()).unwrap_or(default))
    };
    Some(Config {
        archive: match top.archive.target {
            Some(target) => ArchiveSpec::Postgres {
                target,
                password: top.archive.password,
            },
            None => ArchiveSpec::Dir(rel(top.archive.path, format!("snapshots/{slug}"))),
        },
        output: rel(top.output, format!("output/{slug}")),
        rules: top
            .rules
            .into_iter()
            .map(|r| base.join(r.into_inner()))
            .collect(),
        window: top
            .window
            .map(|w| w.into_inner())
            .unwrap_or_else(|| "24h".into()),
        timezone: top.timezone.unwrap_or(chrono_tz::UTC),
        concurrency: top.concurrency,
        timeout: top.timeout,
        logs: tables.logs,
        redact: top.redact,
        report: tables.report,
        telegram: tables.telegram,
        daemon: tables.daemon,
        retention: tables.retention,
        nodes: tables.nodes,
        fleet: fleet.into_inner(),
    })
}

/// A directory-safe name for a fleet: lower case, `-` for anything else.
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() { "fleet".into() } else { s }
}

pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| crate::model::validate_node_name(h).is_ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The machine's time zone: $TZ, then /etc/timezone, else UTC.
pub fn local_timezone() -> Tz {
    std::env::var("TZ")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/timezone").ok())
        .and_then(|t| t.trim().trim_start_matches(':').parse::<Tz>().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// The configuration used when there is no file: this machine under its host name, host
/// metrics from /proc, and the Docker engine at `docker` when there is one.
pub fn local_default(docker: Option<PathBuf>) -> Config {
    let node = local_hostname();
    let slug = slug(&node);
    let mut sources = vec![Source::Host];
    if let Some(socket) = docker {
        sources.push(Source::Docker {
            endpoint: DockerEndpoint::Unix(socket),
            logs: true,
            ssh: None,
            remote_socket: PathBuf::from("/var/run/docker.sock"),
            timeout: Duration::from_secs(30),
            size_every: DEFAULT_SIZE_EVERY,
        });
    }
    Config {
        fleet: node.clone(),
        timezone: local_timezone(),
        archive: ArchiveSpec::Dir(PathBuf::from(format!("snapshots/{slug}"))),
        output: PathBuf::from(format!("output/{slug}")),
        rules: Vec::new(),
        window: "24h".into(),
        concurrency: 8,
        timeout: Duration::from_secs(10),
        logs: LogSettings::default(),
        redact: Vec::new(),
        report: ReportSettings::default(),
        telegram: None,
        daemon: DaemonSettings::default(),
        retention: Some(RetentionSettings::default()),
        nodes: vec![NodeConfig {
            name: node,
            role: None,
            address: None,
            sources,
        }],
    }
}
