//! The archive in PostgreSQL, so several collectors (one per site) write to one database and
//! one reporter reads it. Each capture is one row holding the same zstd-compressed JSON a file
//! of the filesystem archive holds, keyed by fleet, node and time; the fleet's time zone and
//! interval sit in a table of their own. patrol creates and migrates its tables itself, under an
//! advisory lock, so collectors starting together do not race; writes are single upserts, so two
//! collectors writing at once (even the same capture) leave one whole row.

mod schema;
mod target;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

pub use schema::SCHEMA_VERSION;
use schema::migrate;
pub use target::PgTarget;

use super::{ArchiveMeta, Encoded, Entry, Location};
use crate::error::{Error, Result, describe_pg};
use crate::model::validate_node_name;

fn statement_timed_out(limit: Duration) -> String {
    format!("no answer within {} s (statement_timeout)", limit.as_secs())
}

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
