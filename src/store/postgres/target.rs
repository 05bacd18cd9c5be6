//! The shared archive's address: a `postgres://` URL parsed into a [`PgTarget`] (libpq's names
//! where it has them, patrol's own `schema` and `fleet` beside them), and shown back without a
//! password, since none is ever in it.

use std::time::Duration;

use crate::tls::{SslMode, TlsOptions};

/// Where the shared archive lives: a `postgres://` URL without a password, with patrol's own
/// options (`schema`, `fleet`) as query parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    /// The PostgreSQL schema holding patrol's tables (several archives can share a database).
    pub schema: String,
    /// The fleet to read or write; default: the configuration's fleet, else the only one stored.
    pub fleet: Option<String>,
    /// Deadline for connecting, TLS and authentication included (`connect_timeout`).
    pub connect_timeout: Duration,
    /// Deadline for each statement, on the client and the server (`statement_timeout`): a
    /// database that accepts connections and never answers cannot hold a run.
    pub statement_timeout: Duration,
    /// libpq's `sslmode`, default `prefer`.
    pub sslmode: SslMode,
    /// `sslrootcert`: the CA that signs the server's certificate.
    pub tls: TlsOptions,
}

const DEFAULT_SCHEMA: &str = "patrol";

impl PgTarget {
    pub fn is_url(text: &str) -> bool {
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }

    /// Parses `postgres://user@host[:port]/database[?schema=…&fleet=…&connect_timeout=…&
    /// statement_timeout=…&sslmode=…&sslrootcert=…]`.
    pub fn parse(url: &str) -> std::result::Result<PgTarget, String> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| "an archive URL starts with postgres://".to_string())?;
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, dbname) = main.split_once('/').unwrap_or((main, ""));
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if user.is_some_and(|u| u.contains(':')) {
            return Err("the URL holds a password; give it in PGPASSWORD, or in the config with `archive_password_env` or `archive_password_file`".into());
        }
        let (host, port) = split_host_port(hostport)?;
        let user = match user {
            Some(u) if !u.is_empty() => percent_decode(u)?,
            _ => std::env::var("USER").unwrap_or_else(|_| "postgres".into()),
        };
        let dbname = if dbname.is_empty() {
            user.clone()
        } else {
            percent_decode(dbname)?
        };
        let mut target = PgTarget {
            host,
            port,
            user,
            dbname,
            schema: DEFAULT_SCHEMA.into(),
            fleet: None,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(120),
            sslmode: SslMode::default(),
            tls: TlsOptions::default(),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)?;
            match key {
                "schema" => {
                    if !is_identifier(&value) {
                        return Err(format!(
                            "schema `{value}`: use lower-case letters, digits and _ (not first a digit)"
                        ));
                    }
                    target.schema = value;
                }
                "fleet" => {
                    if value.is_empty() {
                        return Err("fleet: give a name".into());
                    }
                    target.fleet = Some(value);
                }
                "connect_timeout" | "statement_timeout" => {
                    let secs = value
                        .parse::<u64>()
                        .ok()
                        .filter(|s| (1..=86_400).contains(s))
                        .ok_or_else(|| format!("{key} `{value}`: whole seconds from 1 to 86400"))?;
                    if key == "connect_timeout" {
                        target.connect_timeout = Duration::from_secs(secs);
                    } else {
                        target.statement_timeout = Duration::from_secs(secs);
                    }
                }
                "sslmode" => {
                    target.sslmode = SslMode::parse(&value)
                        .ok_or_else(|| format!("sslmode `{value}`: one of {}", SslMode::NAMES))?;
                }
                "sslrootcert" => {
                    if value.is_empty() {
                        return Err("sslrootcert: give the path of a PEM file".into());
                    }
                    target.tls.ca_file = Some(value.into());
                }
                "password" => {
                    return Err("the URL holds a password; give it in PGPASSWORD, or in the config with `archive_password_env` or `archive_password_file`".into());
                }
                other => {
                    return Err(format!(
                        "unknown parameter `{other}` (known: schema, fleet, connect_timeout, statement_timeout, sslmode, sslrootcert)"
                    ));
                }
            }
        }
        Ok(target)
    }

    /// The URL as shown in messages: never a password, since none is ever in it.
    pub fn display(&self) -> String {
        let host = if self.host.starts_with('/') {
            self.host.replace('/', "%2F")
        } else if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let mut out = format!(
            "postgres://{}@{}:{}/{}",
            self.user, host, self.port, self.dbname
        );
        let mut params = Vec::new();
        if self.schema != DEFAULT_SCHEMA {
            params.push(format!("schema={}", self.schema));
        }
        if let Some(f) = &self.fleet {
            params.push(format!("fleet={f}"));
        }
        if self.sslmode != SslMode::default() {
            params.push(format!("sslmode={}", self.sslmode.name()));
        }
        if !params.is_empty() {
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }
}

fn split_host_port(text: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}`: an IPv6 address needs its closing ]"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (percent_decode(h)?, Some(p)),
            None => (percent_decode(text)?, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("port `{p}` is not a number from 1 to 65535"))?,
        None => 5432,
    };
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    Ok((host, port))
}

fn percent_decode(text: &str) -> std::result::Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{text}`: a % must be followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{text}`: not UTF-8 once decoded"))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_urls_and_keeps_patrols_own_options() {
        let t = PgTarget::parse(
            "postgres://patrol@db.example:5433/archive?schema=site_a&fleet=visionking",
        )
        .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.dbname.as_str()),
            ("db.example", 5433, "patrol", "archive")
        );
        assert_eq!(t.schema, "site_a");
        assert_eq!(t.fleet.as_deref(), Some("visionking"));
        assert_eq!(
            t.display(),
            "postgres://patrol@db.example:5433/archive?schema=site_a&fleet=visionking"
        );
        let t = PgTarget::parse("postgresql://u@[::1]/d").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 5432));
        let t = PgTarget::parse("postgres://u@%2Fvar%2Frun%2Fpostgresql/d").unwrap();
        assert_eq!(t.host, "/var/run/postgresql");
        assert_eq!(t.display(), "postgres://u@%2Fvar%2Frun%2Fpostgresql:5432/d");
    }

    #[test]
    fn refuses_passwords_and_unknown_options_clearly() {
        let e = PgTarget::parse("postgres://u:hunter2@h/d").unwrap_err();
        assert!(
            e.contains("holds a password") && !e.contains("hunter2"),
            "{e}"
        );
        let e = PgTarget::parse("postgres://u@h/d?password=hunter2").unwrap_err();
        assert!(
            e.contains("holds a password") && !e.contains("hunter2"),
            "{e}"
        );
        let e = PgTarget::parse("postgres://u@h/d?scheme=x").unwrap_err();
        assert!(e.contains("unknown parameter `scheme`"), "{e}");
        let e = PgTarget::parse("postgres://u@h/d?schema=Bad-Name").unwrap_err();
        assert!(e.contains("schema `Bad-Name`"), "{e}");
        let e = PgTarget::parse("postgres://u@h:99999/d").unwrap_err();
        assert!(e.contains("port `99999`"), "{e}");
        let e = PgTarget::parse("postgres://u@h/d?sslmode=allow").unwrap_err();
        assert!(
            e.contains("sslmode `allow`") && e.contains("verify-full"),
            "{e}"
        );
        let e = PgTarget::parse("postgres://u@h/d?statement_timeout=0").unwrap_err();
        assert!(e.contains("statement_timeout"), "{e}");
        let t = PgTarget::parse(
            "postgres://u@h/d?sslmode=verify-full&sslrootcert=/etc/ca.pem&statement_timeout=5",
        )
        .unwrap();
        assert_eq!(t.sslmode, SslMode::VerifyFull);
        assert_eq!(t.tls.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(t.statement_timeout, Duration::from_secs(5));
        assert!(t.display().contains("sslmode=verify-full"));
    }
}
