//! PostgreSQL over its own protocol (tokio-postgres): active connections, database sizes, key
//! settings, rows inserted, and the server log read over SQL (`pg_current_logfile`,
//! `pg_read_file`) from the byte offset reached by the previous capture, reduced to templates.
//! The role needs `pg_monitor` and EXECUTE on the file functions (docs/configuration.md).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::config::LogSettings;
use crate::model::{DatabaseSize, LogStream, Postgres};
use crate::sources::logs::Reducer;

/// Settings worth watching, shown as PostgreSQL shows them ("128MB").
const SETTINGS: &[&str] = &[
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "max_connections",
    "idle_in_transaction_session_timeout",
];

/// Most bytes of server log read per capture; the rest is counted as dropped lines' bytes.
const MAX_LOG_BYTES: i64 = 4 * 1024 * 1024;
/// How far back the first read of a log file starts.
const FIRST_READ_BYTES: i64 = 64 * 1024;

pub struct Target<'a> {
    pub name: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub database: &'a str,
    pub password: Option<String>,
    pub log: bool,
    pub sslmode: crate::tls::SslMode,
    pub tls: &'a crate::tls::TlsOptions,
}

pub struct Answer {
    pub postgres: Postgres,
    pub log: Option<LogStream>,
    /// Where the next capture continues reading the log: (file, byte offset).
    pub position: Option<(String, u64)>,
}

fn endpoint(t: &Target) -> String {
    format!(
        "postgresql://{}@{}:{}/{}",
        t.user, t.host, t.port, t.database
    )
}

pub async fn collect(
    t: &Target<'_>,
    previous: Option<&(String, u64)>,
    window: (DateTime<Utc>, DateTime<Utc>),
    settings: &LogSettings,
    timeout: Duration,
) -> Result<Answer, String> {
    let ep = endpoint(t);
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(t.host)
        .port(t.port)
        .user(t.user)
        .dbname(t.database)
        .application_name("patrol")
        .connect_timeout(timeout);
    if let Some(p) = &t.password {
        cfg.password(p);
    }
    let (mode, tls) =
        crate::tls::postgres_connector(t.sslmode, t.tls).map_err(|e| format!("{ep}: {e}"))?;
    cfg.ssl_mode(mode);
    let (client, connection) = cfg
        .connect(tls)
        .await
        .map_err(|e| format!("{ep}: {}", crate::error::describe_pg(&e)))?;
    let conn_task = tokio::spawn(connection);
    let err = |e: tokio_postgres::Error| format!("{ep}: {}", crate::error::describe_pg(&e));
    let version: String = client
        .query_one("select current_setting('server_version')", &[])
        .await
        .map_err(err)?
        .get(0);
    let active: i64 = client
        .query_one(
            "select count(*) from pg_stat_activity where state = 'active' and backend_type = 'client backend' and pid <> pg_backend_pid()",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    let databases = client
        .query(
            "select datname::text, pg_database_size(datname) from pg_database where not datistemplate order by datname",
            &[],
        )
        .await
        .map_err(err)?
        .iter()
        .map(|r| DatabaseSize { name: r.get(0), size_bytes: r.get::<_, Option<i64>>(1).map(|v| v.max(0) as u64) })
        .collect();
    let names: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
    let settings_rows = client
        .query("select name::text, current_setting(name) from pg_settings where name = any($1) order by name", &[&names])
        .await
        .map_err(err)?;
    let pg_settings = settings_rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let inserted: Option<i64> = client
        .query_one(
            "select sum(tup_inserted)::bigint from pg_stat_database",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    let mut log = None;
    let mut position = previous.cloned();
    if t.log {
        match read_log(
            &client,
            &format!("postgres:{}", t.name),
            previous,
            window,
            settings,
            &ep,
        )
        .await
        {
            Ok((stream, pos)) => {
                log = Some(stream);
                position = Some(pos);
            }
            // The numbers above are still good; the log is left out, and the reason logged.
            Err(e) => tracing::warn!("{}", super::redact::builtin_text(&e.to_string())),
        }
    }
    drop(client);
    conn_task.abort();
    Ok(Answer {
        postgres: Postgres {
            name: t.name.to_string(),
            port: Some(t.port),
            version: Some(version),
            active_connections: Some(active.max(0) as u64),
            databases,
            settings: pg_settings,
            rows_inserted_total: inserted.map(|v| v.max(0) as u64),
        },
        log,
        position,
    })
}

/// `pg_read_file` refuses a range that cuts a multibyte character ("invalid byte sequence"), and
/// the cut falls where the byte counts put it: the end of a capped read, or the start of a first
/// read, inside a Portuguese log's `ç`. A character is at most four bytes, so the range is moved
/// by up to three: the end back, and the start forward when it may fall mid-line anyway. Returns
/// the start used and the text.
async fn read_whole_characters(
    client: &tokio_postgres::Client,
    file: &str,
    start: i64,
    length: i64,
    mid_line: bool,
) -> Result<(i64, String), tokio_postgres::Error> {
    if length <= 0 {
        return Ok((start, String::new()));
    }
    let starts: &[i64] = if mid_line { &[0, 1, 2, 3] } else { &[0] };
    let mut last_error = None;
    for &skip in starts {
        for trim in 0..4 {
            let (from, len) = (start + skip, length - skip - trim);
            if len <= 0 {
                continue;
            }
            match client
                .query_one("select pg_read_file($1, $2, $3)", &[&file, &from, &len])
                .await
            {
                Ok(row) => return Ok((from, row.get(0))),
                Err(e) if is_cut_character(&e) => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
    }
    match last_error {
        Some(e) => Err(e),
        None => Ok((start, String::new())),
    }
}

fn is_cut_character(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || db.message().contains("invalid byte sequence")
    })
}

async fn read_log(
    client: &tokio_postgres::Client,
    source: &str,
    previous: Option<&(String, u64)>,
    window: (DateTime<Utc>, DateTime<Utc>),
    settings: &LogSettings,
    ep: &str,
) -> Result<(LogStream, (String, u64)), String> {
    let err = |e: tokio_postgres::Error| {
        format!(
            "{ep}: reading the server log: {}",
            crate::error::describe_pg(&e)
        )
    };
    let file: Option<String> = client
        .query_one("select pg_current_logfile()", &[])
        .await
        .map_err(err)?
        .get(0);
    let file = file.ok_or_else(|| {
        format!("{ep}: the server does not log to a file (logging_collector is off)")
    })?;
    let size: i64 = client
        .query_one("select size from pg_stat_file($1)", &[&file])
        .await
        .map_err(err)?
        .get(0);
    // Continue where the last capture stopped; a new or shorter file (rotation) starts over.
    let (start, mid_line) = match previous {
        Some((f, off)) if *f == file && (*off as i64) <= size => (*off as i64, false),
        Some(_) => (0, false),
        None => ((size - FIRST_READ_BYTES).max(0), size > FIRST_READ_BYTES),
    };
    let length = (size - start).min(MAX_LOG_BYTES);
    let (start, text) = read_whole_characters(client, &file, start, length, mid_line)
        .await
        .map_err(err)?;
    // Only complete lines are read; a partial last line is left for the next capture.
    let complete = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let mut reducer = Reducer::new(settings);
    let mut lines = text[..complete].lines();
    if mid_line {
        // The first read started inside a line.
        lines.next();
    }
    for line in lines {
        // Continuation lines (a TAB-indented context line) belong to the line before.
        if line.is_empty() || line.starts_with('\t') {
            continue;
        }
        reducer.add(parse_time(line), line);
    }
    let next = (start + complete as i64).max(0) as u64;
    Ok((reducer.finish(source, window.0, window.1), (file, next)))
}

/// "2026-11-22 13:04:15.076 UTC ..." → the time; other zones are left unparsed.
fn parse_time(line: &str) -> Option<DateTime<Utc>> {
    let stamp = line.get(..23)?;
    let zone = line.get(24..27)?;
    if zone != "UTC" && zone != "GMT" {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.3f")
        .ok()
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_line_times() {
        let t =
            parse_time("2026-11-22 13:04:15.076 UTC [7249] patrol@visionking FATAL:  x").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T13:04:15.076+00:00");
        assert!(parse_time("2026-11-22 13:04:15.076 CET [1] x").is_none());
    }
}
