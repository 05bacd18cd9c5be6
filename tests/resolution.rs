//! Every "Resolved" is earned. Replays every scenario in the repository (the demo archive,
//! each `scenarios/*.toml` simulated, each rule fixture with several captures) capture round
//! by capture round, records what the rules said at each round independently of the ledger,
//! and proves for every resolution the ledger made that the subject was judged on fresh
//! readings, healthy, in the derived states it was raised in, for `resolve_after` rounds in a
//! row after it was last seen bad. Then the false resolutions of issue 15, each as a
//! regression test on the demo report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use patrol::history::Window;
use patrol::ledger::{Ledger, Recheck};
use patrol::model::{Finding, Snapshot};
use patrol::rules::Library;
use patrol::rules::resolution::{Verdict, verdict};
use proptest::prelude::*;

use crate::support::{patrol, root, succeeded};

/// Whether one round judged a subject healthy, by the record of that round alone.
fn judged_healthy(
    window: &Window,
    evaluation: &patrol::rules::Evaluation,
    bad: &BTreeSet<String>,
    f: &Finding,
    (raised_in, steady_rest): (&BTreeMap<String, String>, &BTreeSet<String>),
) -> Result<(), String> {
    let key = f.key();
    if bad.contains(&key) {
        return Err("seen bad".into());
    }
    if evaluation.unchecked.contains(&key) || evaluation.holds.contains(&key) {
        return Err("its rule could not decide, or said it holds".into());
    }
    let round = window.latest_at().map(|t| t.timestamp()).unwrap_or(0);
    for node in &f.nodes {
        if evaluation
            .gated
            .contains(&(f.rule_id.clone(), node.clone()))
        {
            return Err(format!("rule gated on {node}"));
        }
        let Some(n) = window.node(node) else {
            return Err(format!("{node} not in the window"));
        };
        let interval = n.capture_interval().unwrap_or(0);
        if n.latest_at().is_none_or(|at| round - at > interval / 2) {
            return Err(format!("{node} not captured in the round"));
        }
        if n.latest().is_none_or(|s| s.is_dark()) {
            return Err(format!("{node} dark"));
        }
        let entity = match f.entity.strip_prefix("logtpl:") {
            Some(rest) => format!("log:{}", rest.split('|').next().unwrap_or(rest)),
            None => f.entity.clone(),
        };
        if n.entity_fresh(&entity) == Some(false) {
            return Err(format!("no fresh reading of {entity} on {node}"));
        }
    }
    for (key, want) in raised_in {
        let (node, state) = key.split_once('/').unwrap_or(("", key));
        let now = evaluation.states.get(node, state);
        // A condition work only makes likelier, arisen after hours at rest, is as healthy under work.
        if f.lifecycle.worse_under_work && steady_rest.contains(key) && now.is_some() {
            continue;
        }
        if now != Some(want.as_str()) {
            return Err(format!("{state} is not {want} on {node} as when raised"));
        }
    }
    Ok(())
}

/// Replays rounds through the rules and a ledger; returns the resolutions checked and every
/// resolution that was not earned, described.
fn replay_and_check(
    what: &str,
    library: &Library,
    rounds: Vec<Vec<Snapshot>>,
    span_h: i64,
) -> (usize, Vec<String>) {
    let mut window = Window::new(chrono::Duration::hours(span_h));
    let mut ledger = Ledger::default();
    // Per finding key: the derived states when its episode was raised, and the verdict of
    // every round since it was first raised, oldest first.
    let mut raised_in: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut steady_in: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut history: BTreeMap<String, Vec<Result<(), String>>> = BTreeMap::new();
    let mut known: BTreeMap<String, Finding> = BTreeMap::new();
    let (mut checked, mut failures) = (0, Vec::new());
    for round in rounds {
        for s in round {
            window.push(s);
        }
        let Some(at) = window.latest_at() else {
            continue;
        };
        window.evict_before(at.timestamp() - window.span_s());
        let mut evaluation = library.evaluate(&window, chrono_tz::UTC);
        let findings = std::mem::take(&mut evaluation.findings);
        let bad: BTreeSet<String> = findings.iter().map(Finding::key).collect();
        for f in findings.iter().filter(|f| !f.event) {
            // The states the rule recorded with it (none for what reads the same in any state).
            raised_in
                .entry(f.key())
                .or_insert_with(|| f.context.clone());
            steady_in
                .entry(f.key())
                .or_insert_with(|| f.raised_in_steady_rest.clone());
            known.insert(f.key(), f.clone());
        }
        for (key, f) in &known {
            let ctx = raised_in.get(key).cloned().unwrap_or_default();
            let steady = steady_in.get(key).cloned().unwrap_or_default();
            let verdict = judged_healthy(&window, &evaluation, &bad, f, (&ctx, &steady));
            history.entry(key.clone()).or_default().push(verdict);
        }
        let outcome = ledger.update(findings, at, |f| match verdict(&evaluation, &window, f) {
            Verdict::Healthy { now } => Recheck::Gone { now },
            Verdict::Unchecked { .. } => Recheck::CouldNotCheck,
            Verdict::Holds => Recheck::Holds,
        });
        for r in outcome.resolved {
            let key = r.finding.key();
            checked += 1;
            let need = r.finding.lifecycle.resolve_after() as usize;
            let rounds = history.get(&key).map(Vec::as_slice).unwrap_or_default();
            let last = &rounds[rounds.len().saturating_sub(need)..];
            let earned = last.len() == need && last.iter().all(Result::is_ok);
            if !earned {
                let why: Vec<String> = last.iter().filter_map(|r| r.clone().err()).collect();
                failures.push(format!(
                    "{what}: {} resolved at {at} without {need} healthy rounds ({})",
                    r.finding.title,
                    why.join("; ")
                ));
            }
            if raised_in.get(&key) != Some(&r.finding.context) && !r.finding.context.is_empty() {
                failures.push(format!(
                    "{what}: {} resolved with the context of another capture than it was raised in",
                    r.finding.title
                ));
            }
            // The next episode starts afresh.
            raised_in.remove(&key);
            steady_in.remove(&key);
            history.remove(&key);
            known.remove(&key);
        }
    }
    (checked, failures)
}

fn archive_rounds(dir: &Path) -> Vec<Vec<Snapshot>> {
    let archive = patrol::store::Archive::open(dir);
    let entries = archive.list(None, None, None).unwrap();
    let (snaps, _) = archive.load_entries(&entries);
    by_round(snaps)
}

fn by_round(snaps: Vec<Snapshot>) -> Vec<Vec<Snapshot>> {
    let mut snaps = snaps;
    snaps.sort_by(|a, b| a.captured_at.cmp(&b.captured_at).then(a.node.cmp(&b.node)));
    patrol::store::group_rounds(snaps, |s| s.node.as_str(), |s| s.captured_at)
}

fn scenario_rounds(path: &Path, text: &str) -> Vec<Vec<Snapshot>> {
    let scenario = patrol::simulate::parse(path, text).unwrap();
    by_round(patrol::simulate::generate(&scenario).unwrap())
}

/// A rule fixture split as `patrol rules test` splits it: its rules (with states and
/// aliases) and its scenario.
fn fixture(path: &Path) -> (Library, Vec<Vec<Snapshot>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    let mut rules = toml::Table::new();
    for key in ["rule", "state", "alias"] {
        if let Some(v) = table.remove(key) {
            rules.insert(key.into(), v);
        }
    }
    let library =
        Library::from_sources(&[(path.to_path_buf(), toml::to_string(&rules).unwrap())]).unwrap();
    let rounds = scenario_rounds(path, &toml::to_string(&table).unwrap());
    (library, rounds)
}

fn library() -> Library {
    patrol::app::load_library(Some(&root().join("rules"))).unwrap()
}

#[test]
fn every_resolution_of_the_demo_and_the_scenarios_was_earned() {
    let library = library();
    let mut checked = 0;
    let mut failures = Vec::new();
    let (n, f) = replay_and_check(
        "demo",
        &library,
        archive_rounds(&root().join("snapshots/demo")),
        24,
    );
    assert!(n > 5, "the demo resolves findings ({n} checked)");
    checked += n;
    failures.extend(f);
    for entry in std::fs::read_dir(root().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        // The demo archive is this scenario simulated (tests/cli.rs holds them equal).
        if path.extension().is_none_or(|e| e != "toml") || path.ends_with("visionking.toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let (n, f) = replay_and_check(
            &path.display().to_string(),
            &library,
            scenario_rounds(&path, &text),
            24,
        );
        checked += n;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{checked} checked:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_resolution_of_the_rule_fixtures_was_earned() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for dir in std::fs::read_dir(root().join("tests/rules")).unwrap() {
        for entry in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let (library, rounds) = fixture(&path);
            if rounds.len() < 2 {
                continue;
            }
            let (n, f) = replay_and_check(&path.display().to_string(), &library, rounds, 24);
            checked += n;
            failures.extend(f);
        }
    }
    assert!(checked > 0, "the fixtures resolve findings");
    assert!(
        failures.is_empty(),
        "{checked} checked:\n{}",
        failures.join("\n")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    /// Started anywhere in the demo, with any window, a resolution is still earned: a replay
    /// that begins mid-incident has no memory of what came before, which is what a fleet's
    /// first `patrol run` sees.
    #[test]
    fn a_demo_replay_started_anywhere_earns_every_resolution(
        start in 0usize..300,
        span_h in 2i64..30,
    ) {
        static ROUNDS: OnceLock<Vec<Vec<Snapshot>>> = OnceLock::new();
        let rounds = ROUNDS.get_or_init(|| archive_rounds(&root().join("snapshots/demo")));
        static LIBRARY: OnceLock<Library> = OnceLock::new();
        let library = LIBRARY.get_or_init(library);
        let from = start.min(rounds.len().saturating_sub(1));
        let (_, failures) = replay_and_check("demo", library, rounds[from..].to_vec(), span_h);
        prop_assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// The demo's rolling report, written once for the regression tests below.
fn demo() -> &'static str {
    static REPORT: OnceLock<String> = OnceLock::new();
    REPORT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("demo");
        succeeded(&patrol(
            &["demo", "--out", out_dir.to_str().unwrap()],
            &root(),
        ));
        crate::support::rolling_report(&out_dir)
    })
}

/// The report's sections as (heading, text), oldest first.
fn sections(report: &str) -> Vec<(&str, &str)> {
    report
        .split("\n## ")
        .skip(1)
        .map(|s| s.split_once('\n').unwrap_or((s, "")))
        .collect()
}

/// "Resolved" lines of sections from `from` (a heading prefix such as "2026-02-22 19:30").
fn resolved_from<'r>(report: &'r str, from: &str) -> Vec<(&'r str, &'r str)> {
    sections(report)
        .into_iter()
        .filter(|(h, _)| *h >= from)
        .flat_map(|(h, body)| {
            body.lines()
                .filter(|l| l.contains("Resolved: "))
                .map(move |l| (h, l))
        })
        .collect()
}

#[test]
fn a_node_whose_containers_went_dark_resolves_nothing_until_they_are_seen_again() {
    let report = demo();
    // vk02 runs no container from Feb 22 19:30 to the end of the demo.
    let false_ones: Vec<_> = resolved_from(report, "2026-02-22 19:30")
        .into_iter()
        .filter(|(_, l)| l.contains("Resolved: vk02") || l.contains("not on vk02"))
        .collect();
    assert!(false_ones.is_empty(), "{false_ones:#?}");
    let dark = sections(report)
        .into_iter()
        .find(|(h, _)| h.starts_with("2026-02-22 19:30"))
        .map(|(_, body)| body)
        .unwrap_or_default();
    assert!(
        dark.lines()
            .any(|l| l.contains("[WARNING] vk02 runs no containers")
                && l.contains("open findings about it unchecked")),
        "vk02 going dark is one WARNING that counts what it leaves unchecked:\n{dark}"
    );
}

#[test]
fn a_capture_gap_resolves_no_idle_gpu() {
    // The GPUs hold their memory at 0% from before the gap to the end of the demo.
    let gpu: Vec<_> = resolved_from(demo(), "2026-02-18")
        .into_iter()
        .filter(|(_, l)| l.contains("GPU 0 holds"))
        .collect();
    assert!(gpu.is_empty(), "{gpu:#?}");
}

#[test]
fn a_production_error_does_not_resolve_while_the_line_is_idle() {
    // The line is idle from Feb 22 22:45 to the end of the demo; the error only happens in
    // production.
    let errors: Vec<_> = resolved_from(demo(), "2026-02-22 22:45")
        .into_iter()
        .filter(|(_, l)| l.contains("rejecting message"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_missing_memory_limit_resolves_only_when_a_limit_appears() {
    // No container of the demo ever gets a limit.
    let limits: Vec<_> = resolved_from(demo(), "2026-02-18")
        .into_iter()
        .filter(|(_, l)| l.contains("has no memory limit"))
        .collect();
    assert!(limits.is_empty(), "{limits:#?}");
}

#[test]
fn a_projection_past_its_level_does_not_resolve() {
    for (heading, line) in resolved_from(demo(), "2026-02-18") {
        if !line.contains("re-accumulating") {
            continue;
        }
        let now = line
            .split("Now ")
            .nth(1)
            .and_then(|rest| rest.split("MB").next())
            .and_then(|n| n.parse::<f64>().ok());
        assert!(
            now.is_some_and(|mb| mb < 400.0),
            "resolved at {heading} while at or past the 400MB it projects to: {line}"
        );
    }
}
