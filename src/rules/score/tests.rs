//! The key reader and the matcher: hits, misses, windows, lifecycles, repeats, groups, facets,
//! allowances, and the episodes cut from a ledger.

use super::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Problem, Result};
use crate::ledger::{Ledger, Recheck};
use crate::model::Finding;
use crate::model::{Facet, Member, Severity};
use chrono::TimeZone;

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap() + chrono::Duration::hours(h)
}

fn finding(rule: &str, node: &str, entity: &str) -> Finding {
    Finding {
        rule_id: rule.into(),
        kind: "threshold".into(),
        severity: Severity::Warning,
        nodes: vec![node.into()],
        scope: None,
        entity: entity.into(),
        metric: "m".into(),
        observed_at: t(0),
        title: format!("{node} {entity}"),
        evidence: "e".into(),
        recommendation: "r".into(),
        values: BTreeMap::new(),
        event: false,
        event_id: None,
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

fn episode(f: &Finding, opened: i64, resolved: Option<i64>) -> Episode {
    let mut e = Episode::of(f, t(opened));
    e.resolved = resolved.map(t);
    e
}

fn expect(rule: &str, node: &str) -> Expect {
    Expect {
        id: "x".into(),
        why: String::new(),
        rules: vec![rule.into()],
        node: node.into(),
        subject: None,
        opens: Bounds::default(),
        lifecycle: Lifecycle::Any,
        resolves: Bounds::default(),
        repeats: false,
        line: 1,
    }
}

fn key(expects: Vec<Expect>, allows: Vec<Allow>) -> Key {
    Key {
        path: PathBuf::from("k.key.toml"),
        expects,
        allows,
    }
}

fn run(expects: Vec<Expect>, allows: Vec<Allow>, episodes: Vec<Episode>) -> Score {
    score(&key(expects, allows), episodes, chrono_tz::UTC)
}

#[test]
fn an_episode_of_the_rule_about_the_node_is_a_hit() {
    let s = run(
        vec![expect("leak", "web-2")],
        vec![],
        vec![episode(&finding("leak", "web-2", "container:api"), 7, None)],
    );
    assert_eq!((s.hit, s.expectations, s.correct), (1, 1, 1));
    assert!(s.misses.is_empty() && s.extras.is_empty());
    assert_eq!(s.recall(), 100.0);
    assert_eq!(s.precision(), 100.0);
}

#[test]
fn another_node_is_a_miss_and_an_extra_naming_it() {
    let s = run(
        vec![expect("leak", "web-2")],
        vec![],
        vec![episode(&finding("leak", "web-1", "container:api"), 7, None)],
    );
    assert_eq!((s.hit, s.correct), (0, 0));
    assert_eq!(s.misses[0].nearest, Some(0));
    assert!(s.misses[0].reason.contains("wrong node: about web-1"));
    assert_eq!(s.extras.len(), 1);
    assert_eq!(s.extras[0].reason, "no expectation or allowance says it");
}

#[test]
fn a_subject_glob_must_match() {
    let mut x = expect("leak", "web-2");
    x.subject = Some("container:api*".into());
    let s = run(
        vec![x],
        vec![],
        vec![episode(&finding("leak", "web-2", "container:db"), 7, None)],
    );
    assert_eq!(s.hit, 0);
    assert!(s.misses[0].reason.contains("wrong subject: container:db"));
}

#[test]
fn an_episode_before_the_window_is_early_and_after_it_late() {
    let mut x = expect("leak", "web-2");
    x.opens = Bounds {
        after: Some(t(6)),
        by: Some(t(9)),
    };
    let f = finding("leak", "web-2", "container:api");
    for (opened, word) in [(5, "early"), (10, "late")] {
        let s = run(vec![x.clone()], vec![], vec![episode(&f, opened, None)]);
        assert_eq!(s.hit, 0, "{word}");
        assert!(
            s.misses[0].reason.starts_with(word),
            "{}",
            s.misses[0].reason
        );
        assert!(
            s.extras[0].reason.starts_with(word) && s.extras[0].reason.ends_with("for `x`"),
            "{}",
            s.extras[0].reason
        );
    }
    for opened in [6, 9] {
        let s = run(vec![x.clone()], vec![], vec![episode(&f, opened, None)]);
        assert_eq!(s.hit, 1, "opened at {opened}h");
    }
}

#[test]
fn lifecycle_open_and_resolved() {
    let f = finding("leak", "web-2", "container:api");
    let mut open = expect("leak", "web-2");
    open.lifecycle = Lifecycle::Open;
    let s = run(vec![open.clone()], vec![], vec![episode(&f, 7, Some(12))]);
    assert_eq!(s.hit, 0);
    assert!(
        s.misses[0]
            .reason
            .starts_with("flapped: resolved at 2026-03-02 12:00")
    );
    assert_eq!(run(vec![open], vec![], vec![episode(&f, 7, None)]).hit, 1);

    let mut resolved = expect("leak", "web-2");
    resolved.lifecycle = Lifecycle::Resolved;
    resolved.resolves = Bounds {
        after: Some(t(10)),
        by: Some(t(14)),
    };
    let s = run(vec![resolved.clone()], vec![], vec![episode(&f, 7, None)]);
    assert!(s.misses[0].reason.starts_with("still open"));
    let s = run(
        vec![resolved.clone()],
        vec![],
        vec![episode(&f, 7, Some(9))],
    );
    assert!(s.misses[0].reason.starts_with("resolved early"));
    let s = run(
        vec![resolved.clone()],
        vec![],
        vec![episode(&f, 7, Some(15))],
    );
    assert!(s.misses[0].reason.starts_with("resolved late"));
    assert_eq!(
        run(vec![resolved], vec![], vec![episode(&f, 7, Some(12))]).hit,
        1
    );
}

#[test]
fn a_second_episode_is_an_extra_unless_the_key_says_it_repeats() {
    let f = finding("leak", "web-2", "container:api");
    let mut x = expect("leak", "web-2");
    x.opens = Bounds {
        after: Some(t(6)),
        by: Some(t(9)),
    };
    let eps = || vec![episode(&f, 7, Some(12)), episode(&f, 20, None)];
    let s = run(vec![x.clone()], vec![], eps());
    assert_eq!((s.hit, s.correct, s.extras.len()), (1, 1, 1));
    assert!(s.extras[0].reason.starts_with("late"));
    x.repeats = true;
    let s = run(vec![x.clone()], vec![], eps());
    assert_eq!((s.hit, s.correct, s.extras.len()), (1, 2, 0));
    // The last episode says how it ends; an episode before the problem began is still wrong.
    x.lifecycle = Lifecycle::Open;
    let mut early = eps();
    early.insert(0, episode(&f, 2, Some(3)));
    let s = run(vec![x.clone()], vec![], early);
    assert_eq!((s.hit, s.correct, s.extras.len()), (1, 2, 1));
    assert!(s.extras[0].reason.starts_with("early"));
    // Missed because the last did not end as the key says: a miss, but its episodes are
    // still the problem the story tells, not extras.
    x.lifecycle = Lifecycle::Resolved;
    let s = run(vec![x], vec![], eps());
    assert_eq!((s.hit, s.correct, s.extras.len()), (0, 2, 0));
    assert!(
        s.misses[0].reason.contains("still open"),
        "{}",
        s.misses[0].reason
    );
}

#[test]
fn a_group_counts_for_each_of_its_nodes() {
    let mut f = finding("leak", "web-1", "container:api");
    f.nodes = vec!["web-1".into(), "web-2".into(), "web-3".into()];
    f.members = ["web-1", "web-2", "web-3"]
        .iter()
        .map(|n| Member {
            node: n.to_string(),
            title: String::new(),
            values: BTreeMap::new(),
        })
        .collect();
    let mut a = expect("leak", "web-1");
    a.id = "x@web-1".into();
    let mut b = expect("leak", "web-3");
    b.id = "x@web-3".into();
    let s = run(vec![a, b], vec![], vec![episode(&f, 7, None)]);
    assert_eq!((s.hit, s.expectations, s.correct), (2, 2, 1));
}

#[test]
fn a_facet_says_its_own_rule() {
    let mut f = finding("reboot", "web-1", "host");
    f.facets.push(Facet {
        rule_id: "memory-released".into(),
        severity: Severity::Info,
        nodes: vec!["web-1".into()],
        entity: "container:api".into(),
        metric: "m".into(),
        text: String::new(),
        evidence: String::new(),
        values: BTreeMap::new(),
    });
    let mut x = expect("memory-released", "web-1");
    x.subject = Some("container:api".into());
    let s = run(vec![x], vec![], vec![episode(&f, 7, None)]);
    assert_eq!((s.hit, s.correct), (1, 1));
}

#[test]
fn an_allowed_episode_is_neither_a_hit_nor_an_extra() {
    let allow = Allow {
        why: String::new(),
        rules: vec!["node-rebooted".into()],
        nodes: vec!["*".into()],
        subject: None,
        opens: Bounds::default(),
        line: 1,
    };
    let eps = vec![episode(&finding("node-rebooted", "web-1", "host"), 3, None)];
    let s = run(
        vec![expect("leak", "web-2")],
        vec![allow.clone()],
        eps.clone(),
    );
    assert_eq!((s.hit, s.correct, s.extras.len()), (0, 1, 0));
    assert_eq!(s.precision(), 100.0);
    let late = Allow {
        opens: Bounds {
            after: Some(t(5)),
            by: None,
        },
        ..allow
    };
    assert_eq!(run(vec![], vec![late], eps).extras.len(), 1);
}

fn ctx_nodes() -> Vec<String> {
    vec!["web-1".into(), "web-2".into()]
}

fn resolve(text: &str) -> Result<Key> {
    let kf = KeyFile::parse(Path::new("k.key.toml"), text)?;
    let nodes = ctx_nodes();
    kf.resolve(&Context {
        tz: chrono_tz::America::Sao_Paulo,
        start: t(0),
        rules: &["container-memory-leak", "node-rebooted"],
        nodes: &nodes,
    })
}

fn problems(r: Result<Key>) -> Vec<Problem> {
    match r {
        Err(Error::Invalid { problems, .. }) => problems,
        Err(e) => panic!("not a list of problems: {e}"),
        Ok(_) => panic!("the key was accepted"),
    }
}

#[test]
fn a_key_reads_lists_times_and_allowances() {
    let key = resolve(
        r#"
[key]
scenario = "web.toml"

[[expect]]
id = "leak"
why = "the bad deploy"
rule = "container-memory-leak"
node = ["web-1", "web-2"]
subject = "container:api*"
opens_after = "+6h"
opens_by = "2026-03-02 09:00"
lifecycle = "open"

[[allow]]
rule = "node-rebooted"
node = "*"
"#,
    )
    .unwrap();
    assert_eq!(key.expects.len(), 2);
    assert_eq!(key.expects[1].id, "leak@web-2");
    assert_eq!(key.expects[0].opens.after, Some(t(6)));
    // 09:00 in São Paulo (UTC-3) is 12:00 UTC.
    assert_eq!(key.expects[0].opens.by, Some(t(12)));
    assert_eq!(key.allows[0].nodes, vec!["*".to_string()]);
}

#[test]
fn unknown_rules_and_nodes_are_errors_with_line_column_and_a_suggestion() {
    let p = problems(resolve(
        "[[expect]]\nid = \"a\"\nrule = \"container-memory-leek\"\nnode = \"web-3\"\n",
    ));
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!((p[0].line, p[0].column), (3, 8));
    assert!(
        p[0].message
            .contains("did you mean `container-memory-leak`")
    );
    assert_eq!((p[1].line, p[1].column), (4, 8));
    assert!(p[1].message.contains("no node `web-3`"));
}

#[test]
fn syntax_times_fields_and_ids_are_checked_at_once() {
    let p = problems(resolve(
        "[[expect]]\nid = \"a\"\nrule = \"node-rebooted\"\nnode = \"web-1\"\nopens_by = \"tomorrow\"\nlifecycle = \"closed\"\nsubjet = \"x\"\n\n[[expect]]\nid = \"a\"\nrule = \"node-rebooted\"\nnode = \"web-1\"\n",
    ));
    let lines: Vec<usize> = p.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![5, 6, 7, 10], "{p:?}");
    assert!(p[2].message.contains("did you mean `subject`"));
    assert!(p[3].message.contains("used at line 1"));
    let p = problems(resolve("[[expect]\nid = 1\n"));
    assert_eq!(p[0].line, 1);
    let p = problems(resolve(
        "[[expect]]\nid = \"a\"\nrule = \"node-rebooted\"\nnode = \"web-1\"\nopens_after = \"+9h\"\nopens_by = \"+6h\"\n",
    ));
    assert_eq!(p[0].line, 6);
}

/// Runs findings through a ledger round by round; a round's findings missing later resolve
/// (resolve_after 1).
fn tracked(rounds: &[Vec<Finding>]) -> Vec<Episode> {
    let mut ledger = Ledger::default();
    let mut tracker = Tracker::default();
    for (h, findings) in rounds.iter().enumerate() {
        let at = t(h as i64);
        ledger.update_grouped(findings.clone(), &[], at, |_| Recheck::Gone { now: None });
        tracker.observe(&ledger, at, at);
    }
    tracker.finish()
}

#[test]
fn the_ledger_is_cut_into_episodes_that_resolve_and_come_back() {
    let f = finding("leak", "web-1", "container:api");
    let eps = tracked(&[vec![f.clone()], vec![f.clone()], vec![], vec![f.clone()]]);
    assert_eq!(eps.len(), 2);
    assert_eq!((eps[0].opened, eps[0].resolved), (t(0), Some(t(2))));
    assert_eq!((eps[1].opened, eps[1].resolved), (t(3), None));
}

#[test]
fn a_finding_taken_into_a_group_is_one_episode_that_says_both_nodes() {
    let single = finding("leak", "web-1", "container:api");
    let mut group = single.clone();
    group.nodes = vec!["web-1".into(), "web-2".into()];
    group.members = ["web-1", "web-2"]
        .iter()
        .map(|n| Member {
            node: n.to_string(),
            title: String::new(),
            values: BTreeMap::new(),
        })
        .collect();
    let eps = tracked(&[vec![single], vec![group.clone()], vec![group]]);
    assert_eq!(eps.len(), 1, "{eps:#?}");
    assert_eq!(eps[0].opened, t(0));
    let s = run(
        vec![expect("leak", "web-1"), {
            let mut x = expect("leak", "web-2");
            x.opens.by = Some(t(0));
            x
        }],
        vec![],
        eps,
    );
    // web-2 was said only from the second round: late for an expectation by the first.
    assert_eq!(s.hit, 1);
    assert!(
        s.misses[0]
            .reason
            .starts_with("late: said at 2026-03-02 01:00")
    );
}

/// Nodes are captured seconds after their round is due: what the ledger stamps within a round
/// counts from the round's time, which is what a key's "by 01:00" means.
#[test]
fn what_a_round_stamps_counts_from_the_round_not_its_last_capture() {
    let f = finding("leak", "web-1", "container:api");
    let mut ledger = Ledger::default();
    let mut tracker = Tracker::default();
    for (h, findings) in [vec![f.clone()], vec![]].iter().enumerate() {
        let due = t(h as i64);
        let last_capture = due + chrono::Duration::seconds(47);
        ledger.update_grouped(findings.clone(), &[], last_capture, |_| Recheck::Gone {
            now: None,
        });
        tracker.observe(&ledger, last_capture, due);
    }
    let eps = tracker.finish();
    assert_eq!((eps[0].opened, eps[0].resolved), (t(0), Some(t(1))));
}
