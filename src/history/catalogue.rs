//! The metric catalogue: every metric name the history layer emits, once, with the entity it is
//! read under, its unit, how it reads in a sentence, whether the weekly digest aggregates it and
//! what it means. Rule validation, finding text, value formatting and the digest all read this
//! one table, so a metric added to [`super::metrics::readings`] without an entry here is caught
//! by `tests/catalogue.rs` instead of printing with a guessed unit.

use crate::units::Dimension::{self, Bytes, Plain, Seconds};

/// Metrics that only count up (until their container restarts or their statistics are reset):
/// what matters is how fast they count now, and a level never comes back down to undo growth.
pub const COUNTERS: &[&str] = &[
    "blkio_write_bytes",
    "rows_inserted_total",
    "publish_total",
    "deliver_total",
];

/// One metric of the catalogue.
pub struct MetricDef {
    /// The name rules select by (`mem_usage_bytes`).
    pub name: &'static str,
    /// The entity it is read under: the part before `:` (`disk` for `disk:/`), or the whole
    /// entity when it has no name (`host`, `docker`).
    pub entity: &'static str,
    /// How values and thresholds are parsed and printed.
    pub dimension: Dimension,
    /// Appended to a plain number when printed (`%`, ` ms`).
    pub suffix: &'static str,
    /// How it reads in a sentence ("memory").
    pub label: &'static str,
    /// Whether the weekly digest aggregates it (only these: a week of a big fleet stays small).
    pub digest: bool,
    /// What the number is, in one line.
    pub meaning: &'static str,
}

const fn m(
    name: &'static str,
    entity: &'static str,
    (dimension, suffix): (Dimension, &'static str),
    label: &'static str,
    digest: bool,
    meaning: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        entity,
        dimension,
        suffix,
        label,
        digest,
        meaning,
    }
}

const BYTES: (Dimension, &str) = (Bytes, "");
const SECONDS: (Dimension, &str) = (Seconds, "");
const COUNT: (Dimension, &str) = (Plain, "");
const PCT: (Dimension, &str) = (Plain, "%");
const MS: (Dimension, &str) = (Plain, " ms");
const PER_S: (Dimension, &str) = (Plain, "/s");
const DIGEST: bool = true;
const NO_DIGEST: bool = false;

/// Every metric. The order matters: "did you mean" suggests the first of equally close names.
#[rustfmt::skip]
pub const METRICS: &[MetricDef] = &[
    m("uptime_s", "host", SECONDS, "uptime", NO_DIGEST, "time since boot"),
    m("mem_total_bytes", "host", BYTES, "physical memory", NO_DIGEST, "physical memory"),
    m("mem_available_bytes", "host", BYTES, "available memory", DIGEST, "memory available to new work (MemAvailable)"),
    m("mem_free_bytes", "host", BYTES, "free memory", NO_DIGEST, "memory not used at all (MemFree)"),
    m("swap_used_bytes", "host", BYTES, "swap in use", DIGEST, "swap in use"),
    m("swap_cached_bytes", "host", BYTES, "swap cache", NO_DIGEST, "swap also held in memory (SwapCached)"),
    m("cpu_steal_pct", "host", PCT, "CPU steal", DIGEST, "percent of CPU time stolen by the hypervisor"),
    m("load1", "host", COUNT, "one-minute load average", NO_DIGEST, "one-minute load average"),
    m("clock_offset_ms", "host", MS, "clock offset", NO_DIGEST, "the node's clock less the capturing machine's (ssh nodes only)"),
    m("used_pct", "disk", PCT, "use", DIGEST, "percent of the filesystem used"),
    m("used_bytes", "disk", BYTES, "used space", DIGEST, "space used on the filesystem"),
    m("size_bytes", "disk", BYTES, "size", DIGEST, "size of the filesystem"),
    m("util_pct", "gpu", PCT, "utilisation", DIGEST, "GPU utilisation"),
    m("mem_used_pct", "gpu", PCT, "GPU memory use", DIGEST, "percent of GPU memory used"),
    m("mem_used_bytes", "gpu", BYTES, "GPU memory", NO_DIGEST, "GPU memory used"),
    m("temp_c", "gpu", (Plain, "°C"), "temperature", DIGEST, "GPU temperature"),
    m("fan_pct", "gpu", PCT, "fan speed", NO_DIGEST, "GPU fan speed, when the GPU reports one"),
    m("running", "container", COUNT, "running state", NO_DIGEST, "1 when the container runs, else 0"),
    m("mem_usage_bytes", "container", BYTES, "memory", DIGEST, "memory use less reclaimable page cache, as `docker stats` shows it"),
    m("cpu_cores", "container", (Plain, " cores"), "CPU", NO_DIGEST, "CPU use as a rate: 1.0 = one core busy"),
    m("restart_count", "container", COUNT, "restart count", DIGEST, "restarts Docker counted"),
    m("size_rw_bytes", "container", BYTES, "writable layer", NO_DIGEST, "size of the writable layer"),
    m("size_root_fs_bytes", "container", BYTES, "root filesystem size", NO_DIGEST, "writable layer plus image"),
    m("mem_limit_bytes", "container", BYTES, "memory limit", NO_DIGEST, "memory limit, when one is set"),
    m("blkio_write_bytes", "container", BYTES, "block-device writes", NO_DIGEST, "bytes written to block devices since start"),
    m("active_connections", "postgres", COUNT, "active connections", NO_DIGEST, "connections to the server"),
    m("max_connections", "postgres", COUNT, "connection limit", NO_DIGEST, "the server's `max_connections` setting, when it is read"),
    m("rows_inserted_total", "postgres", COUNT, "rows inserted", NO_DIGEST, "rows inserted since statistics reset"),
    m("db_size_bytes", "postgres", BYTES, "size", NO_DIGEST, "size of one database"),
    m("used_memory_bytes", "redis", BYTES, "memory", NO_DIGEST, "memory Redis allocated"),
    m("keys", "redis", COUNT, "keys", NO_DIGEST, "keys in one database"),
    m("messages_ready", "queue", COUNT, "messages ready", NO_DIGEST, "messages waiting for a consumer"),
    m("messages_unacked", "queue", COUNT, "unacknowledged messages", NO_DIGEST, "messages delivered, not yet acknowledged"),
    m("consumers", "queue", COUNT, "consumers", NO_DIGEST, "consumers attached"),
    m("publish_rate", "queue", PER_S, "publish rate", NO_DIGEST, "messages published per second"),
    m("deliver_rate", "queue", PER_S, "delivery rate", NO_DIGEST, "messages delivered per second"),
    m("redeliver_rate", "queue", PER_S, "redelivery rate", NO_DIGEST, "messages redelivered per second"),
    m("publish_total", "queue", COUNT, "messages published", NO_DIGEST, "messages published since the queue was declared"),
    m("deliver_total", "queue", COUNT, "messages delivered", NO_DIGEST, "messages delivered since the queue was declared"),
    m("status", "endpoint", COUNT, "HTTP status", NO_DIGEST, "HTTP status; 0 when nothing answered"),
    m("latency_ms", "endpoint", MS, "latency", NO_DIGEST, "time to the response"),
    m("lines_total", "log", COUNT, "lines logged", NO_DIGEST, "lines read from the stream in the capture's window"),
    m("unread_s", "log", SECONDS, "unread end of the window", NO_DIGEST, "seconds of the window a read bound left unread (0 when read to the end)"),
    m("pending", "workqueue", COUNT, "pending", NO_DIGEST, "items waiting"),
    m("processing_workers", "workqueue", COUNT, "workers processing", NO_DIGEST, "workers busy right now"),
    m("completed", "workqueue", COUNT, "completed", NO_DIGEST, "items completed"),
    m("failed", "workqueue", COUNT, "failed", NO_DIGEST, "items failed"),
    m("value", "query", COUNT, "value", NO_DIGEST, "the result of a user-defined Prometheus query"),
    m("healthy", "container", COUNT, "health", NO_DIGEST, "1 healthy, 0 unhealthy; only with a health check"),
    m("failing_streak", "container", COUNT, "failed health checks in a row", NO_DIGEST, "failed health checks in a row"),
    m("oom_killed", "container", COUNT, "OOM kill", NO_DIGEST, "1 when the last exit was an OOM kill, else 0"),
    m("oom_kills", "container", COUNT, "OOM kills", NO_DIGEST, "OOM kills the engine reported since the previous capture"),
    m("exits", "container", COUNT, "exits", NO_DIGEST, "exits the engine reported since the previous capture"),
    m("last_exit_code", "container", COUNT, "last exit code", NO_DIGEST, "exit code of the newest exit since the previous capture"),
    m("count", "logtpl", COUNT, "lines since the previous capture", NO_DIGEST, "lines of the template since the previous capture"),
    m("pid_max", "logtpl", COUNT, "highest PID", NO_DIGEST, "highest process id among the template's lines"),
    m("containers_running", "docker", COUNT, "running containers", NO_DIGEST, "containers in state running"),
];

/// The catalogue entry of a metric, if it has one.
pub fn lookup(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|d| d.name == name)
}

const fn names() -> [&'static str; METRICS.len()] {
    let mut out = [""; METRICS.len()];
    let mut i = 0;
    while i < METRICS.len() {
        out[i] = METRICS[i].name;
        i += 1;
    }
    out
}

/// The catalogue's names as a plain list, for validation and "did you mean".
pub const NAMES: &[&str] = &names();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for d in METRICS {
            assert!(seen.insert(d.name), "{} is catalogued twice", d.name);
        }
    }
}
