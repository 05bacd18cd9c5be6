//! One problem, one finding, on a fleet bigger than the demo: the benchmark fleet's scenario
//! (`benches/common/fleet-scenario.toml`: every node leaks one container, saws one Prometheus, runs
//! containers without memory limits and with a large writable layer, and has a noisy GPU
//! temperature) simulated at 20 nodes and reported. The report must say each problem once and
//! stay short; `cargo bench --bench grouping` holds the same bounds at 100 and 1,000 nodes.

use crate::support::{patrol, root, succeeded};

/// The section `patrol report` wrote, found from the path it prints.
fn report_of(nodes: u32) -> String {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("fleet.toml");
    std::fs::write(
        &scenario,
        include_str!("../benches/common/fleet-scenario.toml")
            .replace("{nodes}", &nodes.to_string()),
    )
    .unwrap();
    let archive = dir.path().join("archive");
    let out = dir.path().join("out");
    let (a, o) = (archive.to_str().unwrap(), out.to_str().unwrap());
    succeeded(&patrol(
        &["simulate", scenario.to_str().unwrap(), "--out", a],
        &root(),
    ));
    let printed = succeeded(&patrol(&["report", "--archive", a, "--out", o], &root()));
    std::fs::read_to_string(printed.trim()).unwrap()
}

#[test]
fn the_benchmark_fleet_says_each_problem_once() {
    let section = report_of(20);
    let numbered: Vec<&str> = section
        .lines()
        .filter(|l| {
            l.split_once(". **[")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .collect();
    assert!(
        numbered.len() <= 12 && section.len() <= 8_000,
        "{} numbered findings, {} bytes:\n{section}",
        numbered.len(),
        section.len()
    );
    // The problems are said, each once, about all 20 nodes.
    for problem in [
        "`leaky` memory creeping up",
        "`inference` has no memory limit",
        "`db` writable layer",
    ] {
        let lines: Vec<&&str> = numbered.iter().filter(|l| l.contains(problem)).collect();
        assert_eq!(lines.len(), 1, "`{problem}` said once: {numbered:#?}");
        assert!(
            lines[0].contains("on 20 of 20 `processing` nodes"),
            "{}",
            lines[0]
        );
    }
    // The same sawtooth on every Prometheus is the role's baseline; ±3°C of jitter is not news.
    assert!(
        !section.contains("`prometheus` memory cycles"),
        "a baseline was reported:\n{section}"
    );
    assert!(
        !section.contains("temperature rose") && !section.contains("temperature dropped"),
        "jitter was reported:\n{section}"
    );
}

/// Folding is data in the rule files, and `patrol rules explain` says it both ways.
#[test]
fn rules_explain_says_how_a_rule_groups_and_folds() {
    let released = succeeded(&patrol(
        &["rules", "explain", "container-memory-released-by-reboot"],
        &root(),
    ));
    assert!(released.contains("Folds into node-rebooted"), "{released}");
    let reboot = succeeded(&patrol(&["rules", "explain", "node-rebooted"], &root()));
    assert!(
        reboot.contains("Takes in: container-memory-released-by-reboot"),
        "{reboot}"
    );
    let sawtooth = succeeded(&patrol(
        &["rules", "explain", "container-memory-sawtooth"],
        &root(),
    ));
    assert!(
        sawtooth.contains("across_nodes = \"baseline\"")
            && sawtooth.contains("Family `container-memory`"),
        "{sawtooth}"
    );
}
