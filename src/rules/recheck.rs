//! Rechecking an open finding its rule no longer raises: can its evidence be read at the window's
//! newest capture, and what does it read now? The ledger resolves a finding only when the answer
//! is [`Recheck::Gone`]; evidence that cannot be read (a dark node, a failed source, a series
//! with no reading) keeps it open. It lives with the rules because how a finding is rechecked is
//! its kind's to declare ([`KindSpec::recheck_by`]), so nothing here names a kind.

use crate::history::Window;
use crate::history::metrics::{KNOWN_METRICS, metric_unit};
use crate::ledger::Recheck;
use crate::model::{Finding, Snapshot};
use crate::rules::Evaluation;
use crate::rules::kinds::{self, KindSpec, RecheckBy};
use crate::units::fmt_value;

/// Can an open finding's evidence be read at the window's newest capture, and what does it say?
pub fn recheck(evaluation: &Evaluation, window: &Window, f: &Finding) -> Recheck {
    if evaluation.could_not_check(f) {
        return Recheck::CouldNotCheck;
    }
    // A kind the library no longer has (an old ledger entry) is rechecked by its subject.
    let by = kinds::spec(&f.kind).map_or(RecheckBy::Subject, KindSpec::recheck_by);
    let mut now_text = None;
    for node in &f.nodes {
        let Some(latest) = window.node(node).and_then(|n| n.latest()) else {
            return Recheck::CouldNotCheck;
        };
        if latest.is_dark() {
            return Recheck::CouldNotCheck;
        }
        if by == RecheckBy::NodesAnswering {
            continue;
        }
        match subject_now(window, node, latest, f) {
            Reading::Now(text) => now_text = Some(text),
            Reading::ByTheRule => {}
            Reading::Missing => return Recheck::CouldNotCheck,
        }
    }
    Recheck::Gone { now: now_text }
}

/// What a finding's subject reads on one node at the newest capture.
enum Reading {
    /// Read: what it says now.
    Now(String),
    /// Not one series (a missing key, a config setting, a log pattern): the rule alone judges it,
    /// and it marks such a finding unchecked when it cannot read the evidence, so no finding
    /// means gone.
    ByTheRule,
    /// The evidence is not in the newest capture.
    Missing,
}

fn subject_now(window: &Window, node: &str, latest: &Snapshot, f: &Finding) -> Reading {
    // Reachability is about sources, not series: a node answers again when any source does, a
    // source when it does.
    if f.entity == "node" {
        return Reading::Now(format!(
            "{} of {} sources answering",
            latest.sources.iter().filter(|s| s.ok).count(),
            latest.sources.len()
        ));
    }
    if let Some(source) = f.entity.strip_prefix("source:") {
        return match latest.source(source) {
            Some(s) if s.ok => Reading::Now(format!("`{source}` answering")),
            _ => Reading::Missing,
        };
    }
    if !KNOWN_METRICS.contains(&f.metric.as_str()) {
        return Reading::ByTheRule;
    }
    match window.current(node, &f.entity, &f.metric) {
        Some(Some(v)) => {
            let (d, s) = metric_unit(&f.metric);
            Reading::Now(fmt_value(v, d, s))
        }
        Some(None) => Reading::Now("null".to_string()),
        None => Reading::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Host, Severity, SourceStatus};
    use chrono::{TimeZone, Utc};

    fn capture(node: &str, minute: i64, sources: &[(&str, bool)]) -> Snapshot {
        let at =
            Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute);
        let mut s = Snapshot::new("t", node, at);
        s.host = Some(Host {
            uptime_s: Some(10_000),
            mem_available_bytes: Some(2_000_000_000),
            ..Host::default()
        });
        s.sources = sources
            .iter()
            .map(|(name, ok)| {
                if *ok {
                    SourceStatus::ok(name, 1)
                } else {
                    SourceStatus::failed(name, "refused", 1)
                }
            })
            .collect();
        s
    }

    fn window(captures: Vec<Snapshot>) -> Window {
        let mut w = Window::new(chrono::Duration::hours(24));
        for c in captures {
            w.push(c);
        }
        w
    }

    fn finding(kind: &str, nodes: &[&str], entity: &str, metric: &str) -> Finding {
        Finding {
            rule_id: "r".into(),
            kind: kind.into(),
            severity: Severity::Warning,
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            scope: None,
            entity: entity.into(),
            metric: metric.into(),
            observed_at: Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap(),
            title: "t".into(),
            evidence: String::new(),
            recommendation: String::new(),
            values: Default::default(),
            event: false,
            event_id: None,
            lifecycle: Default::default(),
        }
    }

    fn now(r: Recheck) -> Option<Option<String>> {
        match r {
            Recheck::Gone { now } => Some(now),
            Recheck::CouldNotCheck => None,
        }
    }

    #[test]
    fn a_series_reads_its_value_now() {
        let w = window(vec![capture("vk01", 0, &[("host", true)])]);
        let f = finding("threshold", &["vk01"], "host", "mem_available_bytes");
        let got = now(recheck(&Evaluation::default(), &w, &f));
        assert_eq!(
            got,
            Some(Some(fmt_value(
                2e9,
                metric_unit("mem_available_bytes").0,
                metric_unit("mem_available_bytes").1
            )))
        );
    }

    #[test]
    fn a_series_without_a_reading_or_a_missing_node_cannot_be_checked() {
        let w = window(vec![capture("vk01", 0, &[("host", true)])]);
        let f = finding("threshold", &["vk01"], "container:gone", "mem_usage_bytes");
        assert_eq!(now(recheck(&Evaluation::default(), &w, &f)), None);
        let f = finding("threshold", &["vk02"], "host", "mem_available_bytes");
        assert_eq!(now(recheck(&Evaluation::default(), &w, &f)), None);
    }

    #[test]
    fn a_dark_node_cannot_be_checked_whatever_the_kind() {
        let w = window(vec![capture(
            "vk01",
            0,
            &[("host", false), ("docker", false)],
        )]);
        for kind in ["threshold", "drift-across-nodes", "missing-key"] {
            let f = finding(kind, &["vk01"], "host", "mem_available_bytes");
            assert_eq!(now(recheck(&Evaluation::default(), &w, &f)), None, "{kind}");
        }
    }

    #[test]
    fn reachability_is_read_from_the_sources() {
        let w = window(vec![capture(
            "vk01",
            0,
            &[("host", true), ("docker", false)],
        )]);
        let f = finding("unreachable", &["vk01"], "node", "");
        assert_eq!(
            now(recheck(&Evaluation::default(), &w, &f)),
            Some(Some("1 of 2 sources answering".into()))
        );
        let f = finding("unreachable", &["vk01"], "source:host", "");
        assert_eq!(
            now(recheck(&Evaluation::default(), &w, &f)),
            Some(Some("`host` answering".into()))
        );
        let f = finding("unreachable", &["vk01"], "source:docker", "");
        assert_eq!(now(recheck(&Evaluation::default(), &w, &f)), None);
    }

    #[test]
    fn a_kind_judged_by_its_nodes_answering_reads_no_series() {
        let w = window(vec![
            capture("vk01", 0, &[("host", true)]),
            capture("vk02", 0, &[("host", true)]),
        ]);
        let attribute_kind = kinds::KINDS
            .iter()
            .find(|k| k.recheck_by() == RecheckBy::NodesAnswering)
            .expect("a kind compares attributes across nodes");
        // Its subject has no series on either node; answering nodes are enough.
        let f = finding(
            attribute_kind.name,
            &["vk01", "vk02"],
            "container:x",
            "image",
        );
        assert_eq!(now(recheck(&Evaluation::default(), &w, &f)), Some(None));
        let f = finding(
            attribute_kind.name,
            &["vk01", "vk03"],
            "container:x",
            "image",
        );
        assert_eq!(now(recheck(&Evaluation::default(), &w, &f)), None);
    }

    #[test]
    fn what_the_rule_alone_judges_is_gone_when_not_raised() {
        let w = window(vec![capture("vk01", 0, &[("host", true)])]);
        let f = finding("missing-key", &["vk01"], "redis:cache", "key:session");
        assert_eq!(now(recheck(&Evaluation::default(), &w, &f)), Some(None));
    }

    #[test]
    fn an_unchecked_subject_stays_open() {
        let w = window(vec![capture("vk01", 0, &[("host", true)])]);
        let f = finding("threshold", &["vk01"], "host", "mem_available_bytes");
        let mut evaluation = Evaluation::default();
        evaluation.unchecked.insert(f.key());
        assert_eq!(now(recheck(&evaluation, &w, &f)), None);
    }
}
