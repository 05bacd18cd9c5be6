//! The fleet configuration (`patrol.toml`, docs/configuration.md): the fleet, its nodes and the
//! sources of each. Read by hand through [`crate::tomlread`] so every mistake in the file is
//! reported at once with its line. Secrets never appear in it: a password is named by the
//! environment variable or the file that holds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use regex::Regex;

use crate::error::{Error, Result};
use crate::tls::{SslMode, TlsOptions};
use crate::tomlread::{Ctx, Fields, Spanned};
use crate::units::DurationRange;

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

/// `[telegram]`: where the weekly digest goes. The token comes from the environment or a file.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub api_base: String,
    pub token: Secret,
    /// The chat, as written or from an environment variable.
    pub chat_id: ChatId,
    /// Attempts per message and run on network errors and 5xx, and the first backoff (doubled
    /// after each attempt).
    pub attempts: u32,
    pub backoff: Duration,
    /// `ca_file`, for a Bot API server behind a private CA (a local Bot API server).
    pub tls: TlsOptions,
    /// How long one request may take before its outcome counts as unknown.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum ChatId {
    Plain(String),
    Env(String),
}

impl TelegramSettings {
    /// The token and the chat id, read now; errors name the variable or file.
    pub fn resolve(&self) -> Result<(String, String)> {
        let token = self
            .token
            .resolve()
            .map_err(|e| Error::Usage(format!("[telegram] token: {e}")))?;
        let chat = match &self.chat_id {
            ChatId::Plain(c) => c.clone(),
            ChatId::Env(var) => std::env::var(var).map_err(|_| {
                Error::Usage(format!(
                    "[telegram] chat_id: environment variable {var} is not set"
                ))
            })?,
        };
        Ok((token.trim().to_string(), chat.trim().to_string()))
    }
}

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

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub role: Option<String>,
    pub address: Option<String>,
    pub sources: Vec<Source>,
}

/// Where a secret is: never the secret itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Secret {
    Env(String),
    File(PathBuf),
}

impl Secret {
    pub fn resolve(&self) -> std::result::Result<String, String> {
        match self {
            Secret::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
            }
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("{}: {e}", path.display())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DockerEndpoint {
    Unix(PathBuf),
    /// host:port of an engine listening on TCP (plain HTTP).
    Tcp(String),
    /// `ssh://[user@]host[:port]`: the remote engine's socket forwarded by the system ssh.
    Ssh {
        target: String,
        port: Option<u16>,
    },
}

impl DockerEndpoint {
    pub fn describe(&self) -> String {
        match self {
            DockerEndpoint::Unix(p) => format!("unix://{}", p.display()),
            DockerEndpoint::Tcp(h) => format!("tcp://{h}"),
            DockerEndpoint::Ssh { target, port } => match port {
                Some(p) => format!("ssh://{target}:{p}"),
                None => format!("ssh://{target}"),
            },
        }
    }

    /// Checks the syntax too (a path, a host and port, an ssh destination), so a mistake is
    /// reported at load rather than at the first capture.
    pub fn parse(text: &str) -> std::result::Result<DockerEndpoint, String> {
        let port = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("`{text}`: `{p}` is not a port from 1 to 65535")),
        };
        if let Some(p) = text.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(format!("`{text}`: unix:// needs the socket's path"));
            }
            Ok(DockerEndpoint::Unix(p.into()))
        } else if let Some(h) = text.strip_prefix("tcp://") {
            let h = h.trim_end_matches('/');
            match h.rsplit_once(':') {
                Some((host, p))
                    if !host.is_empty()
                        && !host.contains(['/', '@', ' '])
                        // An IPv6 address in brackets, whole: `[::1]`, not `[::1`.
                        && (host.starts_with('[') == host.ends_with(']'))
                        && (!host.starts_with('[')
                            || host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok())
                        && !p.is_empty()
                        && p.chars().all(|c| c.is_ascii_digit()) =>
                {
                    port(p)?;
                    Ok(DockerEndpoint::Tcp(h.to_string()))
                }
                _ => Err(format!(
                    "`{text}`: tcp:// needs host:port (e.g. tcp://10.0.0.1:2375)"
                )),
            }
        } else if let Some(rest) = text.strip_prefix("ssh://") {
            let rest = rest.trim_end_matches('/');
            let (target, port) = match rest.rsplit_once(':') {
                Some((t, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                    (t.to_string(), Some(port(p)?))
                }
                _ => (rest.to_string(), None),
            };
            if let Some(m) = ssh_target_problem(&target) {
                return Err(format!("`{text}`: {m}"));
            }
            Ok(DockerEndpoint::Ssh { target, port })
        } else {
            Err(format!(
                "`{text}` is not a Docker endpoint: use unix:///path, tcp://host:port or ssh://user@host"
            ))
        }
    }
}

/// How `ssh` reaches a node: used for ssh commands and ssh:// Docker endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SshSettings {
    pub target: String,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub strict_host_key_checking: bool,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchKey {
    pub db: u32,
    pub key: String,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Source {
    /// This machine's /proc.
    Host,
    Docker {
        endpoint: DockerEndpoint,
        logs: bool,
        ssh: Option<SshSettings>,
        /// The engine's socket on the node, for ssh:// endpoints.
        remote_socket: PathBuf,
        timeout: Duration,
        /// Time between two listings with writable-layer sizes (slow on big layers).
        size_every: Duration,
    },
    Prometheus {
        url: String,
        /// node-exporter's `instance` label for this node.
        instance: Option<String>,
        gpu: bool,
        queries: BTreeMap<String, String>,
        timeout: Duration,
        tls: TlsOptions,
    },
    Postgres {
        name: String,
        host: String,
        port: u16,
        user: String,
        database: String,
        password: Option<Secret>,
        log: bool,
        timeout: Duration,
        sslmode: SslMode,
        tls: TlsOptions,
    },
    Redis {
        name: String,
        host: String,
        port: u16,
        password: Option<Secret>,
        watch: Vec<WatchKey>,
        timeout: Duration,
    },
    RabbitMq {
        name: String,
        url: String,
        user: String,
        password: Option<Secret>,
        timeout: Duration,
        tls: TlsOptions,
    },
    Http {
        name: String,
        url: String,
        timeout: Duration,
        tls: TlsOptions,
    },
    Ssh {
        settings: SshSettings,
        commands: Vec<String>,
        timeout: Duration,
    },
}

impl Source {
    /// The name this source has in a snapshot's `sources`.
    pub fn name(&self) -> String {
        match self {
            Source::Host => "host".into(),
            Source::Docker { .. } => "docker".into(),
            Source::Prometheus { .. } => "prometheus".into(),
            Source::Postgres { name, .. } => format!("postgres:{name}"),
            Source::Redis { name, .. } => format!("redis:{name}"),
            Source::RabbitMq { name, .. } => format!("rabbitmq:{name}"),
            Source::Http { name, .. } => format!("http:{name}"),
            Source::Ssh { .. } => "ssh".into(),
        }
    }

    pub fn timeout(&self, default: Duration) -> Duration {
        match self {
            Source::Host => default,
            Source::Docker { timeout, .. }
            | Source::Prometheus { timeout, .. }
            | Source::Postgres { timeout, .. }
            | Source::Redis { timeout, .. }
            | Source::RabbitMq { timeout, .. }
            | Source::Http { timeout, .. }
            | Source::Ssh { timeout, .. } => *timeout,
        }
    }
}

/// Default time between two listings with writable-layer sizes.
pub const DEFAULT_SIZE_EVERY: Duration = Duration::from_secs(6 * 3600);

pub const SSH_COMMANDS: &[&str] = &["uptime", "compose", "nvidia-smi", "timedatectl"];

pub fn load(path: &Path) -> Result<Config> {
    let text = crate::fsutil::read_to_string(path)?;
    parse(path, &text)
}

/// A duration key, checked against its range (docs/configuration.md lists them).
fn duration(
    f: &mut Fields,
    ctx: &mut Ctx,
    key: &str,
    default: Duration,
    range: DurationRange,
) -> Duration {
    match f.string(ctx, key, false) {
        Some(s) => match crate::units::parse_duration_in(s.get_ref(), range) {
            Ok(d) => d,
            Err(e) => {
                ctx.report(s.span(), format!("{}: `{key}`: {e}", f.what));
                default
            }
        },
        None => default,
    }
}

/// A TCP port: 1 to 65535. Anything else is an error, never a silent default.
fn port(f: &mut Fields, ctx: &mut Ctx, key: &str) -> Option<u16> {
    let n = f.number(ctx, key)?;
    let v = *n.get_ref();
    if v.fract() == 0.0 && (1.0..=65535.0).contains(&v) {
        Some(v as u16)
    } else {
        ctx.report(
            n.span(),
            format!("{}: `{key}` must be a port from 1 to 65535", f.what),
        );
        None
    }
}

/// A whole number within `min..=max`, or an error with its line.
fn count_in(f: &mut Fields, ctx: &mut Ctx, key: &str, min: usize, max: usize) -> Option<usize> {
    let n = f.number(ctx, key)?;
    let v = *n.get_ref();
    if v.fract() != 0.0 || v < min as f64 || v > max as f64 {
        ctx.report(
            n.span(),
            format!(
                "{}: `{key}` must be a whole number from {min} to {max}",
                f.what
            ),
        );
        return None;
    }
    Some(v as usize)
}

/// A size ("64MB"), at least 1 KB, or an error with its line.
fn bytes_in(f: &mut Fields, ctx: &mut Ctx, key: &str) -> Option<u64> {
    let s = f.string(ctx, key, false)?;
    match crate::units::parse_bytes(s.get_ref()) {
        Ok(b) if (1000.0..=1e15).contains(&b) => Some(b as u64),
        Ok(_) => {
            ctx.report(
                s.span(),
                format!("{}: `{key}` must be from 1KB to 1PB", f.what),
            );
            None
        }
        Err(e) => {
            ctx.report(s.span(), format!("{}: `{key}`: {e}", f.what));
            None
        }
    }
}

/// Why an ssh destination is refused, if it is: one starting with `-` would be read by ssh as
/// an option (`-oProxyCommand=…` runs a command), and blanks or control characters are never
/// part of a host.
pub fn ssh_target_problem(target: &str) -> Option<String> {
    if target.is_empty() {
        Some("the ssh target is empty".into())
    } else if target.starts_with('-') {
        Some(format!(
            "the ssh target `{target}` starts with `-`, which ssh would read as an option"
        ))
    } else if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("the ssh target holds a blank or a control character".into())
    } else {
        None
    }
}

/// An `http://` or `https://` URL with a host (and a valid port), checked at load rather than
/// at the first capture.
fn http_url(ctx: &mut Ctx, what: &str, key: &str, s: &Spanned<String>) -> bool {
    match http_url_problem(s.get_ref()) {
        Some(m) => {
            ctx.report(s.span(), format!("{what}: `{key}`: {m}"));
            false
        }
        None => url_without_password(ctx, what, s),
    }
}

pub fn http_url_problem(text: &str) -> Option<String> {
    if !text.contains("://") {
        return Some(format!(
            "`{text}` is not a URL: write it with http:// or https://"
        ));
    }
    match reqwest::Url::parse(text) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!(
            "`{}://` is not supported here: use http:// or https://",
            u.scheme()
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("the URL has no host".into()),
        Ok(u) if u.port() == Some(0) => Some("port 0 is not a port".into()),
        Ok(_) => None,
        Err(e) => Some(format!("not a URL ({e}); e.g. http://10.0.0.1:8080/")),
    }
}

fn regex(ctx: &mut Ctx, what: &str, s: &Spanned<String>) -> Option<Regex> {
    match Regex::new(s.get_ref()) {
        Ok(r) => Some(r),
        Err(e) => {
            ctx.report(s.span(), format!("{what}: not a valid regex: {e}"));
            None
        }
    }
}

/// `password_env` or `password_file`; a `password` key is refused: secrets stay out of files
/// that get committed and shared.
/// `ca_file`: the PEM file of a private CA that signs this server's certificate, relative to
/// the config's directory. Read when the connection is made; a missing file is said at load.
fn tls_options(f: &mut Fields, ctx: &mut Ctx, base: &Path) -> TlsOptions {
    let ca_file = f.string(ctx, "ca_file", false).map(|s| {
        let path = base.join(s.get_ref());
        if !path.is_file() {
            ctx.report(
                s.span(),
                format!(
                    "{}: `ca_file` {} is not a readable file",
                    f.what,
                    path.display()
                ),
            );
        }
        path
    });
    TlsOptions { ca_file }
}

/// `sslmode` of a PostgreSQL source, libpq's names; default `prefer`.
fn sslmode(f: &mut Fields, ctx: &mut Ctx) -> SslMode {
    match f.string(ctx, "sslmode", false) {
        Some(s) => SslMode::parse(s.get_ref()).unwrap_or_else(|| {
            ctx.report(
                s.span(),
                format!(
                    "{}: `sslmode` `{}`: one of {}",
                    f.what,
                    s.get_ref(),
                    SslMode::NAMES
                ),
            );
            SslMode::default()
        }),
        None => SslMode::default(),
    }
}

fn secret(f: &mut Fields, ctx: &mut Ctx, base: &Path) -> Option<Secret> {
    if let Some(v) = f.value("password") {
        ctx.report(
            v.span(),
            format!("{}: a password may not be written in the config; name it with `password_env` (an environment variable) or `password_file`", f.what),
        );
    }
    let env = f.string(ctx, "password_env", false);
    let file = f.string(ctx, "password_file", false);
    match (env, file) {
        (Some(e), Some(_)) => {
            ctx.report(
                e.span(),
                format!(
                    "{}: give `password_env` or `password_file`, not both",
                    f.what
                ),
            );
            None
        }
        (Some(e), None) => Some(Secret::Env(e.into_inner())),
        (None, Some(p)) => Some(Secret::File(base.join(p.into_inner()))),
        (None, None) => None,
    }
}

/// A URL must not carry a password (`user:secret@host`).
fn url_without_password(ctx: &mut Ctx, what: &str, s: &Spanned<String>) -> bool {
    let re = Regex::new(r"^[a-z][a-z0-9+.-]*://[^/@:]+:[^/@]+@").ok();
    if re.is_some_and(|r| r.is_match(s.get_ref())) {
        ctx.report(
            s.span(),
            format!(
                "{what}: the URL holds a password; move it to `password_env` or `password_file`"
            ),
        );
        false
    } else {
        true
    }
}

fn ssh_settings(f: &mut Fields, ctx: &mut Ctx, base: &Path, target: String) -> SshSettings {
    let port = port(f, ctx, "port");
    let identity = f
        .string(ctx, "identity", false)
        .map(|s| base.join(s.into_inner()));
    let known_hosts = f
        .string(ctx, "known_hosts", false)
        .map(|s| base.join(s.into_inner()));
    let strict_host_key_checking = f.boolean(ctx, "strict_host_key_checking").unwrap_or(true);
    let connect_timeout = duration(
        f,
        ctx,
        "connect_timeout",
        Duration::from_secs(5),
        DurationRange::TIMEOUT,
    );
    SshSettings {
        target,
        port,
        identity,
        known_hosts,
        strict_host_key_checking,
        connect_timeout,
    }
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
        let fleet = f.string(&mut ctx, "fleet", true);
        let timezone = f.string(&mut ctx, "timezone", false).and_then(|t| {
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
        });
        let archive = f.string(&mut ctx, "archive", false);
        let archive_password = {
            let env = f.string(&mut ctx, "archive_password_env", false);
            let file = f.string(&mut ctx, "archive_password_file", false);
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
        let archive_target = archive
            .as_ref()
            .filter(|a| crate::store::PgTarget::is_url(a.get_ref()))
            .and_then(|a| match crate::store::PgTarget::parse(a.get_ref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    ctx.report(a.span(), format!("archive: {e}"));
                    None
                }
            });
        if archive_target.is_none()
            && let Some((span, _)) = &archive_password
            && !archive
                .as_ref()
                .is_some_and(|a| crate::store::PgTarget::is_url(a.get_ref()))
        {
            ctx.report(
                span.clone(),
                "an archive password is only for a postgres:// archive",
            );
        }
        let output = f.string(&mut ctx, "output", false);
        let rules = f.strings(&mut ctx, "rules").unwrap_or_default();
        let window = f.string(&mut ctx, "window", false);
        if let Some(w) = &window
            && let Err(e) = crate::units::parse_duration_in(w.get_ref(), DurationRange::SPAN)
        {
            ctx.report(w.span(), format!("window: {e}"));
        }
        let concurrency = count_in(&mut f, &mut ctx, "concurrency", 1, 1024).unwrap_or(8);
        let timeout = duration(
            &mut f,
            &mut ctx,
            "timeout",
            Duration::from_secs(10),
            DurationRange::TIMEOUT,
        );
        let redact: Vec<Regex> = f
            .strings(&mut ctx, "redact")
            .unwrap_or_default()
            .iter()
            .filter_map(|s| regex(&mut ctx, "redact", s))
            .collect();
        let mut logs = LogSettings::default();
        if let Some(mut l) = f.table(&mut ctx, "logs", "[logs]") {
            logs.max_lines =
                count_in(&mut l, &mut ctx, "max_lines", 1, 1_000_000).unwrap_or(logs.max_lines);
            logs.max_templates = count_in(&mut l, &mut ctx, "max_templates", 1, 100_000)
                .unwrap_or(logs.max_templates);
            logs.warn_templates = count_in(&mut l, &mut ctx, "warn_templates", 0, 100_000)
                .unwrap_or(logs.warn_templates);
            if let Some(b) = bytes_in(&mut l, &mut ctx, "max_bytes") {
                logs.max_bytes = b;
            }
            logs.read_time = duration(
                &mut l,
                &mut ctx,
                "read_time",
                logs.read_time,
                DurationRange::TIMEOUT,
            );
            logs.samples = count_in(&mut l, &mut ctx, "samples", 0, 100).unwrap_or(logs.samples);
            logs.first_window = duration(
                &mut l,
                &mut ctx,
                "first_window",
                logs.first_window,
                DurationRange::SPAN,
            );
            if let Some(mut fields) = l.table(&mut ctx, "fields", "[logs.fields]") {
                let names: Vec<String> = fields.keys();
                for name in names {
                    if let Some(s) = fields.string(&mut ctx, &name, false)
                        && let Some(r) = regex(&mut ctx, &format!("logs.fields.{name}"), &s)
                    {
                        if r.captures_len() < 2 {
                            ctx.report(s.span(), format!("logs.fields.{name}: the regex needs a capture group for the value"));
                        } else {
                            logs.fields.push((name, r));
                        }
                    }
                }
                fields.finish(&mut ctx);
            }
            l.finish(&mut ctx);
        }
        let mut report = ReportSettings::default();
        if let Some(mut r) = f.table(&mut ctx, "report", "[report]") {
            report.repeat_after = duration(
                &mut r,
                &mut ctx,
                "repeat_after",
                report.repeat_after,
                DurationRange::SPAN,
            );
            for (key, slot) in [
                ("material_change_pct", &mut report.material_change_pct),
                ("worse_rate_pct", &mut report.worse_rate_pct),
            ] {
                if let Some(v) = r.number(&mut ctx, key) {
                    if *v.get_ref() <= 0.0 {
                        ctx.report(v.span(), format!("[report]: `{key}` must be above 0"));
                    } else {
                        *slot = *v.get_ref();
                    }
                }
            }
            report.acknowledged = r
                .string(&mut ctx, "acknowledged", false)
                .map(|p| base.join(p.into_inner()));
            report.textfile = r
                .string(&mut ctx, "textfile", false)
                .map(|p| base.join(p.into_inner()));
            if let Some(m) = r.string(&mut ctx, "file_mode", false) {
                match crate::fsutil::Mode::parse_shared(m.get_ref()) {
                    Ok(mode) => report.file_mode = mode,
                    Err(e) => ctx.report(m.span(), format!("[report]: `file_mode` {e}")),
                }
            }
            report.keep_dated = duration(
                &mut r,
                &mut ctx,
                "keep_dated",
                report.keep_dated,
                DurationRange::SPAN,
            );
            report.keep_resolved = duration(
                &mut r,
                &mut ctx,
                "keep_resolved",
                report.keep_resolved,
                DurationRange::SPAN,
            );
            r.finish(&mut ctx);
        }
        if report.acknowledged.is_none() && base.join("acknowledged.toml").exists() {
            report.acknowledged = Some(base.join("acknowledged.toml"));
        }
        report.config_dir = Some(base.to_path_buf());
        let mut daemon = DaemonSettings::default();
        if let Some(mut d) = f.table(&mut ctx, "daemon", "[daemon]") {
            daemon.interval = duration(
                &mut d,
                &mut ctx,
                "interval",
                daemon.interval,
                DurationRange::INTERVAL,
            );
            daemon.capture_only = d
                .boolean(&mut ctx, "capture_only")
                .unwrap_or(daemon.capture_only);
            if let Some(cron) = d.string(&mut ctx, "digest", false) {
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
            d.finish(&mut ctx);
        }
        // On unless a fleet says `enabled = false`: an archive nobody thins fills its disk.
        let mut retention = Some(RetentionSettings::default());
        if let Some(mut r) = f.table(&mut ctx, "retention", "[retention]") {
            let d = RetentionSettings::default();
            let enabled = r.boolean(&mut ctx, "enabled").unwrap_or(true);
            let days = |r: &mut Fields, ctx: &mut Ctx, key: &str, default: chrono::Duration| {
                let std = duration(
                    r,
                    ctx,
                    key,
                    default.to_std().unwrap_or_default(),
                    DurationRange::SPAN,
                );
                chrono::Duration::from_std(std).unwrap_or(default)
            };
            let full = days(&mut r, &mut ctx, "full", d.full);
            let hourly = days(&mut r, &mut ctx, "hourly", d.hourly);
            let daily = days(&mut r, &mut ctx, "daily", d.daily);
            if !(full <= hourly && hourly <= daily) {
                ctx.report(
                    r.span.clone(),
                    "[retention]: `full` ≤ `hourly` ≤ `daily` (each is an age)",
                );
            }
            r.finish(&mut ctx);
            retention = enabled.then_some(RetentionSettings {
                full,
                hourly,
                daily,
            });
        }
        let mut telegram = None;
        if let Some(mut t) = f.table(&mut ctx, "telegram", "[telegram]") {
            let api_base = t
                .string(&mut ctx, "api_base", false)
                .filter(|s| http_url(&mut ctx, "[telegram]", "api_base", s))
                .map(|s| s.into_inner())
                .unwrap_or_else(|| "https://api.telegram.org".into());
            let token_env = t.string(&mut ctx, "token_env", false);
            let token_file = t.string(&mut ctx, "token_file", false);
            if t.has("token") {
                let v = t.value("token");
                if let Some(v) = v {
                    ctx.report(
                        v.span(),
                        "[telegram]: the bot token must not be written in the config: use `token_env` or `token_file`",
                    );
                }
            }
            let token = match (token_env, token_file) {
                (Some(e), None) => Some(Secret::Env(e.into_inner())),
                (None, Some(p)) => Some(Secret::File(base.join(p.into_inner()))),
                (Some(e), Some(_)) => {
                    ctx.report(
                        e.span(),
                        "[telegram]: give `token_env` or `token_file`, not both",
                    );
                    None
                }
                (None, None) => {
                    ctx.report(
                        t.span.clone(),
                        "[telegram] needs `token_env` (a variable holding the bot token) or `token_file`",
                    );
                    None
                }
            };
            let chat_id = match (
                t.string(&mut ctx, "chat_id", false),
                t.string(&mut ctx, "chat_id_env", false),
            ) {
                (Some(c), None) => Some(ChatId::Plain(c.into_inner())),
                (None, Some(e)) => Some(ChatId::Env(e.into_inner())),
                _ => {
                    ctx.report(
                        t.span.clone(),
                        "[telegram] needs exactly one of `chat_id` or `chat_id_env`",
                    );
                    None
                }
            };
            let attempts = count_in(&mut t, &mut ctx, "attempts", 1, 20).unwrap_or(4) as u32;
            let backoff = duration(
                &mut t,
                &mut ctx,
                "backoff",
                Duration::from_millis(500),
                DurationRange::TIMEOUT,
            );
            let tls = tls_options(&mut t, &mut ctx, base);
            let timeout = duration(
                &mut t,
                &mut ctx,
                "timeout",
                Duration::from_secs(60),
                DurationRange::TIMEOUT,
            );
            t.finish(&mut ctx);
            if let (Some(token), Some(chat_id)) = (token, chat_id) {
                telegram = Some(TelegramSettings {
                    api_base,
                    token,
                    chat_id,
                    attempts,
                    backoff,
                    tls,
                    timeout,
                });
            }
        }
        let mut nodes = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (table, span) in f.tables(&mut ctx, "node") {
            let mut n = Fields::new(table, span.clone(), "[[node]]");
            let Some(name) = n.string(&mut ctx, "name", true) else {
                continue;
            };
            n.what = format!("node `{}`", name.get_ref());
            if let Err(e) = crate::model::validate_node_name(name.get_ref()) {
                ctx.report(name.span(), e);
            }
            if !names.insert(name.get_ref().clone()) {
                ctx.report(
                    name.span(),
                    format!("node `{}` is defined twice", name.get_ref()),
                );
            }
            let role = n.string(&mut ctx, "role", false).map(|s| s.into_inner());
            let address = n.string(&mut ctx, "address", false).map(|s| s.into_inner());
            let sources = node_sources(&mut n, &mut ctx, base, timeout);
            n.finish(&mut ctx);
            nodes.push(NodeConfig {
                name: name.into_inner(),
                role,
                address,
                sources,
            });
        }
        f.finish(&mut ctx);
        if let Some(fleet) = fleet {
            // Only the reporter of a shared archive has nothing to capture.
            if nodes.is_empty() && archive_target.is_none() {
                ctx.report(
                    doc.span().start..doc.span().start,
                    "patrol.toml: no [[node]]: list the nodes to capture (only a reporter of a postgres:// archive may list none)",
                );
            }
            let slug = slug(fleet.get_ref());
            let rel = |p: Option<Spanned<String>>, default: String| {
                base.join(p.map(|s| s.into_inner()).unwrap_or(default))
            };
            config = Some(Config {
                archive: match archive_target {
                    Some(target) => ArchiveSpec::Postgres {
                        target,
                        password: archive_password.map(|(_, s)| s),
                    },
                    None => ArchiveSpec::Dir(rel(archive, format!("snapshots/{slug}"))),
                },
                output: rel(output, format!("output/{slug}")),
                rules: rules
                    .into_iter()
                    .map(|r| base.join(r.into_inner()))
                    .collect(),
                window: window
                    .map(|w| w.into_inner())
                    .unwrap_or_else(|| "24h".into()),
                timezone: timezone.unwrap_or(chrono_tz::UTC),
                concurrency,
                timeout,
                logs,
                redact,
                report,
                telegram,
                daemon,
                retention,
                nodes,
                fleet: fleet.into_inner(),
            });
        }
    }
    if ctx.problems.is_empty() {
        config.ok_or_else(|| Error::bad_file(path, "empty configuration"))
    } else {
        Err(Error::Invalid {
            path: path.to_path_buf(),
            problems: ctx.problems,
        })
    }
}

fn node_sources(
    n: &mut Fields,
    ctx: &mut Ctx,
    base: &Path,
    default_timeout: Duration,
) -> Vec<Source> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let node_what = n.what.clone();
    if let Some(h) = n.table(ctx, "host", &format!("{node_what} [host]")) {
        out.push(Source::Host);
        h.finish(ctx);
    }
    let mut ssh_for_docker = None;
    if let Some(mut s) = n.table(ctx, "ssh", &format!("{node_what} [ssh]")) {
        let target = s.string(ctx, "target", true).filter(|t| {
            let problem = ssh_target_problem(t.get_ref());
            if let Some(m) = &problem {
                ctx.report(t.span(), format!("{node_what} [ssh]: {m}"));
            }
            problem.is_none()
        });
        // Read whether the target is good or not, so every other mistake is reported too.
        let settings = ssh_settings(&mut s, ctx, base, String::new());
        if let Some(target) = target {
            let settings = SshSettings {
                target: target.into_inner(),
                ..settings
            };
            let commands: Vec<String> = s
                .strings(ctx, "commands")
                .map(|v| {
                    v.into_iter()
                        .filter_map(|c| {
                            if SSH_COMMANDS.contains(&c.get_ref().as_str()) {
                                Some(c.into_inner())
                            } else {
                                ctx.report(
                                    c.span(),
                                    format!(
                                        "{node_what} [ssh]: unknown command `{}` (known: {})",
                                        c.get_ref(),
                                        SSH_COMMANDS.join(", ")
                                    ),
                                );
                                None
                            }
                        })
                        .collect()
                })
                .unwrap_or_else(|| SSH_COMMANDS.iter().map(|c| c.to_string()).collect());
            let timeout = duration(
                &mut s,
                ctx,
                "timeout",
                default_timeout,
                DurationRange::TIMEOUT,
            );
            ssh_for_docker = Some(settings.clone());
            out.push(Source::Ssh {
                settings,
                commands,
                timeout,
            });
        }
        s.finish(ctx);
    }
    if let Some(mut d) = n.table(ctx, "docker", &format!("{node_what} [docker]")) {
        let endpoint = d.string(ctx, "endpoint", true).and_then(|e| {
            match DockerEndpoint::parse(e.get_ref()) {
                Ok(ep) => Some(ep),
                Err(m) => {
                    ctx.report(e.span(), format!("{node_what} [docker]: {m}"));
                    None
                }
            }
        });
        let logs = d.boolean(ctx, "logs").unwrap_or(true);
        let remote_socket = d
            .string(ctx, "remote_socket", false)
            .map(|s| PathBuf::from(s.into_inner()))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let timeout = duration(
            &mut d,
            ctx,
            "timeout",
            default_timeout,
            DurationRange::TIMEOUT,
        );
        let size_every = duration(
            &mut d,
            ctx,
            "size_every",
            DEFAULT_SIZE_EVERY,
            DurationRange::SPAN,
        );
        if let Some(endpoint) = endpoint {
            let ssh = match &endpoint {
                DockerEndpoint::Ssh { target, port } => Some(match &ssh_for_docker {
                    Some(s) => SshSettings {
                        target: target.clone(),
                        port: port.or(s.port),
                        ..s.clone()
                    },
                    None => SshSettings {
                        target: target.clone(),
                        port: *port,
                        identity: None,
                        known_hosts: None,
                        strict_host_key_checking: true,
                        connect_timeout: Duration::from_secs(5),
                    },
                }),
                _ => None,
            };
            // A relative socket path is relative to the config file, like every other path.
            let endpoint = match endpoint {
                DockerEndpoint::Unix(p) if p.is_relative() => DockerEndpoint::Unix(base.join(p)),
                other => other,
            };
            out.push(Source::Docker {
                endpoint,
                logs,
                ssh,
                remote_socket,
                timeout,
                size_every,
            });
        }
        d.finish(ctx);
    }
    if let Some(mut p) = n.table(ctx, "prometheus", &format!("{node_what} [prometheus]")) {
        let url = p
            .string(ctx, "url", true)
            .filter(|u| http_url(ctx, &p.what, "url", u));
        let instance = p.string(ctx, "instance", false).map(|s| s.into_inner());
        let gpu = p.boolean(ctx, "gpu").unwrap_or(false);
        let mut queries = BTreeMap::new();
        if let Some(mut q) = p.table(ctx, "queries", &format!("{node_what} [prometheus.queries]")) {
            for key in q.keys() {
                if let Some(v) = q.string(ctx, &key, false) {
                    queries.insert(key, v.into_inner());
                }
            }
            q.finish(ctx);
        }
        let timeout = duration(
            &mut p,
            ctx,
            "timeout",
            default_timeout,
            DurationRange::TIMEOUT,
        );
        let tls = tls_options(&mut p, ctx, base);
        if let Some(url) = url {
            out.push(Source::Prometheus {
                url: url.into_inner().trim_end_matches('/').to_string(),
                instance,
                gpu,
                queries,
                timeout,
                tls,
            });
        }
        p.finish(ctx);
    }
    for (table, span) in n.tables(ctx, "postgres") {
        let mut p = Fields::new(table, span, format!("{node_what} [[postgres]]"));
        let name = p.string(ctx, "name", true);
        if let Some(n) = &name {
            unique_source(ctx, &mut seen, &p.what, "postgres", n);
        }
        let host = p
            .string(ctx, "host", false)
            .map(|s| s.into_inner())
            .unwrap_or_else(|| "127.0.0.1".into());
        let port = port(&mut p, ctx, "port").unwrap_or(5432);
        let user = p
            .string(ctx, "user", false)
            .map(|s| s.into_inner())
            .unwrap_or_else(|| "postgres".into());
        let database = p
            .string(ctx, "database", false)
            .map(|s| s.into_inner())
            .unwrap_or_else(|| "postgres".into());
        let password = secret(&mut p, ctx, base);
        let log = p.boolean(ctx, "log").unwrap_or(true);
        let timeout = duration(
            &mut p,
            ctx,
            "timeout",
            default_timeout,
            DurationRange::TIMEOUT,
        );
        let sslmode = sslmode(&mut p, ctx);
        let tls = tls_options(&mut p, ctx, base);
        if let Some(name) = name {
            out.push(Source::Postgres {
                name: name.into_inner(),
                host,
                port,
                user,
                database,
                password,
                log,
                timeout,
                sslmode,
                tls,
            });
        }
        p.finish(ctx);
    }
    for (table, span) in n.tables(ctx, "redis") {
        let mut r = Fields::new(table, span, format!("{node_what} [[redis]]"));
        let name = r.string(ctx, "name", true);
        if let Some(n) = &name {
            unique_source(ctx, &mut seen, &r.what, "redis", n);
        }
        let host = r
            .string(ctx, "host", false)
            .map(|s| s.into_inner())
            .unwrap_or_else(|| "127.0.0.1".into());
        let port = port(&mut r, ctx, "port").unwrap_or(6379);
        let password = secret(&mut r, ctx, base);
        let mut watch = Vec::new();
        for (wt, wspan) in r.tables(ctx, "watch") {
            let mut w = Fields::new(wt, wspan, format!("{node_what} [[redis.watch]]"));
            let db = count_in(&mut w, ctx, "db", 0, 65535).unwrap_or(0) as u32;
            let key = w.string(ctx, "key", true);
            let fields = w
                .strings(ctx, "fields")
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.into_inner())
                .collect();
            if let Some(key) = key {
                watch.push(WatchKey {
                    db,
                    key: key.into_inner(),
                    fields,
                });
            }
            w.finish(ctx);
        }
        let timeout = duration(
            &mut r,
            ctx,
            "timeout",
            default_timeout,
            DurationRange::TIMEOUT,
        );
        if let Some(name) = name {
            out.push(Source::Redis {
                name: name.into_inner(),
                host,
                port,
                password,
                watch,
                timeout,
            });
        }
        r.finish(ctx);
    }
    for (table, span) in n.tables(ctx, "rabbitmq") {
        let mut r = Fields::new(table, span, format!("{node_what} [[rabbitmq]]"));
        let name = r.string(ctx, "name", true);
        if let Some(n) = &name {
            unique_source(ctx, &mut seen, &r.what, "rabbitmq", n);
        }
        let url = r
            .string(ctx, "url", true)
            .filter(|u| http_url(ctx, &r.what, "url", u));
        let user = r
            .string(ctx, "user", false)
            .map(|s| s.into_inner())
            .unwrap_or_else(|| "guest".into());
        let password = secret(&mut r, ctx, base);
        let timeout = duration(
            &mut r,
            ctx,
            "timeout",
            default_timeout,
            DurationRange::TIMEOUT,
        );
        let tls = tls_options(&mut r, ctx, base);
        if let (Some(name), Some(url)) = (name, url) {
            out.push(Source::RabbitMq {
                name: name.into_inner(),
                url: url.into_inner().trim_end_matches('/').to_string(),
                user,
                password,
                timeout,
                tls,
            });
        }
        r.finish(ctx);
    }
    for (table, span) in n.tables(ctx, "http") {
        let mut h = Fields::new(table, span, format!("{node_what} [[http]]"));
        let name = h.string(ctx, "name", true);
        if let Some(n) = &name {
            unique_source(ctx, &mut seen, &h.what, "http", n);
        }
        let url = h
            .string(ctx, "url", true)
            .filter(|u| http_url(ctx, &h.what, "url", u));
        let timeout = duration(
            &mut h,
            ctx,
            "timeout",
            default_timeout,
            DurationRange::TIMEOUT,
        );
        let tls = tls_options(&mut h, ctx, base);
        if let (Some(name), Some(url)) = (name, url) {
            out.push(Source::Http {
                name: name.into_inner(),
                url: url.into_inner(),
                timeout,
                tls,
            });
        }
        h.finish(ctx);
    }
    out
}

/// Two sources of one kind with one name would share a snapshot entry and overwrite each other.
fn unique_source(
    ctx: &mut Ctx,
    seen: &mut std::collections::BTreeSet<String>,
    what: &str,
    kind: &str,
    name: &Spanned<String>,
) {
    if !seen.insert(format!("{kind}:{}", name.get_ref())) {
        ctx.report(
            name.span(),
            format!(
                "{what}: a {kind} source named `{}` is already defined in this node",
                name.get_ref()
            ),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_mistake_with_lines() {
        let text = r#"fleet = "x"
timezone = "Mars/Base"
windwo = "2h"

[[node]]
name = "vk01"
[node.docker]
endpoint = "http://10.0.0.1:2375"
[[node.postgres]]
name = "db"
password = "hunter2"
[[node.rabbitmq]]
name = "mq"
url = "http://guest:guest@127.0.0.1:15672"
"#;
        let err = parse(Path::new("p.toml"), text).unwrap_err().to_string();
        for needle in [
            "p.toml:2:12",
            "p.toml:3:1: patrol.toml: unknown key `windwo` (did you mean `window`?)",
            "p.toml:8:12",
            "p.toml:11:12",
            "p.toml:14:7",
        ] {
            assert!(err.contains(needle), "missing {needle} in:\n{err}");
        }
        assert!(
            !err.contains("hunter2"),
            "the error must not echo the secret"
        );
    }

    #[test]
    fn archive_retention_is_on_unless_disabled_and_output_ages_are_read() {
        let base = "fleet = \"f\"\n[[node]]\nname = \"n\"\n";
        let plain = parse(Path::new("p.toml"), base).unwrap();
        let r = plain
            .retention
            .expect("retention on without a [retention] table");
        assert_eq!(r.full, chrono::Duration::days(14));
        assert_eq!(plain.report.keep_dated, Duration::from_secs(90 * 86400));
        assert_eq!(plain.report.keep_resolved, Duration::from_secs(30 * 86400));
        let off = parse(
            Path::new("p.toml"),
            &format!("{base}[retention]\nenabled = false\n"),
        )
        .unwrap();
        assert!(off.retention.is_none(), "enabled = false keeps everything");
        let set = parse(
            Path::new("p.toml"),
            "fleet = \"f\"\n[report]\nkeep_dated = \"10d\"\nkeep_resolved = \"2d\"\n[retention]\nfull = \"3d\"\n[[node]]\nname = \"n\"\n",
        )
        .unwrap();
        assert_eq!(set.report.keep_dated, Duration::from_secs(10 * 86400));
        assert_eq!(set.report.keep_resolved, Duration::from_secs(2 * 86400));
        assert_eq!(
            set.retention.map(|r| r.full),
            Some(chrono::Duration::days(3))
        );
        let err = parse(
            Path::new("p.toml"),
            &format!("{base}[report]\nkeep_dated = \"0d\"\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("p.toml:5"), "{err}");
    }

    #[test]
    fn a_full_config_parses() {
        let text = r#"fleet = "VisionKing 03002"
timezone = "America/Sao_Paulo"
concurrency = 4
timeout = "5s"
redact = ["token=\\S+"]
[logs]
max_lines = 1000
fields = { bar_uuid = "bar_uuid='([^']*)'" }

[[node]]
name = "vk01"
role = "processing"
[node.host]
[node.docker]
endpoint = "ssh://root@10.244.70.25"
[node.ssh]
target = "root@10.244.70.25"
port = 2222
commands = ["uptime", "compose"]
[node.prometheus]
url = "http://10.244.70.25:9090/"
instance = "10.244.70.25:9100"
gpu = true
queries = { fps = "sum(rate(frames_total[5m]))" }
[[node.postgres]]
name = "database-server"
port = 2345
user = "patrol"
password_env = "PATROL_PG_PASSWORD"
[[node.redis]]
name = "keydb"
port = 4000
watch = [{ db = 1, key = "DB_Speed", fields = ["Velocidade_Tratada"] }]
[[node.http]]
name = "visualizer"
url = "http://10.244.70.25:8050/"
"#;
        let c = parse(Path::new("/etc/patrol/patrol.toml"), text).unwrap();
        assert_eq!(
            c.archive,
            ArchiveSpec::Dir(PathBuf::from("/etc/patrol/snapshots/visionking-03002"))
        );
        assert_eq!(c.logs.fields[0].0, "bar_uuid");
        let names: Vec<String> = c.nodes[0].sources.iter().map(Source::name).collect();
        assert_eq!(
            names,
            [
                "host",
                "ssh",
                "docker",
                "prometheus",
                "postgres:database-server",
                "redis:keydb",
                "http:visualizer"
            ]
        );
        let Source::Docker { ssh: Some(ssh), .. } = &c.nodes[0].sources[2] else {
            panic!()
        };
        assert_eq!(
            ssh.port,
            Some(2222),
            "the docker ssh:// endpoint uses the node's ssh settings"
        );
    }

    #[test]
    fn report_file_mode_is_read_and_a_bad_one_is_an_error_with_its_line() {
        let base = "fleet = \"x\"\n[[node]]\nname = \"a\"\n[node.host]\n";
        let c = parse(Path::new("p.toml"), base).unwrap();
        assert_eq!(c.report.file_mode, 0o640);
        let c = parse(
            Path::new("p.toml"),
            &format!("{base}[report]\nfile_mode = \"0644\"\n"),
        )
        .unwrap();
        assert_eq!(c.report.file_mode, 0o644);
        for bad in ["\"0755\"", "\"0400\"", "\"x\""] {
            let err = parse(
                Path::new("p.toml"),
                &format!("{base}[report]\n\nfile_mode = {bad}\n"),
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("p.toml:7:") && err.contains("`file_mode`"),
                "{err}"
            );
        }
    }

    #[test]
    fn secret_files_are_listed_once_each_with_ssh_identities_strict() {
        let text = r#"fleet = "x"
archive = "postgres://patrol@db/archive"
archive_password_file = "archive_pw"
[telegram]
token_file = "token"
chat_id = "1"
[[node]]
name = "a"
[node.ssh]
target = "patrol@a"
identity = "id_a"
[node.docker]
endpoint = "ssh://patrol@a"
[[node.postgres]]
name = "db"
password_file = "pw"
[[node.redis]]
name = "r"
password_file = "pw"
[[node.rabbitmq]]
name = "mq"
url = "http://a:15672"
password_file = "mq_pw"
[[node.http]]
name = "web"
url = "http://a/"
"#;
        let c = parse(Path::new("/etc/patrol/patrol.toml"), text).unwrap();
        let files: Vec<(String, bool)> = c
            .secret_files()
            .into_iter()
            .map(|(_, p, strict)| (p.display().to_string(), strict))
            .collect();
        let want = |p: &str, strict| (format!("/etc/patrol/{p}"), strict);
        assert_eq!(
            files,
            vec![
                want("archive_pw", false),
                want("token", false),
                want("pw", false),
                want("mq_pw", false),
                want("id_a", true),
            ]
        );
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("VisionKing 03002"), "visionking-03002");
    }

    #[test]
    fn shared_archive_is_a_url_with_its_password_named_not_written() {
        let base = "fleet = \"vk\"\n[[node]]\nname = \"a\"\n";
        let c = parse(
            Path::new("/etc/patrol/patrol.toml"),
            &format!(
                "archive = \"postgres://patrol@db:5433/archive?schema=site_a\"\narchive_password_file = \"pw\"\n{base}"
            ),
        )
        .unwrap();
        match &c.archive {
            ArchiveSpec::Postgres { target, password } => {
                assert_eq!((target.host.as_str(), target.port), ("db", 5433));
                assert_eq!(target.schema, "site_a");
                assert_eq!(
                    password,
                    &Some(Secret::File(PathBuf::from("/etc/patrol/pw")))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.state_root(), Path::new("/etc/patrol/output/vk"));
        let err = parse(
            Path::new("patrol.toml"),
            &format!("archive = \"postgres://patrol:hunter2@db/archive\"\n{base}"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("patrol.toml:1:") && err.contains("holds a password"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse(
            Path::new("patrol.toml"),
            &format!("archive = \"snapshots/vk\"\narchive_password_env = \"PW\"\n{base}"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("only for a postgres:// archive"), "{err}");
    }

    #[test]
    fn every_bad_value_is_reported_at_once_with_its_line() {
        let text = r#"fleet = "x"
timeout = "99999999999999d"
window = "0m"
concurrency = 1000000000
[daemon]
interval = "0s"
[telegram]
api_base = "file:///etc/passwd"
token_env = "T"
chat_id = "1"
attempts = 1000
[[node]]
name = "a"
[node.ssh]
target = "-oProxyCommand=touch /tmp/pwned"
port = 70000
[node.docker]
endpoint = "tcp://docker-host"
[node.prometheus]
url = "localhost:9090"
[[node.postgres]]
name = "db"
port = -1
[[node.postgres]]
name = "db"
port = 0
[[node.redis]]
name = "cache"
timeout = "0s"
[[node.http]]
name = "web"
url = "ftp://10.0.0.1/"
[[node.http]]
name = "web"
url = "http://10.0.0.1:8080/"
[[node]]
name = "b"
[node.docker]
endpoint = "ssh://-oProxyCommand=x:22"
[[node.rabbitmq]]
name = "mq"
url = "http://:15672"
"#;
        let err = parse(Path::new("p.toml"), text).unwrap_err().to_string();
        for line in [
            2, 3, 4, 6, 8, 11, 15, 16, 18, 20, 23, 25, 26, 29, 32, 34, 39, 42,
        ] {
            assert!(
                err.contains(&format!("p.toml:{line}:")),
                "no problem at line {line}:\n{err}"
            );
        }
        assert!(err.contains("starts with `-`"), "{err}");
        assert!(err.contains("already defined in this node"), "{err}");
        assert!(err.contains("from 1 to 65535"), "{err}");
    }

    #[test]
    fn log_read_bounds_and_the_size_schedule_are_read_and_checked() {
        let text = "fleet = \"x\"\n[logs]\nmax_bytes = \"8MB\"\nread_time = \"5s\"\nwarn_templates = 10\n[[node]]\nname = \"a\"\n[node.docker]\nendpoint = \"unix:///run/docker.sock\"\nsize_every = \"1h\"\n";
        let c = parse(Path::new("p.toml"), text).unwrap();
        assert_eq!(c.logs.max_bytes, 8_000_000);
        assert_eq!(c.logs.read_time, Duration::from_secs(5));
        assert_eq!(c.logs.warn_templates, 10);
        let Source::Docker { size_every, .. } = &c.nodes[0].sources[0] else {
            panic!("a docker source")
        };
        assert_eq!(*size_every, Duration::from_secs(3600));
        for bad in [
            "max_bytes = \"12\"",
            "max_bytes = \"lots\"",
            "read_time = \"0s\"",
        ] {
            let text =
                format!("fleet = \"x\"\n[logs]\n{bad}\n[[node]]\nname = \"a\"\n[node.host]\n");
            assert!(parse(Path::new("p.toml"), &text).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_at_the_edges_of_their_ranges() {
        let base = "fleet = \"x\"\n[[node]]\nname = \"a\"\n[node.host]\n";
        let ok = |extra: &str| parse(Path::new("p.toml"), &format!("{extra}\n{base}")).is_ok();
        assert!(ok("timeout = \"1h\""));
        assert!(!ok("timeout = \"61m\""));
        assert!(ok("window = \"3650d\""));
        assert!(!ok("window = \"3651d\""));
        assert!(!ok("window = \"-1h\""));
    }

    mod never_panics {
        use super::super::*;
        use crate::tomlread::arbitrary::tomlish;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn loading_any_config_text_returns(text in tomlish()) {
                let _ = parse(Path::new("p.toml"), &text);
            }

            #[test]
            fn a_docker_endpoint_of_any_text_returns(text in "(unix|tcp|ssh)://[ -~]{0,20}") {
                let _ = DockerEndpoint::parse(&text);
            }
        }

        #[test]
        fn an_ipv6_docker_host_must_be_whole() {
            assert!(DockerEndpoint::parse("tcp://[::1]:2375").is_ok());
            for bad in [
                "tcp://[::1:2375",
                "tcp://::1]:2375",
                "tcp://[]:2375",
                "tcp://[zz]:2375",
            ] {
                assert!(DockerEndpoint::parse(bad).is_err(), "{bad}");
            }
        }
    }
}
