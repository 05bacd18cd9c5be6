//! The kind registry against what lives around it: docs/rules.md lists exactly the registered
//! kinds, and each kind has its code and doc named after its id and a fixture directory. Adding
//! or renaming a kind in one place and not the others fails here.

use std::collections::BTreeSet;
use std::path::Path;

use patrol::rules::kinds::KINDS;

use crate::support::root;

fn registered() -> BTreeSet<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

/// The kinds of docs/rules.md's "## Kinds" table: the first cell of each row, in backticks.
fn documented(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_kinds = false;
    for line in text.lines() {
        if line.starts_with("## ") {
            in_kinds = line.trim() == "## Kinds";
            continue;
        }
        if !in_kinds {
            continue;
        }
        if let Some(rest) = line.strip_prefix("| `")
            && let Some((kind, _)) = rest.split_once('`')
        {
            out.push(kind.to_string());
        }
    }
    out
}

/// Names in `dir` with the extension `ext` (without it), or directories when `ext` is `None`.
fn entries(dir: &Path, ext: Option<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let keep = match ext {
            None => p.is_dir(),
            Some(x) => p.is_file() && p.extension().is_some_and(|e| e == x),
        };
        if keep && let Some(stem) = p.file_stem() {
            out.insert(stem.to_string_lossy().to_string());
        }
    }
    out
}

#[test]
fn docs_rules_lists_every_registered_kind_and_nothing_else() {
    let text = std::fs::read_to_string(root().join("docs/rules.md")).unwrap();
    let listed = documented(&text);
    let unique: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "docs/rules.md lists a kind twice"
    );
    let kinds = registered();
    let missing: Vec<&&str> = kinds.difference(&unique).collect();
    let extra: Vec<&&str> = unique.difference(&kinds).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/rules.md's kind table: missing {missing:?}, not registered {extra:?}"
    );
}

#[test]
fn every_kind_has_its_code_doc_and_fixtures_named_after_its_id() {
    let kinds_dir = root().join("src/rules/kinds");
    let modules: BTreeSet<String> = registered().iter().map(|k| k.replace('-', "_")).collect();
    let mut code = entries(&kinds_dir, Some("rs"));
    code.remove("mod");
    assert_eq!(
        code, modules,
        "src/rules/kinds/*.rs must be the registered kinds' ids with `_` for `-`"
    );
    assert_eq!(
        entries(&kinds_dir, Some("md")),
        modules,
        "src/rules/kinds/*.md must be the registered kinds' ids with `_` for `-`"
    );
    let fixtures: BTreeSet<String> = registered().iter().map(|k| k.to_string()).collect();
    assert_eq!(
        entries(&root().join("tests/rules"), None),
        fixtures,
        "tests/rules/ must hold one directory per registered kind, named by its id"
    );
}
