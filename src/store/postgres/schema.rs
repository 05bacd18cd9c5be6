//! The archive's tables and how they grow: numbered migrations applied once each, in one
//! transaction under an advisory lock per schema, so collectors that start together take turns
//! and a schema newer than this build is refused rather than written.

use crate::error::{Error, Result, describe_pg};

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

/// A stable 64-bit key for the advisory lock that serialises migrations of one schema.
fn lock_key(schema: &str) -> i64 {
    crate::fnv::fnv1a(format!("patrol archive schema {schema}").as_bytes()) as i64
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction under an advisory lock; refuses a
/// schema newer than this build.
pub(super) async fn migrate(
    client: &mut tokio_postgres::Client,
    schema: &str,
    endpoint: &str,
) -> Result<()> {
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

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.about);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
        assert_ne!(lock_key("patrol"), lock_key("site_a"));
    }
}
