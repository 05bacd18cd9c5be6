//! A quiet fleet stays quiet: two days of a healthy three-node fleet (scenarios/quiet.toml), with
//! the ordinary noise of real readings, replayed through the default rule library, raise not one
//! finding.

use crate::support::{patrol, root, succeeded, text};

#[test]
fn the_default_library_says_nothing_about_a_healthy_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("quiet");
    let out = patrol(
        &[
            "simulate",
            "scenarios/quiet.toml",
            "--out",
            archive.to_str().unwrap(),
        ],
        &root(),
    );
    succeeded(&out);
    let library = patrol::rules::Library::load(&root().join("rules")).unwrap();
    let rounds = patrol::app::replay_rounds(
        &patrol::store::Archive::open(&archive),
        &library,
        chrono::Duration::hours(24),
    )
    .unwrap();
    assert!(rounds.len() >= 190, "{} rounds", rounds.len());
    let noise: Vec<String> = rounds
        .iter()
        .flat_map(|r| {
            r.findings
                .iter()
                .map(move |f| format!("{} {}", r.at, f.title))
        })
        .collect();
    assert!(noise.is_empty(), "findings on a quiet fleet: {noise:#?}");
    let report_dir = dir.path().join("out");
    let demo = patrol(
        &[
            "demo",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            report_dir.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(
        text(&demo.stdout).contains("0 sections"),
        "{}",
        text(&demo.stdout)
    );
}
