//! Single values read from the config with their checks (durations in their range, ports,
//! counts, sizes, URLs, regexes, secrets, CA files), shared by every section so one mistake is
//! worded the same wherever it is made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::tls::{SslMode, TlsOptions};
use crate::tomlread::{Ctx, Fields, Spanned};
use crate::units::DurationRange;

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

/// A duration key, checked against its range (docs/configuration.md lists them).
pub(super) fn duration(
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
pub(super) fn port(f: &mut Fields, ctx: &mut Ctx, key: &str) -> Option<u16> {
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
pub(super) fn count_in(
    f: &mut Fields,
    ctx: &mut Ctx,
    key: &str,
    min: usize,
    max: usize,
) -> Option<usize> {
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
pub(super) fn bytes_in(f: &mut Fields, ctx: &mut Ctx, key: &str) -> Option<u64> {
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

/// An `http://` or `https://` URL with a host (and a valid port), checked at load rather than
/// at the first capture.
pub(super) fn http_url(ctx: &mut Ctx, what: &str, key: &str, s: &Spanned<String>) -> bool {
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

pub(super) fn regex(ctx: &mut Ctx, what: &str, s: &Spanned<String>) -> Option<Regex> {
    match Regex::new(s.get_ref()) {
        Ok(r) => Some(r),
        Err(e) => {
            ctx.report(s.span(), format!("{what}: not a valid regex: {e}"));
            None
        }
    }
}

/// `ca_file`: the PEM file of a private CA that signs this server's certificate, relative to
/// the config's directory. Read when the connection is made; a missing file is said at load.
pub(super) fn tls_options(f: &mut Fields, ctx: &mut Ctx, base: &Path) -> TlsOptions {
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
pub(super) fn sslmode(f: &mut Fields, ctx: &mut Ctx) -> SslMode {
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

/// `password_env` or `password_file`; a `password` key is refused: secrets stay out of files
/// that get committed and shared.
pub(super) fn secret(f: &mut Fields, ctx: &mut Ctx, base: &Path) -> Option<Secret> {
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
