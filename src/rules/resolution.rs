//! Whether an open finding that its rule did not raise this time was seen healthy, or only not
//! seen. A reader who finds one false "Resolved" stops believing all of them, so a finding's
//! absence counts as health only when its rule looked at the same subject on fresh readings, in
//! the same derived states (production, idle) as when it was last seen bad, and could decide
//! (or, for a rule whose condition work only makes likelier, raised at rest and seen under work).
//! Everything else is "could not check": a node without a capture in this round, a dark
//! capture, the source behind the subject failing, a subject with no reading now, states that
//! changed, a rule that said it could not decide or that the condition still holds. The ledger
//! then wants several healthy verdicts in a row (`resolve_after`) before it resolves;
//! [`recheck`] hands it the verdict.

use std::collections::BTreeMap;

use crate::history::Window;
use crate::history::metrics::{KNOWN_METRICS, metric_unit};
use crate::ledger::Recheck;
use crate::model::Finding;
use crate::rules::Evaluation;
use crate::rules::kinds::{self, KindSpec, RecheckBy};
use crate::rules::states::StateTable;
use crate::units::fmt_value;

/// What one evaluation says about an open finding its rules did not raise.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Its rule looked at fresh readings of the subject and found no problem; `now` is what the
    /// subject reads now, when it is one series.
    Healthy { now: Option<String> },
    /// The subject could not be judged; `why` says what was missing.
    Unchecked { why: String },
    /// The rule says the condition still holds, with nothing new to report.
    Holds,
}

/// The derived states of `nodes` as a finding's context: "node/state" → value. Unknown states
/// are left out: a state that could not be read when the finding was raised constrains nothing.
pub fn context(states: &StateTable, nodes: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for node in nodes {
        for (state, value) in states.by_node.get(node).into_iter().flatten() {
            if let Some(v) = value {
                out.insert(format!("{node}/{state}"), v.clone());
            }
        }
    }
    out
}

/// How long a node must have been at rest before a finding is raised for the condition to have
/// arisen at rest, not with the work stopping (a service scaled to zero at night, a watchdog
/// that exits once frames stop, a worker that exits when its queue is empty all go bad at the
/// moment the work ends, and are fine under work by design).
const STEADY_REST_S: i64 = 2 * 3600;

/// The entries of a finding's `context` whose node has been at the state's `rest` value at every
/// capture of the [`STEADY_REST_S`] before its newest, with unbroken captures reaching that far.
pub fn steady_rest(
    ctx: &kinds::EvalContext,
    context: &BTreeMap<String, String>,
) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (key, value) in context {
        let (node, state) = key.split_once('/').unwrap_or(("", key));
        if ctx.states.rest.get(state) != Some(value) {
            continue;
        }
        let (Some(def), Some(n)) = (
            ctx.state_defs.iter().find(|d| d.id == state),
            ctx.window.node(node),
        ) else {
            continue;
        };
        let (Some(latest), Some(since)) = (n.latest_at(), n.contiguous_since()) else {
            continue;
        };
        let from = latest - STEADY_REST_S;
        let steady = since <= from
            && n.capture_times()
                .filter(|t| *t >= from && *t < latest)
                .all(|t| def.of_at(n, t).as_deref() == Some(value.as_str()));
        if steady {
            out.insert(key.clone());
        }
    }
    out
}

/// The source whose answer supplies an entity's readings, by the entity's name.
fn source_of(entity: &str) -> Option<String> {
    let (prefix, rest) = entity.split_once(':').unwrap_or((entity, ""));
    let head = rest.split('/').next().unwrap_or(rest);
    Some(match prefix {
        "container" | "containers" | "docker" => "docker".to_string(),
        "gpu" => "gpu".to_string(),
        "host" | "disk" => "host".to_string(),
        "postgres" => format!("postgres:{head}"),
        "redis" => format!("redis:{head}"),
        "queue" => format!("rabbitmq:{head}"),
        "endpoint" => format!("http:{head}"),
        _ => return None,
    })
}

/// The log an entity's readings come from: `log:<source>` for a log or one of its templates.
fn log_of(entity: &str) -> Option<String> {
    if let Some(rest) = entity.strip_prefix("logtpl:") {
        let source = rest.split('|').next().unwrap_or(rest);
        return Some(format!("log:{source}"));
    }
    entity.starts_with("log:").then(|| entity.to_string())
}

/// Judges an open finding that `evaluation` did not raise, at the window's newest round.
pub fn verdict(evaluation: &Evaluation, window: &Window, f: &Finding) -> Verdict {
    let unchecked = |why: String| Verdict::Unchecked { why };
    if evaluation.could_not_check(f) {
        return unchecked("its rule could not decide".into());
    }
    if evaluation.holds.contains(&f.key()) {
        return Verdict::Holds;
    }
    for (key, was) in &f.context {
        let (node, state) = key.split_once('/').unwrap_or(("", key));
        let now = evaluation.states.get(node, state);
        if f.lifecycle.worse_under_work && f.raised_in_steady_rest.contains(key) && now.is_some() {
            // Arisen at rest (the node had been at rest for hours), and work only makes it
            // likelier: healthy under work is healthy.
            continue;
        }
        if now != Some(was.as_str()) {
            return unchecked(format!(
                "raised with {state} {was}, {state} {} now",
                now.unwrap_or("unknown")
            ));
        }
    }
    let by = recheck_by(f);
    let round = window.latest_at().map(|t| t.timestamp());
    let mut now_text = None;
    for node in &f.nodes {
        let Some(n) = window.node(node) else {
            return unchecked(format!("no capture of {node} in the window"));
        };
        let Some(latest) = n.latest() else {
            return unchecked(format!("no capture of {node} in the window"));
        };
        if round.is_some_and(|r| !n.captured_in_round(r)) {
            return unchecked(format!("no capture of {node} in this round"));
        }
        if latest.is_dark() {
            return unchecked(format!("nothing on {node} answered"));
        }
        // A kind about the nodes together (versions compared across them) reads no one
        // subject: the nodes answering is all it needs.
        if by == RecheckBy::NodesAnswering {
            continue;
        }
        // Reachability is about sources, not series: a node answers again when any source
        // does, a source when it does.
        if f.entity == "node" {
            now_text = Some(format!(
                "{} of {} sources answering",
                latest.sources.iter().filter(|s| s.ok).count(),
                latest.sources.len()
            ));
            continue;
        }
        if let Some(source) = f.entity.strip_prefix("source:") {
            match latest.source(source) {
                Some(s) if s.ok => now_text = Some(format!("`{source}` answering")),
                _ => return unchecked(format!("`{source}` did not answer")),
            }
            continue;
        }
        if let Some(source) = source_of(&f.entity)
            && latest.source(&source).is_some_and(|s| !s.ok)
        {
            return unchecked(format!("`{source}` did not answer"));
        }
        let reads = log_of(&f.entity).unwrap_or_else(|| f.entity.clone());
        if n.entity_fresh(&reads) == Some(false) {
            return unchecked(format!("no reading of {reads} in the newest capture"));
        }
        // Findings that are not about one series (a missing key, a config setting, a log
        // pattern) are judged by their rule alone: it marks them unchecked when it cannot read
        // their evidence, or as holding when the condition is still there.
        if !KNOWN_METRICS.contains(&f.metric.as_str()) {
            continue;
        }
        match window.current(node, &f.entity, &f.metric) {
            // Growth is undone only when the level comes back to where it started.
            // A counter never comes back down: its rule alone judges whether it still counts
            // fast (it finds no growth once the counting slows).
            Some(Some(v))
                if f.kind == kinds::growth_rate::SPEC.name
                    && !crate::history::catalogue::COUNTERS.contains(&f.metric.as_str())
                    && kinds::growth_rate::still_holds(f, v) =>
            {
                return Verdict::Holds;
            }
            Some(Some(v)) => {
                let (d, s) = metric_unit(&f.metric);
                now_text = Some(fmt_value(v, d, s));
            }
            Some(None) => now_text = Some("null".to_string()),
            None => return unchecked(format!("no reading of {} now", f.metric)),
        }
    }
    Verdict::Healthy { now: now_text }
}

/// The verdict as the ledger keeps it: gone (with what the subject reads now), could not check,
/// or still holding. The ledger cannot depend on the rules, so it takes this answer, not the
/// verdict.
pub fn recheck(evaluation: &Evaluation, window: &Window, f: &Finding) -> Recheck {
    match group_verdict(evaluation, window, f) {
        Verdict::Healthy { now } => Recheck::Gone { now },
        Verdict::Unchecked { .. } => Recheck::CouldNotCheck,
        Verdict::Holds => Recheck::Holds,
    }
}

/// The verdict on a finding grouped across nodes is its members' together: it still holds if
/// any member holds, could not be checked if any could not be, and is healthy only when every
/// node it was about was seen healthy.
fn group_verdict(evaluation: &Evaluation, window: &Window, f: &Finding) -> Verdict {
    if f.members.is_empty() {
        return verdict(evaluation, window, f);
    }
    let mut unchecked = None;
    let mut now = Vec::new();
    for m in &f.members {
        let prefix = format!("{}/", m.node);
        // Judged in its own states, not its peers'.
        let mut alone = f.on_node(&m.node);
        alone.context.retain(|k, _| k.starts_with(&prefix));
        match verdict(evaluation, window, &alone) {
            Verdict::Holds => return Verdict::Holds,
            v @ Verdict::Unchecked { .. } => unchecked = Some(v),
            Verdict::Healthy { now: Some(text) } => now.push(format!("{} {text}", m.node)),
            Verdict::Healthy { now: None } => {}
        }
    }
    unchecked.unwrap_or(Verdict::Healthy {
        now: (!now.is_empty() && now.len() <= 5).then(|| now.join(", ")),
    })
}

/// How a finding's kind wants it rechecked; a kind the library no longer has (an old ledger
/// entry) is rechecked by its subject.
fn recheck_by(f: &Finding) -> RecheckBy {
    kinds::spec(&f.kind).map_or(RecheckBy::Subject, KindSpec::recheck_by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entity_is_read_from_its_source() {
        assert_eq!(source_of("container:db").as_deref(), Some("docker"));
        assert_eq!(source_of("gpu:0").as_deref(), Some("gpu"));
        assert_eq!(source_of("disk:/").as_deref(), Some("host"));
        assert_eq!(
            source_of("redis:keydb/db1/DB_Speed").as_deref(),
            Some("redis:keydb")
        );
        assert_eq!(
            source_of("queue:rabbitmq/dw").as_deref(),
            Some("rabbitmq:rabbitmq")
        );
        assert_eq!(
            source_of("postgres:database-server/postgres").as_deref(),
            Some("postgres:database-server")
        );
        assert_eq!(source_of("endpoint:ui").as_deref(), Some("http:ui"));
        assert_eq!(source_of("peers:processing"), None);
        assert_eq!(
            log_of("logtpl:container:dw|ERROR|boom <*>").as_deref(),
            Some("log:container:dw")
        );
        assert_eq!(log_of("container:dw"), None);
    }
}

/// The ledger's view of the verdict: what each kind of subject reads now, and when it cannot be read.
#[cfg(test)]
mod recheck_tests {
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
            raised_in_steady_rest: Default::default(),
            members: Vec::new(),
            facets: Vec::new(),
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
