//! Rule fixtures: tests/rules/<kind>/<case>.toml is a scenario with its rule instances; the
//! findings a replay produces must equal <case>.expected. `PATROL_BLESS=1 cargo test` rewrites
//! the expected files after a deliberate change.

use std::path::PathBuf;

use crate::support::{blessing, patrol, root, text};

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

/// `patrol rules test` over the project's fixtures, as a user runs it: every fixture gives its
/// expected findings, and every kind has a firing and a quiet case.
#[test]
fn patrol_rules_test_passes_with_every_kind_covered() {
    let mut args = vec!["rules", "test", "tests/rules"];
    if blessing() {
        args.push("--bless");
    }
    let out = patrol(&args, &root());
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "fixtures differ (PATROL_BLESS=1 to accept):\n{}{}",
        stdout
            .lines()
            .filter(|l| !l.starts_with("ok "))
            .collect::<Vec<_>>()
            .join("\n"),
        text(&out.stderr)
    );
    let kinds = patrol::rules::kinds::KINDS.len();
    assert!(
        stdout.contains(" passed, 0 failed\n")
            && stdout.contains(&format!(
                "{kinds} of {kinds} kinds have a firing and a quiet fixture"
            )),
        "{stdout}"
    );
    assert_eq!(
        cases().len(),
        stdout.lines().filter(|l| l.starts_with("ok ")).count()
    );
}

#[test]
fn a_changed_expectation_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let case = root().join("tests/rules/threshold/writable-layer-large.toml");
    let copy = dir.path().join("threshold/case.toml");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&case, &copy).unwrap();
    std::fs::write(copy.with_extension("expected"), "something else\n").unwrap();
    let out = patrol(&["rules", "test", dir.path().to_str().unwrap()], &root());
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAIL") && stdout.contains("- something else"),
        "{stdout}"
    );
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
