//! How one reading reads in a sentence. "<subject> <label> is <value>" is right for a size or a
//! percentage, but a flag (health, an OOM kill, running) printed as 0 or 1, or a count of nothing
//! ("keys is 0"), reads as the encoding and not as what a person would write. The kinds that
//! state a reading (threshold, contradiction) take their clause from here, so a metric reads the
//! same in every finding.

use crate::history::metrics::{entity_label, metric_label, metric_unit};
use crate::units::fmt_value;

/// Metrics that are flags, 0 or 1: said in words, never as a number.
pub const FLAGS: &[&str] = &["healthy", "oom_killed", "running"];

pub fn is_flag(metric: &str) -> bool {
    FLAGS.contains(&metric)
}

/// Whether a reading already says all a limit next to it would: a flag, or a count against
/// the limit that only separates none from some ("above 0", "below 1").
pub fn says_itself(metric: &str, side: &str, limit: f64) -> bool {
    let (_, suffix) = metric_unit(metric);
    is_flag(metric)
        || (side == "above" && limit == 0.0)
        || (side == "below" && limit == 1.0 && suffix.is_empty())
}

/// A whole number of things: "no keys", "1 key", "3 keys".
fn things(value: f64, one: &str, many: &str) -> String {
    let n = crate::units::fmt_number(value, 0);
    if value == 0.0 {
        format!("no {many}")
    } else if n == "1" {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "3 times", "once".
fn times(value: f64) -> String {
    let n = crate::units::fmt_number(value, 0);
    if n == "1" {
        "once".to_string()
    } else {
        format!("{n} times")
    }
}

/// A clause as the start of a sentence: its first letter in upper case ("Disk `/` use is 93%").
pub fn sentence(clause: &str) -> String {
    let mut chars = clause.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The reading as a clause that starts with its subject: "Redis `keydb/db0` holds no keys",
/// "`x` was killed by the kernel's OOM killer on its last exit", "disk `/` use is 93%".
pub fn reading(entity: &str, metric: &str, value: f64) -> String {
    let subject = entity_label(entity);
    let (dim, suffix) = metric_unit(metric);
    let shown = fmt_value(value, dim, suffix);
    match metric {
        "healthy" if value >= 1.0 => format!("{subject} passes its health check"),
        "healthy" => format!("{subject} is unhealthy: its health check fails"),
        "oom_killed" if value > 0.0 => {
            format!("{subject} was killed by the kernel's OOM killer on its last exit")
        }
        "oom_killed" => format!("{subject} was not killed for memory on its last exit"),
        "running" if value >= 1.0 => format!("{subject} is running"),
        "running" => format!("{subject} is not running"),
        "containers_running" => {
            format!("Docker runs {}", things(value, "container", "containers"))
        }
        "keys" => format!("{subject} holds {}", things(value, "key", "keys")),
        "consumers" => format!("{subject} has {}", things(value, "consumer", "consumers")),
        "pending" => format!("{subject} has {} pending", things(value, "item", "items")),
        "processing_workers" => format!(
            "{subject} has {} processing",
            things(value, "worker", "workers")
        ),
        "status" if value == 0.0 => format!("{subject} did not answer"),
        "status" => format!("{subject} answered with HTTP status {shown}"),
        "count" => format!(
            "{subject} was logged {} since the previous capture",
            times(value)
        ),
        "restart_count" if value == 0.0 => format!("{subject} has not restarted"),
        "restart_count" => format!("{subject} has restarted {}", times(value)),
        "failing_streak" if value == 0.0 => format!("{subject} passed its last health check"),
        "failing_streak" => format!(
            "{subject} failed its health check {} in a row",
            times(value)
        ),
        "unread_s" if value == 0.0 => format!("{subject} was read to the end of its window"),
        "unread_s" => format!("{subject} was not read for the last {shown} of its window"),
        _ if entity == "host" => format!("the host's {} is {shown}", metric_label(metric)),
        _ => format!("{subject} {} is {shown}", metric_label(metric)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::catalogue::METRICS;

    /// An entity of the kind a metric is read under, for rendering it.
    fn entity_for(kind: &str) -> String {
        match kind {
            "host" | "docker" => kind.to_string(),
            "logtpl" => "logtpl:postgres:db|FATAL|FATAL:  database \"<*>\" does not exist".into(),
            "log" => "log:container:app".into(),
            other => format!("{other}:x"),
        }
    }

    /// Every catalogued metric, at none, one and some, reads without its encoding: no raw
    /// metric name, no flag said as a number.
    #[test]
    fn every_catalogued_metric_reads_in_words() {
        for d in METRICS {
            let entity = entity_for(d.entity);
            for v in [0.0, 1.0, 3.0] {
                let text = reading(&entity, d.name, v);
                let outside: String = text.split('`').step_by(2).collect::<Vec<_>>().join(" ");
                for bad in ["flag", "_bytes", "_pct", "_total", "_ms", "_s "] {
                    assert!(
                        !format!("{outside} ").contains(bad),
                        "{} at {v} reads `{text}`",
                        d.name
                    );
                }
                assert!(
                    !outside.contains(d.name) || !d.name.contains('_'),
                    "{} at {v} names its metric: `{text}`",
                    d.name
                );
                if is_flag(d.name) {
                    assert!(
                        !outside.chars().any(|c| c.is_ascii_digit()),
                        "flag {} at {v} is said as a number: `{text}`",
                        d.name
                    );
                }
            }
        }
    }

    #[test]
    fn the_test_bed_examples_read_as_sentences() {
        assert_eq!(
            reading("container:pt-unhealthy", "healthy", 0.0),
            "`pt-unhealthy` is unhealthy: its health check fails"
        );
        assert_eq!(
            reading("container:x", "oom_killed", 1.0),
            "`x` was killed by the kernel's OOM killer on its last exit"
        );
        assert_eq!(
            reading("redis:keydb/db0", "keys", 0.0),
            "Redis `keydb/db0` holds no keys"
        );
        assert_eq!(
            reading("container:app", "size_rw_bytes", 5.78e9),
            "`app` writable layer is 5.78GB"
        );
    }

    #[test]
    fn a_trivial_limit_is_not_repeated() {
        assert!(says_itself("keys", "below", 1.0));
        assert!(says_itself("oom_killed", "above", 0.0));
        assert!(says_itself("count", "above", 0.0));
        assert!(!says_itself("keys", "below", 10.0));
        assert!(!says_itself("used_pct", "below", 1.0));
        assert!(!says_itself("restart_count", "above", 2.0));
    }
}
