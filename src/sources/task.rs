//! One source task: a source's settings and what the previous capture left for its node go in,
//! its answer comes out. The dispatch takes each source apart; a source whose asking takes more
//! than a call (a log window, a log position, a client that trusts its CA) has a function of its
//! own.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    NodeState, Part, docker, http, local, log_widening, postgres, prometheus, rabbitmq, redis, ssh,
};
use crate::config::{DockerEndpoint, LogSettings, Secret, Source, SshSettings};
use crate::tls::TlsOptions;

/// Everything a source task needs, owned (tasks outlive the borrow of the config).
#[derive(Clone)]
pub(super) struct TaskContext {
    /// What the previous run left for this node.
    pub(super) node: NodeState,
    pub(super) logs: LogSettings,
    pub(super) since: DateTime<Utc>,
    /// Start of the PostgreSQL server log's window.
    pub(super) pg_since: DateTime<Utc>,
    pub(super) until: DateTime<Utc>,
    /// Shared by the HTTP sources without a CA file of their own (connections are pooled).
    pub(super) http: Result<reqwest::Client, String>,
}

pub(super) async fn collect_source(source: Source, ctx: TaskContext) -> Result<Part, String> {
    match source {
        Source::Host => collect_host().await,
        Source::Docker {
            endpoint,
            logs,
            ssh,
            remote_socket,
            timeout,
            size_every,
        } => {
            let tunnel = ssh.as_ref().map(|s| (s, remote_socket.as_path()));
            collect_docker(&ctx, &endpoint, tunnel, logs, size_every, timeout).await
        }
        Source::Http {
            name,
            url,
            timeout,
            tls,
        } => collect_http(&ctx, &name, &url, timeout, &tls).await,
        Source::Postgres {
            name,
            host,
            port,
            user,
            database,
            password,
            log,
            timeout,
            sslmode,
            tls,
        } => {
            let target = postgres::Target {
                name: &name,
                host: &host,
                port,
                user: &user,
                database: &database,
                password: password_of(password.as_ref(), "postgres", &name)?,
                log,
                sslmode,
                tls: &tls,
            };
            collect_postgres(&ctx, &target, timeout).await
        }
        Source::Redis {
            name,
            host,
            port,
            password,
            watch,
            timeout,
        } => {
            let password = password_of(password.as_ref(), "redis", &name)?;
            redis::collect(&name, &host, port, password, &watch, timeout)
                .await
                .map(Part::Redis)
        }
        Source::Prometheus {
            url,
            instance,
            gpu,
            queries,
            timeout,
            tls,
        } => {
            let instance = instance.as_deref();
            collect_prometheus(&ctx, &url, instance, gpu, &queries, timeout, &tls).await
        }
        Source::Ssh {
            settings, commands, ..
        } => ssh::probe(&settings, &commands).await.map(Part::Ssh),
        Source::RabbitMq {
            name,
            url,
            user,
            password,
            timeout,
            tls,
        } => {
            let password = password_of(password.as_ref(), "rabbitmq", &name)?;
            let client = client_for(&ctx, &tls).map_err(|e| format!("{url}: {e}"))?;
            rabbitmq::collect(&client, &name, &url, &user, password, timeout)
                .await
                .map(Part::RabbitMq)
        }
    }
}

/// /proc is read on a blocking thread: it is files, not sockets.
async fn collect_host() -> Result<Part, String> {
    tokio::task::spawn_blocking(|| local::host(Path::new("/proc")))
        .await
        .map_err(|e| format!("host collector stopped: {e}"))?
        .map(Part::Host)
}

/// One engine, with the node's log window (reaching back by its clock offset) and what the
/// previous capture of the engine left.
async fn collect_docker(
    ctx: &TaskContext,
    endpoint: &DockerEndpoint,
    tunnel: Option<(&SshSettings, &Path)>,
    logs: bool,
    size_every: Duration,
    timeout: Duration,
) -> Result<Part, String> {
    let window = logs.then_some(docker::LogWindow {
        since: ctx.since,
        until: ctx.until,
        widen: log_widening(ctx.node.clock_offset_ms),
    });
    let plan = docker::Plan {
        logs: window,
        settings: &ctx.logs,
        size_every,
        memory: &ctx.node.docker,
        timeout,
        now: ctx.until,
        events_since: ctx.since,
    };
    docker::collect(endpoint, tunnel, &plan)
        .await
        .map(Part::Docker)
}

async fn collect_http(
    ctx: &TaskContext,
    name: &str,
    url: &str,
    timeout: Duration,
    tls: &TlsOptions,
) -> Result<Part, String> {
    let client = client_for(ctx, tls).map_err(|e| format!("{url}: {e}"))?;
    Ok(Part::Endpoint(
        http::probe(&client, name, url, timeout).await,
    ))
}

/// One server, its log read on from where the previous capture of this node left it.
async fn collect_postgres(
    ctx: &TaskContext,
    target: &postgres::Target<'_>,
    timeout: Duration,
) -> Result<Part, String> {
    let previous = ctx.node.pg_log.get(target.name);
    postgres::collect(
        target,
        previous,
        (ctx.pg_since, ctx.until),
        &ctx.logs,
        timeout,
    )
    .await
    .map(Part::Postgres)
}

/// node-exporter's view of the node (`instance`), its GPUs and the source's own queries.
async fn collect_prometheus(
    ctx: &TaskContext,
    url: &str,
    instance: Option<&str>,
    gpu: bool,
    queries: &BTreeMap<String, String>,
    timeout: Duration,
    tls: &TlsOptions,
) -> Result<Part, String> {
    let client = client_for(ctx, tls).map_err(|e| format!("{url}: {e}"))?;
    prometheus::collect(&client, url, instance, gpu, queries, timeout)
        .await
        .map(Part::Prometheus)
}

/// The fleet's shared HTTP client, or one of its own for a source that trusts a private CA.
fn client_for(ctx: &TaskContext, tls: &TlsOptions) -> Result<reqwest::Client, String> {
    match (&ctx.http, &tls.ca_file) {
        (Ok(shared), None) => Ok(shared.clone()),
        (Err(e), None) => Err(e.clone()),
        (_, Some(_)) => crate::tls::http_client(reqwest::Client::builder(), tls),
    }
}

/// A source's password, read from its variable or file now; the error names the source.
fn password_of(secret: Option<&Secret>, kind: &str, name: &str) -> Result<Option<String>, String> {
    secret
        .map(|s| s.resolve())
        .transpose()
        .map_err(|e| format!("{kind}:{name}: password: {e}"))
}
