//! docs/scenario-format.md says, for every rule kind, which scenario keys produce the data it
//! reads: a kind added without saying how a scenario drives it cannot be tested on a fleet.

use std::collections::BTreeSet;

use patrol::rules::kinds::KINDS;

use crate::support::root;

/// The kinds named in the first column of the "What drives each rule kind" table.
fn kinds_in_table(doc: &str) -> BTreeSet<String> {
    let section = doc
        .split("\n## What drives each rule kind\n")
        .nth(1)
        .map(|rest| rest.split("\n## ").next().unwrap_or(rest))
        .unwrap_or_default();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .filter(|(_, keys)| !keys.trim().trim_end_matches('|').trim().is_empty())
        .map(|(kind, _)| kind.to_string())
        .collect()
}

#[test]
fn every_rule_kind_says_which_scenario_keys_drive_it() {
    let path = root().join("docs/scenario-format.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let table = kinds_in_table(&doc);
    let kinds: BTreeSet<String> = KINDS.iter().map(|k| k.name.to_string()).collect();
    let missing: Vec<_> = kinds.difference(&table).collect();
    let unknown: Vec<_> = table.difference(&kinds).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/scenario-format.md, \"What drives each rule kind\": kinds without their keys {missing:?}, rows for no kind {unknown:?}"
    );
}
