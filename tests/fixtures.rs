//! Rule fixtures: tests/rules/<kind>/<case>.toml is a scenario with its rule instances; the
//! findings a replay produces must equal <case>.expected. `PATROL_BLESS=1 cargo test` rewrites
//! the expected files after a deliberate change.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::support::{blessing, root};

fn cases() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for kind in std::fs::read_dir(root().join("tests/rules")).unwrap() {
        let kind = kind.unwrap().path();
        for case in std::fs::read_dir(&kind).unwrap() {
            let p = case.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_fixture_gives_its_expected_findings() {
    let mut failures = Vec::new();
    for case in cases() {
        let got =
            patrol::app::run_fixture(&case).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        let expected_path = case.with_extension("expected");
        if blessing() {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "{}\n--- expected\n{expected}--- got\n{got}",
                case.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "fixtures differ (PATROL_BLESS=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_kind_has_a_firing_and_a_quiet_fixture() {
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for case in cases() {
        let kind = case
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let expected = std::fs::read_to_string(case.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{} has no .expected file", case.display()));
        let entry = by_kind.entry(kind).or_default();
        if expected.is_empty() {
            entry.1 += 1
        } else {
            entry.0 += 1
        }
    }
    for kind in patrol::rules::kinds::KINDS {
        let (firing, quiet) = by_kind.get(kind.name).copied().unwrap_or_default();
        assert!(
            firing >= 1 && quiet >= 1,
            "kind {} has {firing} firing and {quiet} quiet fixtures",
            kind.name
        );
    }
}

#[test]
fn every_expected_file_has_its_fixture() {
    for kind in std::fs::read_dir(root().join("tests/rules")).unwrap() {
        for f in std::fs::read_dir(kind.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "expected") {
                assert!(
                    p.with_extension("toml").exists(),
                    "{} has no fixture",
                    p.display()
                );
            }
        }
    }
}

#[test]
fn the_default_library_loads_and_matches_the_built_in_copy() {
    let lib = patrol::rules::Library::load(&root().join("rules")).unwrap();
    assert!(lib.rules.len() >= 10);
    let mut files: Vec<String> = std::fs::read_dir(root().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    let built_in: Vec<&str> = patrol::rules::defaults::FILES
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        files, built_in,
        "src/rules/defaults.rs must list every file of rules/"
    );
}
