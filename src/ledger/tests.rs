//! The ledger's lifecycle told through short runs of analyses: new, persisting, escalated,
//! acknowledged, resolved, forgotten.

use super::*;
use chrono::TimeZone;

fn t(m: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap() + Duration::minutes(m)
}

fn finding(rule: &str, event: bool) -> Finding {
    Finding {
        rule_id: rule.into(),
        kind: "threshold".into(),
        severity: Severity::Warning,
        nodes: vec!["vk01".into()],
        scope: None,
        entity: "gpu:0".into(),
        metric: "temp_c".into(),
        observed_at: t(0),
        title: "t".into(),
        evidence: "e".into(),
        recommendation: "r".into(),
        values: BTreeMap::new(),
        event,
        event_id: event.then(|| "1".into()),
        lifecycle: crate::model::Lifecycle {
            resolve_after: Some(1),
            ..Default::default()
        },
        context: BTreeMap::new(),
        raised_in_steady_rest: Default::default(),
        members: Vec::new(),
        facets: Vec::new(),
    }
}

fn with_rate(rate: f64) -> Finding {
    let mut f = finding("leak", false);
    f.lifecycle.headline = vec!["rate".into()];
    f.values.insert(
        "rate".into(),
        EvidenceValue {
            value: Some(rate),
            text: format!("+{rate}MB/h"),
        },
    );
    f
}

/// A ledger with one acknowledgement of rule `a`.
fn acknowledging(reason: &str, owner: &str, expires: &str) -> Ledger {
    let text = format!(
        "[[ack]]\nrule = \"a\"\nreason = \"{reason}\"\nowner = \"{owner}\"\nexpires = \"{expires}\"\n"
    );
    Ledger {
        acks: acks::Acks::parse(Path::new("acknowledged.toml"), &text, chrono_tz::UTC).unwrap(),
        ..Ledger::default()
    }
}

fn reasons(o: &Outcome) -> Vec<Reason> {
    o.reported.iter().map(|r| r.reason.clone()).collect()
}

#[test]
fn new_then_persisting_then_resolved_only_when_checkable() {
    let mut l = Ledger::default();
    let o = l.update(vec![finding("a", false)], t(0), |_| Recheck::CouldNotCheck);
    assert_eq!(reasons(&o), vec![Reason::New]);
    let o = l.update(vec![finding("a", false)], t(15), |_| Recheck::CouldNotCheck);
    assert!(o.is_empty(), "a persisting finding is not repeated");
    let o = l.update(vec![], t(30), |_| Recheck::CouldNotCheck);
    assert!(o.is_empty(), "missing data does not resolve");
    assert_eq!(o.still_open[0].unchecked_since, Some(t(30)));
    assert_eq!(l.worst_open(), Some(Severity::Warning));
    let o = l.update(vec![], t(45), |_| Recheck::Gone {
        now: Some("36°C".into()),
    });
    assert_eq!(o.resolved.len(), 1);
    assert_eq!(l.worst_open(), None);
    let o = l.update(vec![finding("a", false)], t(60), |_| Recheck::CouldNotCheck);
    assert_eq!(reasons(&o), vec![Reason::Reopened { after: t(45) }]);
}

#[test]
fn events_are_reported_once() {
    let mut l = Ledger::default();
    let o = l.update(vec![finding("r", true)], t(0), |_| Recheck::CouldNotCheck);
    assert_eq!(o.reported.len(), 1);
    let o = l.update(vec![finding("r", true)], t(15), |_| Recheck::CouldNotCheck);
    assert!(o.reported.is_empty() && o.resolved.is_empty());
}

#[test]
fn sustained_escalates_once() {
    let mut l = Ledger::default();
    let mut f = finding("null", false);
    f.lifecycle.escalate_after = Some(2);
    assert_eq!(
        reasons(&l.update(vec![f.clone()], t(0), |_| Recheck::CouldNotCheck)),
        vec![Reason::New]
    );
    let o = l.update(vec![f.clone()], t(15), |_| Recheck::CouldNotCheck);
    assert!(matches!(&reasons(&o)[..], [Reason::Escalated { why }] if why.contains("2 captures")));
    let o = l.update(vec![f.clone()], t(30), |_| Recheck::CouldNotCheck);
    assert!(o.reported.is_empty(), "escalated once, not every capture");
}

#[test]
fn a_worse_rate_escalates_a_small_change_does_not_and_unchanged_repeats_daily() {
    let mut l = Ledger::default();
    l.update(vec![with_rate(10.0)], t(0), |_| Recheck::CouldNotCheck);
    let o = l.update(vec![with_rate(11.0)], t(15), |_| Recheck::CouldNotCheck);
    assert!(o.reported.is_empty(), "10% is not material");
    let o = l.update(vec![with_rate(16.0)], t(30), |_| Recheck::CouldNotCheck);
    assert!(
        matches!(&reasons(&o)[..], [Reason::Escalated { why }] if why.contains("+10MB/h → +16MB/h"))
    );
    let o = l.update(vec![with_rate(12.0)], t(45), |_| Recheck::CouldNotCheck);
    assert!(
        matches!(&reasons(&o)[..], [Reason::Changed { .. }]),
        "{:?}",
        reasons(&o)
    );
    let o = l.update(vec![with_rate(12.0)], t(60 * 20), |_| {
        Recheck::CouldNotCheck
    });
    assert!(o.reported.is_empty());
    let o = l.update(vec![with_rate(12.0)], t(45 + 60 * 24), |_| {
        Recheck::CouldNotCheck
    });
    assert_eq!(
        reasons(&o),
        vec![Reason::Unchanged {
            since: t(45),
            nth: 4,
            then: vec![],
        }]
    );
}

#[test]
fn an_acknowledged_finding_waits_and_comes_back_when_it_expires() {
    let mut l = acknowledging("known, fix planned", "ana", "2026-02-19");
    let o = l.update(vec![finding("a", false)], t(0), |_| Recheck::CouldNotCheck);
    assert!(o.reported.is_empty());
    assert_eq!(o.acknowledged.len(), 1);
    assert_eq!(
        l.worst_open(),
        None,
        "acknowledged findings do not set the heading"
    );
    let o = l.update(vec![finding("a", false)], t(60 * 24), |_| {
        Recheck::CouldNotCheck
    });
    assert!(matches!(&reasons(&o)[..], [Reason::AckExpired { owner, .. }] if owner == "ana"));
    assert_eq!(l.worst_open(), Some(Severity::Warning));
}

#[test]
fn a_past_expiry_never_hides_a_finding() {
    let mut l = acknowledging("old", "bo", "2026-01-01");
    let o = l.update(vec![finding("a", false)], t(0), |_| Recheck::CouldNotCheck);
    assert_eq!(reasons(&o), vec![Reason::New]);
    assert!(o.acknowledged.is_empty());
}

#[test]
fn a_recommendation_is_tracked_through_its_verifying_rule() {
    let mut l = Ledger::default();
    let mut leak = finding("leak", false);
    leak.lifecycle.verify = Some("no-limit".into());
    let limit = finding("no-limit", false);
    let o = l.update(vec![leak.clone(), limit.clone()], t(0), |_| {
        Recheck::CouldNotCheck
    });
    assert!(matches!(
        o.reported[0].deployment,
        Some(Deployment::NotYet { .. })
    ));
    l.update(vec![leak.clone()], t(15), |_| Recheck::Gone { now: None });
    assert_eq!(
        l.deployment(&leak),
        Some(Deployment::Deployed { on: t(15) })
    );
}

#[test]
fn resolved_findings_are_forgotten_after_keep_resolved_but_come_back_as_back_inside_it() {
    let mut l = Ledger::default();
    l.policy.keep_resolved = Duration::days(30);
    let day = 24 * 60;
    l.update(vec![finding("a", false)], t(0), |_| Recheck::CouldNotCheck);
    l.update(vec![], t(15), |_| Recheck::Gone { now: None });
    // Back inside the period: the reader is told it had resolved.
    let o = l.update(vec![finding("a", false)], t(29 * day), |_| {
        Recheck::CouldNotCheck
    });
    assert_eq!(
        reasons(&o),
        vec![Reason::Reopened { after: t(15) }],
        "recurring inside keep_resolved"
    );
    l.update(vec![], t(29 * day + 15), |_| Recheck::Gone { now: None });
    // Quiet for longer than the period: the entry goes, the ledger shrinks.
    l.update(vec![finding("b", false)], t(60 * day), |_| {
        Recheck::CouldNotCheck
    });
    assert!(
        l.entry(&finding("a", false).key()).is_none(),
        "resolved 31 days ago: forgotten"
    );
    assert_eq!(l.entries.len(), 1);
    let o = l.update(
        vec![finding("a", false), finding("b", false)],
        t(61 * day),
        |_| Recheck::CouldNotCheck,
    );
    let a = o
        .reported
        .iter()
        .find(|r| r.finding.rule_id == "a")
        .map(|r| r.reason.clone());
    assert_eq!(a, Some(Reason::New), "after the period it is new");
}

#[test]
fn forgetting_keeps_what_a_recommendation_and_an_acknowledgement_need() {
    let mut l = acknowledging("known", "ana", "2027-01-01");
    l.policy.keep_resolved = Duration::days(30);
    let day = 24 * 60;
    let mut leak = finding("leak", false);
    leak.lifecycle.verify = Some("no-limit".into());
    let limit = finding("no-limit", false);
    l.update(
        vec![leak.clone(), limit.clone(), finding("a", false)],
        t(0),
        |_| Recheck::CouldNotCheck,
    );
    l.update(vec![leak.clone()], t(15), |_| Recheck::Gone { now: None });
    l.update(vec![leak.clone()], t(90 * day), |_| Recheck::CouldNotCheck);
    assert_eq!(
        l.deployment(&leak),
        Some(Deployment::Deployed { on: t(15) }),
        "the verifying finding of an open one is kept past the period"
    );
    assert!(
        l.entry(&finding("a", false).key()).is_none(),
        "the acknowledged finding that resolved is forgotten"
    );
    let o = l.update(vec![leak, finding("a", false)], t(91 * day), |_| {
        Recheck::CouldNotCheck
    });
    assert!(
        !o.reported.iter().any(|r| r.finding.rule_id == "a"),
        "its acknowledgement still holds"
    );
    assert!(o.acknowledged.iter().any(|a| a.finding.rule_id == "a"));
}

#[test]
fn a_finding_that_flaps_every_capture_keeps_a_bounded_history() {
    let mut l = Ledger::default();
    for i in 0..200 {
        l.update(vec![finding("a", false)], t(30 * i), |_| {
            Recheck::CouldNotCheck
        });
        l.update(vec![], t(30 * i + 15), |_| Recheck::Gone { now: None });
    }
    let e = l.entry(&finding("a", false).key()).unwrap();
    assert_eq!(e.reopened, 199);
    assert_eq!(e.severity_history.len(), SEVERITY_MEMORY);
    assert_eq!(e.severity_history.last().map(|c| c.at), Some(t(30 * 199)));
}

fn value(v: f64, text: &str) -> EvidenceValue {
    EvidenceValue {
        value: Some(v),
        text: text.into(),
    }
}

#[test]
fn a_finding_back_after_resolving_counts_its_episode_from_when_it_came_back() {
    let mut l = Ledger::default();
    let mut f = finding("a", false);
    f.lifecycle.escalate_after = Some(3);
    l.update(vec![f.clone()], t(0), |_| Recheck::CouldNotCheck);
    l.update(vec![], t(15), |_| Recheck::Gone { now: None });
    let o = l.update(vec![f.clone()], t(30), |_| Recheck::CouldNotCheck);
    let back = Episode {
        start: t(30),
        back_after: Some(t(15)),
    };
    assert_eq!(o.reported[0].episode, back);
    assert_eq!(
        o.reported[0].first_seen,
        t(0),
        "first_seen stays the first ever"
    );
    let o = l.update(vec![f.clone()], t(45), |_| Recheck::CouldNotCheck);
    assert_eq!(o.still_open[0].episode, back, "the still-open list too");
    let o = l.update(vec![f], t(60), |_| Recheck::CouldNotCheck);
    assert!(
        matches!(&reasons(&o)[..], [Reason::Escalated { why }] if why.contains("30 min")),
        "sustained over this episode, not since t(0): {:?}",
        reasons(&o)
    );
    assert_eq!(o.reported[0].episode, back);
    l.update(vec![], t(75), |_| Recheck::Gone { now: None });
    let e = l.entries.values().next().unwrap();
    assert_eq!(e.episode_start(), t(30));
    // A ledger written before episodes were kept reads its episode as starting at first_seen.
    let mut json = serde_json::to_value(e).unwrap();
    json.as_object_mut().unwrap().remove("episode_start");
    let old: Entry = serde_json::from_value(json).unwrap();
    assert_eq!(old.episode_start(), t(0));
}

#[test]
fn a_repeat_is_unchanged_only_when_every_value_it_printed_is_still_the_same() {
    let with_usage = |v: f64, text: &str| {
        let mut f = finding("a", false);
        f.title = format!("no memory limit ({text} in use)");
        f.values.insert("usage".into(), value(v, text));
        f.values.insert("peak".into(), value(v, text));
        f
    };
    let day = 24 * 60;
    let mut l = Ledger::default();
    l.update(vec![with_usage(1.02, "1.02GB")], t(0), |_| Recheck::Holds);
    let o = l.update(vec![with_usage(1.03, "1.03GB")], t(day), |_| Recheck::Holds);
    assert_eq!(
        reasons(&o),
        vec![Reason::Unchanged {
            since: t(0),
            nth: 2,
            then: vec![
                ("peak".into(), "1.02GB".into()),
                ("usage".into(), "1.02GB".into())
            ],
        }],
        "a value printed in the title changed its text"
    );
    let mut f = with_usage(1.03, "1.03GB");
    f.values.insert("peak".into(), value(5.4, "5.4GB"));
    let o = l.update(vec![f], t(2 * day), |_| Recheck::Holds);
    assert_eq!(
        reasons(&o),
        vec![Reason::Unchanged {
            since: t(day),
            nth: 3,
            then: vec![("peak".into(), "1.03GB".into())],
        }],
        "a value outside the title moved by more than the material share"
    );
    let mut f = with_usage(1.03, "1.03GB");
    f.values.insert("peak".into(), value(5.5, "5.5GB"));
    let o = l.update(vec![f], t(3 * day), |_| Recheck::Holds);
    assert_eq!(
        reasons(&o),
        vec![Reason::Unchanged {
            since: t(2 * day),
            nth: 4,
            then: vec![],
        }],
        "within the share, and the title is the same: unchanged"
    );
}

#[test]
fn a_cumulative_count_adds_up_over_its_episode_while_the_window_slides() {
    let counted = |advance: f64, after: f64, since: f64| {
        let mut f = finding("lost", false);
        f.lifecycle.cumulative = Some(crate::model::Cumulative {
            total: "advance".into(),
            reading: "after".into(),
            from: "since".into(),
        });
        f.values.insert("advance".into(), value(advance, "a"));
        f.values.insert("after".into(), value(after, "r"));
        f.values
            .insert("since".into(), value(since, &format!("at {since}")));
        f
    };
    let mut l = Ledger::default();
    let first = counted(10_810.0, 10_810.0, 100.0);
    assert_eq!(
        l.episode_count(&first, t(0)),
        None,
        "a new episode counts what it saw"
    );
    l.update(vec![first], t(0), |_| Recheck::Holds);
    // The window slid past the start: the kind sees less, the episode has lost more.
    let slid = counted(5_000.0, 16_011.0, 200.0);
    let total = l.episode_count(&slid, t(15)).unwrap();
    assert_eq!(total["advance"].value, Some(16_011.0));
    assert_eq!(total["since"], value(100.0, "at 100"));
    let mut seen = slid.clone();
    seen.values.extend(total);
    l.update(vec![seen.clone()], t(15), |_| Recheck::Holds);
    let again = l.episode_count(&slid, t(15)).unwrap();
    assert_eq!(
        again["advance"].value,
        Some(16_011.0),
        "the same capture counts once"
    );
    // A counter that restarted from zero adds what it counted since.
    let reset = counted(500.0, 500.0, 300.0);
    let total = l.episode_count(&reset, t(30)).unwrap();
    assert_eq!(total["advance"].value, Some(16_511.0));
    // Once it resolved, coming back starts a new count.
    l.update(vec![], t(45), |_| Recheck::Gone { now: None });
    assert_eq!(l.episode_count(&reset, t(60)), None);
}

/// The same finding on `nodes`, grouped as the rules group it: scope, members, nodes.
fn grouped(nodes: &[&str]) -> Finding {
    let mut f = finding("leak", false);
    f.scope = Some("role:processing".into());
    f.nodes = nodes.iter().map(|n| n.to_string()).collect();
    f.members = nodes
        .iter()
        .map(|n| crate::model::Member {
            node: n.to_string(),
            title: format!("{n} t"),
            values: BTreeMap::new(),
        })
        .collect();
    f
}

#[test]
fn a_nodes_open_finding_taken_into_a_group_is_not_resolved_and_the_group_says_who_joined() {
    let mut l = Ledger::default();
    l.update(vec![finding("leak", false)], t(0), |_| {
        Recheck::CouldNotCheck
    });
    // vk02 shows it too: one finding about both. vk01's own entry lives on in it: nothing
    // resolves, and the group starts where vk01's episode started, saying vk02 joined.
    let o = l.update_grouped(vec![grouped(&["vk01", "vk02"])], &[], t(15), |_| {
        Recheck::Gone { now: None }
    });
    assert!(o.resolved.is_empty(), "{:?}", o.resolved);
    assert_eq!(l.entries.len(), 1);
    let e = l.entries.values().next().unwrap();
    assert_eq!(e.episode_start(), t(0));
    assert!(matches!(
        reasons(&o).as_slice(),
        [Reason::Changed { what }] if what == "now also on vk02"
    ));
    // vk02 leaves: said only when vk02 was seen without it; a vk02 that cannot be read is no
    // change at all.
    let unread = l.update_grouped(vec![finding("leak", false)], &[], t(30), |_| {
        Recheck::CouldNotCheck
    });
    assert!(unread.reported.is_empty() && unread.resolved.is_empty());
    let mut l2 = Ledger::default();
    l2.update_grouped(vec![grouped(&["vk01", "vk02"])], &[], t(0), |_| {
        Recheck::CouldNotCheck
    });
    let healed = l2.update_grouped(vec![finding("leak", false)], &[], t(15), |_| {
        Recheck::Gone { now: None }
    });
    assert!(healed.resolved.is_empty());
    assert!(matches!(
        reasons(&healed).as_slice(),
        [Reason::Changed { what }] if what == "no longer on vk02"
    ));
}

#[test]
fn a_finding_folded_into_another_or_into_a_baseline_leaves_quietly() {
    let mut l = Ledger::default();
    l.update(vec![finding("no-limit", false)], t(0), |_| {
        Recheck::CouldNotCheck
    });
    // Now a facet of the leak about the same subject and node: not resolved, not repeated.
    let mut leak = finding("leak", false);
    leak.facets.push(crate::model::Facet {
        rule_id: "no-limit".into(),
        severity: Severity::Suggestion,
        nodes: vec!["vk01".into()],
        entity: "gpu:0".into(),
        metric: "temp_c".into(),
        text: "no limit".into(),
        evidence: String::new(),
        values: BTreeMap::new(),
    });
    let o = l.update_grouped(vec![leak], &[], t(15), |_| Recheck::Gone { now: None });
    assert!(o.resolved.is_empty());
    assert_eq!(l.entries.len(), 1, "only the leak's entry is left");
    // A group that becomes its role's baseline takes its members' entries with it, quietly.
    let mut l = Ledger::default();
    l.update(vec![finding("leak", false)], t(0), |_| {
        Recheck::CouldNotCheck
    });
    let o = l.update_grouped(
        Vec::new(),
        &[grouped(&["vk01", "vk02", "vk03"])],
        t(15),
        |_| Recheck::Gone { now: None },
    );
    assert!(o.resolved.is_empty() && o.reported.is_empty() && l.entries.is_empty());
}

#[test]
fn a_node_or_two_of_a_large_group_moving_is_not_news_a_quarter_is() {
    let nodes: Vec<String> = (1..=12).map(|i| format!("n{i:02}")).collect();
    let group = |k: usize| grouped(&nodes[..k].iter().map(String::as_str).collect::<Vec<_>>());
    let mut l = Ledger::default();
    l.update_grouped(vec![group(10)], &[], t(0), |_| Recheck::CouldNotCheck);
    let o = l.update_grouped(vec![group(12)], &[], t(15), |_| Recheck::CouldNotCheck);
    assert!(o.reported.is_empty(), "2 of 10 joining: {:?}", reasons(&o));
    let o = l.update_grouped(vec![group(7)], &[], t(30), |_| Recheck::Gone { now: None });
    assert!(
        matches!(reasons(&o).as_slice(), [Reason::Changed { what }] if what == "no longer on n08, n09, n10"),
        "{:?}",
        reasons(&o)
    );
}
