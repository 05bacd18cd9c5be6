//! Rechecking an open finding its rule no longer raises: can its evidence be read at the window's
//! newest capture, and what does it read now? The ledger resolves a finding only when the answer
//! is [`Recheck::Gone`]; evidence that cannot be read (a dark node, a failed source, a series
//! with no reading) keeps it open. It lives with the rules because how a finding is rechecked is
//! its kind's to declare ([`KindSpec::recheck_by`]), so nothing here names a kind.

use crate::history::Window;
use crate::ledger::Recheck;
use crate::model::Finding;
use crate::rules::Evaluation;
use crate::rules::kinds::{self, KindSpec, RecheckBy};
use crate::rules::resolution::{Verdict, verdict};

/// Can an open finding's evidence be read at the window's newest capture, and what does it say?
/// The verdict is [`crate::rules::resolution::verdict`]'s; this maps it to what the ledger keeps.
pub fn recheck(evaluation: &Evaluation, window: &Window, f: &Finding) -> Recheck {
    match verdict(evaluation, window, f) {
        Verdict::Healthy { now } => Recheck::Gone { now },
        Verdict::Unchecked { .. } => Recheck::CouldNotCheck,
        Verdict::Holds => Recheck::Holds,
    }
}

/// How a finding's kind wants it rechecked; a kind the library no longer has (an old ledger
/// entry) is rechecked by its subject.
pub(crate) fn recheck_by(f: &Finding) -> RecheckBy {
    kinds::spec(&f.kind).map_or(RecheckBy::Subject, KindSpec::recheck_by)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::metrics::metric_unit;
    use crate::model::{Host, Severity, Snapshot, SourceStatus};
    use crate::units::fmt_value;
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
            context: Default::default(),
        }
    }

    fn now(r: Recheck) -> Option<Option<String>> {
        match r {
            Recheck::Gone { now } => Some(now),
            Recheck::CouldNotCheck | Recheck::Holds => None,
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
