//! The services a node runs that patrol asks over the network: Prometheus, PostgreSQL, Redis,
//! RabbitMQ and HTTP endpoints, one reader per table. Their URLs are checked at load, their
//! passwords only named.

use std::collections::BTreeMap;

use crate::tomlread::{Ctx, Fields};

use super::nodes::{NodeScope, Source};
use super::values::{count_in, http_url, port, secret, sslmode, tls_options};

#[derive(Debug, Clone, PartialEq)]
pub struct WatchKey {
    pub db: u32,
    pub key: String,
    pub fields: Vec<String>,
}

/// `[prometheus]`: the server, the node's `instance` label there, and the node's own queries.
pub(super) fn prometheus(p: &mut Fields, ctx: &mut Ctx, node: &NodeScope) -> Option<Source> {
    let url = p
        .string(ctx, "url", true)
        .filter(|u| http_url(ctx, &p.what, "url", u));
    let instance = p.string(ctx, "instance", false).map(|s| s.into_inner());
    let gpu = p.boolean(ctx, "gpu").unwrap_or(false);
    let mut queries = BTreeMap::new();
    let what = format!("{} [prometheus.queries]", node.what);
    if let Some(mut q) = p.table(ctx, "queries", &what) {
        for key in q.keys() {
            if let Some(v) = q.string(ctx, &key, false) {
                queries.insert(key, v.into_inner());
            }
        }
        q.finish(ctx);
    }
    let timeout = node.timeout(p, ctx);
    let tls = tls_options(p, ctx, node.base);
    Some(Source::Prometheus {
        url: url?.into_inner().trim_end_matches('/').to_string(),
        instance,
        gpu,
        queries,
        timeout,
        tls,
    })
}

/// One `[[postgres]]`: a server reached as `user` on `database`, its TLS as libpq's `sslmode`.
pub(super) fn postgres(p: &mut Fields, ctx: &mut Ctx, node: &mut NodeScope) -> Option<Source> {
    let name = node.source_name(p, ctx, "postgres");
    let host = p
        .string(ctx, "host", false)
        .map(|s| s.into_inner())
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = port(p, ctx, "port").unwrap_or(5432);
    let user = p
        .string(ctx, "user", false)
        .map(|s| s.into_inner())
        .unwrap_or_else(|| "postgres".into());
    let database = p
        .string(ctx, "database", false)
        .map(|s| s.into_inner())
        .unwrap_or_else(|| "postgres".into());
    let password = secret(p, ctx, node.base);
    let log = p.boolean(ctx, "log").unwrap_or(true);
    let timeout = node.timeout(p, ctx);
    let sslmode = sslmode(p, ctx);
    let tls = tls_options(p, ctx, node.base);
    Some(Source::Postgres {
        name: name?.into_inner(),
        host,
        port,
        user,
        database,
        password,
        log,
        timeout,
        sslmode,
        tls,
    })
}

/// One `[[redis]]`, with the keys it watches.
pub(super) fn redis(r: &mut Fields, ctx: &mut Ctx, node: &mut NodeScope) -> Option<Source> {
    let name = node.source_name(r, ctx, "redis");
    let host = r
        .string(ctx, "host", false)
        .map(|s| s.into_inner())
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = port(r, ctx, "port").unwrap_or(6379);
    let password = secret(r, ctx, node.base);
    let watch = watch_keys(r, ctx, &node.what);
    let timeout = node.timeout(r, ctx);
    Some(Source::Redis {
        name: name?.into_inner(),
        host,
        port,
        password,
        watch,
        timeout,
    })
}

/// `[[redis.watch]]`: a key in a database, and the hash fields read from it.
fn watch_keys(r: &mut Fields, ctx: &mut Ctx, node_what: &str) -> Vec<WatchKey> {
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
    watch
}

/// One `[[rabbitmq]]`: its HTTP URL and user.
pub(super) fn rabbitmq(r: &mut Fields, ctx: &mut Ctx, node: &mut NodeScope) -> Option<Source> {
    let name = node.source_name(r, ctx, "rabbitmq");
    let url = r
        .string(ctx, "url", true)
        .filter(|u| http_url(ctx, &r.what, "url", u));
    let user = r
        .string(ctx, "user", false)
        .map(|s| s.into_inner())
        .unwrap_or_else(|| "guest".into());
    let password = secret(r, ctx, node.base);
    let timeout = node.timeout(r, ctx);
    let tls = tls_options(r, ctx, node.base);
    Some(Source::RabbitMq {
        name: name?.into_inner(),
        url: url?.into_inner().trim_end_matches('/').to_string(),
        user,
        password,
        timeout,
        tls,
    })
}

/// One `[[http]]`: an endpoint asked over HTTP(S).
pub(super) fn http(h: &mut Fields, ctx: &mut Ctx, node: &mut NodeScope) -> Option<Source> {
    let name = node.source_name(h, ctx, "http");
    let url = h
        .string(ctx, "url", true)
        .filter(|u| http_url(ctx, &h.what, "url", u));
    let timeout = node.timeout(h, ctx);
    let tls = tls_options(h, ctx, node.base);
    Some(Source::Http {
        name: name?.into_inner(),
        url: url?.into_inner(),
        timeout,
        tls,
    })
}
