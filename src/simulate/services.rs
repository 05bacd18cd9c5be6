//! The service sections of a simulated capture: PostgreSQL, Redis, RabbitMQ and HTTP endpoints,
//! one function each, as their collectors would have read them at that moment.

use crate::model::{
    DatabaseSize, Endpoint, Postgres, Queue, RabbitMq, Redis, RedisDb, Snapshot, WatchedKey,
};

use super::logs::log_stream;
use super::scenario::{self, QueueSpec, WatchedKeySpec};
use super::sections::Capture;
use super::trajectory::{Clock, NodeState, u};

/// Connections, database sizes, rows inserted and the server's log.
pub(super) fn postgres(cap: &Capture, st: &mut NodeState, snap: &mut Snapshot) {
    let t = cap.t;
    for p in &cap.node.postgres {
        let name = format!("postgres:{}", p.name);
        let conns = st.sample(
            &format!("{name}.conns"),
            &p.active_connections,
            t,
            &cap.reboots,
        );
        let inserted = p
            .insert_rate
            .as_ref()
            .and_then(|r| st.total(&format!("{name}.inserted"), r, t, &[]));
        let mut dbs = Vec::new();
        for db in &p.databases {
            let size = st.sample(&format!("{name}.db.{}", db.name), &db.size, t, &[]);
            dbs.push(DatabaseSize {
                name: db.name.clone(),
                size_bytes: u(size),
            });
        }
        if cap.status(snap, &name, 30) && !cap.containers_down {
            snap.postgres.push(Postgres {
                name: p.name.clone(),
                port: p.port,
                version: p.version.clone(),
                active_connections: u(conns),
                databases: dbs,
                settings: p.settings.clone(),
                rows_inserted_total: inserted,
            });
            if !p.log.is_empty() {
                snap.logs.push(log_stream(
                    &p.log,
                    &name,
                    cap.window_start,
                    t,
                    cap.clock,
                    st.t0,
                ));
            }
        }
    }
}

/// Memory, keys per database and the watched keys with their missing fields.
pub(super) fn redis(cap: &Capture, st: &mut NodeState, snap: &mut Snapshot) {
    let t = cap.t;
    for r in &cap.node.redis {
        let name = format!("redis:{}", r.name);
        let used = r
            .used_memory
            .as_ref()
            .and_then(|tr| st.sample(&format!("{name}.used"), tr, t, &cap.reboots));
        let mut dbs = Vec::new();
        for (idx, keys) in &r.dbs {
            let k = st.sample(&format!("{name}.db{idx}"), keys, t, &cap.reboots);
            dbs.push(RedisDb {
                index: idx.parse().unwrap_or(0),
                keys: u(k),
            });
        }
        dbs.sort_by_key(|d| d.index);
        let watched = r
            .watched
            .iter()
            .map(|w| watched_key(w, cap.clock, t))
            .collect();
        if cap.status(snap, &name, 10) && !cap.containers_down {
            snap.redis.push(Redis {
                name: r.name.clone(),
                port: r.port,
                used_memory_bytes: u(used),
                dbs,
                watched,
            });
        }
    }
}

/// A watched key at `t`: absent during its `absent` spans, and missing the fields whose spans
/// are active.
fn watched_key(w: &WatchedKeySpec, clock: &Clock, t: f64) -> WatchedKey {
    let exists = !clock.active(&w.absent, t);
    WatchedKey {
        db: w.db,
        key: w.key.clone(),
        exists,
        kind: w.kind.clone(),
        fields_missing: if exists {
            w.fields
                .iter()
                .filter(|f| {
                    w.fields_absent
                        .get(*f)
                        .is_some_and(|spans| clock.active(spans, t))
                })
                .cloned()
                .collect()
        } else {
            w.fields.clone()
        },
    }
}

/// Each broker's queues; the broker answers even while the containers are down.
pub(super) fn rabbitmq(cap: &Capture, st: &mut NodeState, snap: &mut Snapshot) {
    for m in &cap.node.rabbitmq {
        let name = format!("rabbitmq:{}", m.name);
        let queues = m
            .queues
            .iter()
            .map(|q| queue(&name, q, cap.t, st))
            .collect();
        if cap.status(snap, &name, 60) {
            snap.rabbitmq.push(RabbitMq {
                name: m.name.clone(),
                version: m.version.clone(),
                queues,
            });
        }
    }
}

/// One queue of broker `source`: depths and consumers, running totals and their rates.
fn queue(source: &str, q: &QueueSpec, t: f64, st: &mut NodeState) -> Queue {
    let key = format!("{source}.{}", q.name);
    let ready = st.sample(&format!("{key}.ready"), &q.ready, t, &[]);
    let unacked = q
        .unacked
        .as_ref()
        .and_then(|tr| st.sample(&format!("{key}.unacked"), tr, t, &[]));
    let consumers = st.sample(&format!("{key}.consumers"), &q.consumers, t, &[]);
    let publish_total = q
        .publish_rate
        .as_ref()
        .and_then(|r| st.total(&format!("{key}.published"), r, t, &[]));
    let deliver_total = q
        .deliver_rate
        .as_ref()
        .and_then(|r| st.total(&format!("{key}.delivered"), r, t, &[]));
    let rate = |st: &mut NodeState, k: &str, tr: &Option<scenario::Plain>| {
        tr.as_ref()
            .and_then(|tr| st.sample(&format!("{key}.{k}#rate"), tr, t, &[]))
    };
    Queue {
        name: q.name.clone(),
        vhost: "/".into(),
        messages_ready: u(ready),
        messages_unacked: u(unacked).or(Some(0)),
        consumers: u(consumers),
        publish_total,
        deliver_total,
        redeliver_total: None,
        publish_rate: rate(st, "published", &q.publish_rate),
        deliver_rate: rate(st, "delivered", &q.deliver_rate),
        redeliver_rate: rate(st, "redelivered", &q.redeliver_rate),
    }
}

/// HTTP endpoints: a status of 0 is a refused connection, with no latency.
pub(super) fn endpoints(cap: &Capture, st: &mut NodeState, snap: &mut Snapshot) {
    let t = cap.t;
    for e in &cap.node.endpoint {
        let name = format!("http:{}", e.name);
        let code = st.sample(&format!("{name}.status"), &e.status, t, &[]);
        let latency = e
            .latency_ms
            .as_ref()
            .and_then(|tr| st.sample(&format!("{name}.latency"), tr, t, &[]));
        cap.status(snap, &name, latency.map(|l| l as u64).unwrap_or(5));
        let code = code.map(|c| c.round() as u16).unwrap_or(0);
        snap.endpoints.push(Endpoint {
            name: e.name.clone(),
            url: e.url.clone(),
            status: code,
            latency_ms: if code == 0 { None } else { latency },
            error: (code == 0).then(|| "connection refused".to_string()),
        });
    }
}
