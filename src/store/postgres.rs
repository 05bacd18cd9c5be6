//! The archive in PostgreSQL, so several collectors (one per site) write to one database and
//! one reporter reads it. Each capture is one row holding the same zstd-compressed JSON a file
//! of the filesystem archive holds, keyed by fleet, node and time; the fleet's time zone and
//! interval sit in a table of their own. patrol creates and migrates its tables itself, under an
//! advisory lock, so collectors starting together do not race; writes are single upserts, so two
//! collectors writing at once (even the same capture) leave one whole row.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use super::{ArchiveMeta, Encoded, Entry, Location};
use crate::error::{Error, Result, describe_pg};
use crate::model::validate_node_name;
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

fn statement_timed_out(limit: Duration) -> String {
    format!("no answer within {} s (statement_timeout)", limit.as_secs())
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

/// One step of the schema; applied in order, once, and recorded in `<schema>.migrations`.
struct Migration {
    version: i32,
    about: &'static str,
    /// `{s}` stands for the schema name.
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        about: "fleets and snapshots",
        sql: "
create table {s}.fleets (
    fleet text primary key,
    timezone text not null,
    interval_s bigint,
    updated_at timestamptz not null default now()
);
create table {s}.snapshots (
    fleet text not null references {s}.fleets (fleet),
    node text not null,
    captured_at timestamptz not null,
    schema_version text not null,
    -- zstd-compressed snapshot JSON: the bytes of the filesystem archive's file
    body bytea not null,
    written_at timestamptz not null default now(),
    primary key (fleet, node, captured_at)
);
create index snapshots_by_time on {s}.snapshots (fleet, captured_at);
",
    },
    Migration {
        version: 2,
        about: "who wrote each capture",
        sql: "alter table {s}.snapshots add column written_by text not null default '';",
    },
];

/// The newest schema this build knows.
pub const SCHEMA_VERSION: i32 = 2;

/// Rows fetched per query when loading captures: bounds the memory one answer takes.
const LOAD_BATCH: usize = 512;

pub struct PgArchive {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    target: PgTarget,
    fleet: String,
    /// The URL without the fleet, for errors.
    endpoint: String,
    /// Recorded with each capture written, so a shared archive says which collector sent it.
    writer: String,
}

impl std::fmt::Debug for PgArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgArchive")
            .field("target", &self.endpoint)
            .finish()
    }
}

impl PgArchive {
    /// Connects, creates or migrates the schema, and settles which fleet this archive is:
    /// the URL's `fleet`, else `default_fleet`, else the only fleet stored.
    pub fn connect(
        target: &PgTarget,
        password: Option<&str>,
        default_fleet: Option<&str>,
    ) -> Result<PgArchive> {
        let display = target.display();
        let fail = |message: String| Error::Source {
            endpoint: display.clone(),
            message,
        };
        // One worker drives the connection, so any thread may wait on a query (the digest reads
        // nodes in parallel).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the database client: {e}")))?;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&target.host)
            .port(target.port)
            .user(&target.user)
            .dbname(&target.dbname)
            .application_name("patrol archive")
            .connect_timeout(target.connect_timeout)
            .options(format!(
                "-c statement_timeout={}",
                target.statement_timeout.as_millis()
            ));
        if let Some(p) = password {
            cfg.password(p);
        }
        let (mode, tls) =
            crate::tls::postgres_connector(target.sslmode, &target.tls).map_err(&fail)?;
        cfg.ssl_mode(mode);
        let connecting = async {
            let (client, connection) = cfg.connect(tls).await.map_err(|e| fail(describe_pg(&e)))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!("archive connection: {}", describe_pg(&e));
                }
            });
            Ok::<_, Error>(client)
        };
        // connect_timeout bounds each TCP connect only; a server that accepts and then says
        // nothing would hold the startup handshake for ever.
        let mut client = runtime
            // The timer is made inside the runtime: tokio's timers need its context.
            .block_on(async { tokio::time::timeout(target.connect_timeout, connecting).await })
            .map_err(|_| {
                fail(format!(
                    "no answer within {} s (connect_timeout)",
                    target.connect_timeout.as_secs()
                ))
            })??;
        runtime
            .block_on(async {
                tokio::time::timeout(
                    target.statement_timeout,
                    migrate(&mut client, &target.schema, &display),
                )
                .await
            })
            .map_err(|_| fail(statement_timed_out(target.statement_timeout)))??;
        let mut archive = PgArchive {
            runtime,
            client,
            target: target.clone(),
            fleet: String::new(),
            endpoint: display.clone(),
            writer: writer_name(),
        };
        archive.fleet = match target.fleet.clone().or(default_fleet.map(str::to_string)) {
            Some(f) => f,
            None => {
                let fleets = archive.fleets()?;
                match fleets.as_slice() {
                    [only] => only.clone(),
                    [] => {
                        return Err(fail(
                            "the archive holds no fleet yet; name one with ?fleet=NAME".into(),
                        ));
                    }
                    many => {
                        return Err(fail(format!(
                            "the archive holds several fleets ({}); choose one with ?fleet=NAME",
                            many.join(", ")
                        )));
                    }
                }
            }
        };
        Ok(archive)
    }

    pub fn fleet(&self) -> &str {
        &self.fleet
    }

    pub fn display(&self) -> String {
        let mut t = self.target.clone();
        t.fleet = Some(self.fleet.clone());
        t.display()
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.target.schema)
    }

    /// Runs one statement to its end or to the statement deadline.
    fn within_deadline<T>(
        &self,
        statement: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        let limit = self.target.statement_timeout;
        match self
            .runtime
            .block_on(async { tokio::time::timeout(limit, statement).await })
        {
            Ok(answer) => answer.map_err(|e| self.err(e)),
            Err(_) => Err(Error::Source {
                endpoint: self.endpoint.clone(),
                message: statement_timed_out(self.target.statement_timeout),
            }),
        }
    }

    fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.within_deadline(self.client.query(sql, params))
    }

    fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        self.within_deadline(self.client.execute(sql, params))
    }

    fn err(&self, e: tokio_postgres::Error) -> Error {
        Error::Source {
            endpoint: self.endpoint.clone(),
            message: describe_pg(&e),
        }
    }

    /// Fleets that have metadata in this schema.
    pub fn fleets(&self) -> Result<Vec<String>> {
        let sql = format!("select fleet from {} order by fleet", self.table("fleets"));
        let rows = self.query(&sql, &[])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn read_meta(&self) -> Result<Option<ArchiveMeta>> {
        let sql = format!(
            "select timezone, interval_s from {} where fleet = $1",
            self.table("fleets")
        );
        let row = self.query(&sql, &[&self.fleet])?.into_iter().next();
        Ok(row.map(|r| ArchiveMeta {
            fleet: self.fleet.clone(),
            timezone: r.get(0),
            interval_s: r.get::<_, Option<i64>>(1).map(|i| i.max(0) as u64),
        }))
    }

    pub fn write_meta(&self, meta: &ArchiveMeta) -> Result<()> {
        let sql = format!(
            "insert into {} (fleet, timezone, interval_s) values ($1, $2, $3)
             on conflict (fleet) do update set timezone = excluded.timezone,
                 interval_s = excluded.interval_s, updated_at = now()",
            self.table("fleets")
        );
        let interval = meta.interval_s.map(|i| i as i64);
        self.execute(&sql, &[&self.fleet, &meta.timezone, &interval])?;
        Ok(())
    }

    /// Stores captures in one statement: all of them or none. A capture already stored for the
    /// same node and second is replaced, as a file would be.
    pub fn write_encoded(&self, captures: &[Encoded]) -> Result<()> {
        if captures.is_empty() {
            return Ok(());
        }
        let mut last_of: std::collections::BTreeMap<(&str, DateTime<Utc>), usize> =
            Default::default();
        for (i, c) in captures.iter().enumerate() {
            validate_node_name(&c.node).map_err(Error::Usage)?;
            last_of.insert((c.node.as_str(), c.captured_at.trunc_subsecs(0)), i);
        }
        let mut nodes = Vec::new();
        let mut times = Vec::new();
        let mut versions = Vec::new();
        let mut bodies: Vec<&[u8]> = Vec::new();
        for ((node, at), i) in last_of {
            nodes.push(node);
            times.push(at);
            versions.push(captures[i].schema_version.as_str());
            bodies.push(&captures[i].body);
        }
        let sql = format!(
            "insert into {snap} (fleet, node, captured_at, schema_version, body, written_by)
             select $1, n, t, v, b, $6
             from unnest($2::text[], $3::timestamptz[], $4::text[], $5::bytea[]) as c(n, t, v, b)
             on conflict (fleet, node, captured_at) do update
                 set schema_version = excluded.schema_version, body = excluded.body,
                     written_at = now(), written_by = excluded.written_by",
            snap = self.table("snapshots")
        );
        self.ensure_fleet()?;
        self.execute(
            &sql,
            &[
                &self.fleet,
                &nodes,
                &times,
                &versions,
                &bodies,
                &self.writer,
            ],
        )?;
        Ok(())
    }

    /// Snapshots reference their fleet: a fleet first written by captures gets UTC until
    /// somebody writes its metadata.
    fn ensure_fleet(&self) -> Result<()> {
        let sql = format!(
            "insert into {} (fleet, timezone) values ($1, 'UTC') on conflict (fleet) do nothing",
            self.table("fleets")
        );
        self.execute(&sql, &[&self.fleet])?;
        Ok(())
    }

    pub fn nodes(&self) -> Result<Vec<String>> {
        let sql = format!(
            "select distinct node from {} where fleet = $1 order by node",
            self.table("snapshots")
        );
        let rows = self.query(&sql, &[&self.fleet])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn list(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        node: Option<&str>,
    ) -> Result<Vec<Entry>> {
        let sql = format!(
            "select node, captured_at, octet_length(body)::bigint from {}
             where fleet = $1
               and ($2::timestamptz is null or captured_at >= $2)
               and ($3::timestamptz is null or captured_at <= $3)
               and ($4::text is null or node = $4)
             order by captured_at, node",
            self.table("snapshots")
        );
        let rows = self.query(&sql, &[&self.fleet, &from, &to, &node])?;
        let mut out: Vec<Entry> = rows.iter().map(entry_of).collect();
        out.sort();
        Ok(out)
    }

    /// The capture of `node` closest to `at`, from the index alone.
    pub fn nearest(&self, node: &str, at: DateTime<Utc>) -> Result<Option<Entry>> {
        let snap = self.table("snapshots");
        let sql = format!(
            "(select node, captured_at, octet_length(body)::bigint from {snap}
               where fleet = $1 and node = $2 and captured_at <= $3
               order by captured_at desc limit 1)
             union all
             (select node, captured_at, octet_length(body)::bigint from {snap}
               where fleet = $1 and node = $2 and captured_at > $3
               order by captured_at limit 1)"
        );
        let rows = self.query(&sql, &[&self.fleet, &node, &at])?;
        let candidates: Vec<Entry> = rows.iter().map(entry_of).collect();
        Ok(super::closest(&candidates, at).cloned())
    }

    /// The stored bytes of each entry, fetched in batches.
    pub fn read_encoded(&self, entries: &[Entry]) -> Vec<(Entry, Result<Vec<u8>>)> {
        let sql = format!(
            "select s.node, s.captured_at, s.body from {} s
             join unnest($2::text[], $3::timestamptz[]) as k(node, at)
               on s.node = k.node and s.captured_at = k.at
             where s.fleet = $1 and s.captured_at between $4 and $5",
            self.table("snapshots")
        );
        let mut out = Vec::with_capacity(entries.len());
        for batch in entries.chunks(LOAD_BATCH) {
            let nodes: Vec<&str> = batch.iter().map(|e| e.node.as_str()).collect();
            let times: Vec<DateTime<Utc>> = batch.iter().map(|e| e.captured_at).collect();
            // The time bounds let the (fleet, captured_at) index narrow the join: a batch of a
            // window is a short stretch of time.
            let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
                continue;
            };
            match self.within_deadline(
                self.client
                    .query(&sql, &[&self.fleet, &nodes, &times, first, last]),
            ) {
                Ok(rows) => {
                    let mut found: std::collections::HashMap<(String, DateTime<Utc>), Vec<u8>> =
                        rows.into_iter()
                            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
                            .collect();
                    for e in batch {
                        let bytes =
                            found
                                .remove(&(e.node.clone(), e.captured_at))
                                .ok_or_else(|| Error::Source {
                                    endpoint: self.endpoint.clone(),
                                    message: format!(
                                        "capture {} is gone (pruned meanwhile?)",
                                        e.describe()
                                    ),
                                });
                        out.push((e.clone(), bytes));
                    }
                }
                Err(err) => {
                    let message = match err {
                        Error::Source { message, .. } => message,
                        other => other.to_string(),
                    };
                    for e in batch {
                        out.push((
                            e.clone(),
                            Err(Error::Source {
                                endpoint: self.endpoint.clone(),
                                message: message.clone(),
                            }),
                        ));
                    }
                }
            }
        }
        out
    }

    pub fn delete(&self, entries: &[Entry]) -> Result<usize> {
        let sql = format!(
            "delete from {} s using unnest($2::text[], $3::timestamptz[]) as k(node, at)
             where s.fleet = $1 and s.node = k.node and s.captured_at = k.at",
            self.table("snapshots")
        );
        let mut removed = 0;
        for batch in entries.chunks(1000) {
            let nodes: Vec<&str> = batch.iter().map(|e| e.node.as_str()).collect();
            let times: Vec<DateTime<Utc>> = batch.iter().map(|e| e.captured_at).collect();
            removed += self.execute(&sql, &[&self.fleet, &nodes, &times])? as usize;
        }
        Ok(removed)
    }

    /// Who wrote this fleet's captures: (writer, captures, last write), newest first.
    pub fn writers(&self) -> Result<Vec<(String, i64, DateTime<Utc>)>> {
        let sql = format!(
            "select written_by, count(*), max(written_at) from {} where fleet = $1
             group by written_by order by max(written_at) desc",
            self.table("snapshots")
        );
        let rows = self.query(&sql, &[&self.fleet])?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// The schema version the database is at (for `archive stats`).
    pub fn schema_version(&self) -> Result<i32> {
        let sql = format!(
            "select coalesce(max(version), 0) from {}",
            self.table("migrations")
        );
        Ok(self
            .query(&sql, &[])?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0))
    }
}

/// An index row (node, captured_at, body size) as an entry.
fn entry_of(row: &tokio_postgres::Row) -> Entry {
    Entry {
        node: row.get(0),
        captured_at: row.get(1),
        location: Location::Row {
            bytes: row.get::<_, i64>(2).max(0) as u64,
        },
    }
}

fn writer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("patrol {} on {host}", env!("CARGO_PKG_VERSION"))
}

/// A stable 64-bit key for the advisory lock that serialises migrations of one schema.
fn lock_key(schema: &str) -> i64 {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("patrol archive schema {schema}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction under an advisory lock; refuses a
/// schema newer than this build.
async fn migrate(client: &mut tokio_postgres::Client, schema: &str, endpoint: &str) -> Result<()> {
    let fail = |message: String| Error::Source {
        endpoint: endpoint.to_string(),
        message,
    };
    let pg = |e: tokio_postgres::Error| fail(describe_pg(&e));
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("select pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await
        .map_err(pg)?;
    tx.batch_execute(&format!(
        "set local client_min_messages = warning;
         create schema if not exists {schema};
         create table if not exists {schema}.migrations (
             version integer primary key,
             about text not null,
             applied_at timestamptz not null default now()
         );"
    ))
    .await
    .map_err(|e| fail(format!("creating schema `{schema}`: {}", describe_pg(&e))))?;
    let current: i32 = tx
        .query_one(
            &format!("select coalesce(max(version), 0) from {schema}.migrations"),
            &[],
        )
        .await
        .map_err(pg)?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(fail(format!(
            "the archive's schema `{schema}` is at version {current}, newer than this patrol knows ({SCHEMA_VERSION}); upgrade patrol"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(&m.sql.replace("{s}", schema))
            .await
            .map_err(|e| {
                fail(format!(
                    "migrating schema `{schema}` to version {} ({}): {}",
                    m.version,
                    m.about,
                    describe_pg(&e)
                ))
            })?;
        tx.execute(
            &format!("insert into {schema}.migrations (version, about) values ($1, $2)"),
            &[&m.version, &m.about],
        )
        .await
        .map_err(pg)?;
        if current > 0 {
            tracing::info!("{endpoint}: schema migrated to version {}", m.version);
        }
    }
    tx.commit().await.map_err(pg)?;
    Ok(())
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

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.about);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
        assert_ne!(lock_key("patrol"), lock_key("site_a"));
    }
}
