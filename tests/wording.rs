//! Findings in the reader's words: every finding the demo replay and the rule fixtures produce
//! (title, evidence and recommendation, as the report prints them) reads as a sentence, not as
//! the encoding behind it. Each fixture's scenario is replayed twice, with its own rules and with
//! the default library, so the library's templates are rendered on the data written for them.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::support::{files_under, patrol, root, succeeded};

/// The finding lines of every report under `out`: "1. **[WARNING] title** — evidence advice"
/// and the still-open list "- [INFO] title (since …)".
fn finding_lines(out: &Path) -> Vec<String> {
    let numbered = Regex::new(r"^\d+\. \*\*\[").unwrap();
    let mut lines = Vec::new();
    for f in files_under(out) {
        if f.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        lines.extend(
            text.lines()
                .filter(|l| numbered.is_match(l) || l.starts_with("- ["))
                .map(str::to_string),
        );
    }
    lines
}

/// What in one finding line betrays the encoding. Code spans (names, log lines, commands) are
/// quoted as they are and only checked for being a metric's raw name.
fn problems(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut prose = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 0 {
            prose.push_str(part);
        } else {
            prose.push_str("`X`");
            if part.contains('_') && patrol::history::catalogue::NAMES.contains(&part) {
                found.push(format!("the metric name `{part}`"));
            }
        }
    }
    let rules: [(&str, &str); 6] = [
        (r"\(limit:", "`(limit:` phrasing"),
        (r"(?i)\bflag is\b", "a flag said as a value"),
        (
            r" is (0|1|true|false)(\.(\s|$)|[^\w.%]|$)",
            "a flag or count said as `is 0`/`is 1`",
        ),
        (
            r"\b[a-z0-9_]+_(bytes|pct|total|ms|s|c)\b",
            "an encoded name (`_bytes`, `_pct`, `_total`…)",
        ),
        (r"\S  +\S", "a doubled space"),
        (r"\(\s*\)", "empty `()`"),
    ];
    for (pattern, what) in rules {
        if Regex::new(pattern).unwrap().is_match(&prose) {
            found.push(what.to_string());
        }
    }
    found
}

/// A fixture's findings replayed with its own rules and with the default library, each as the
/// report prints it: title, evidence and recommendation.
fn fixture_lines(fixture: &Path, library: &patrol::rules::Library) -> Vec<String> {
    let mut found = patrol::app::fixture_findings(fixture, None).unwrap();
    found.extend(patrol::app::fixture_findings(fixture, Some(library)).unwrap());
    found
        .iter()
        .map(|f| format!("{} — {} {}", f.title, f.evidence, f.recommendation))
        .collect()
}

fn assert_in_words(source: &str, lines: &[String], failures: &mut Vec<String>) {
    for line in lines {
        for p in problems(line) {
            failures.push(format!(
                "{source}: {p} in: {}",
                line.chars().take(200).collect::<String>()
            ));
        }
    }
}

#[test]
fn every_fixture_finding_reads_in_words() {
    let mut fixtures: Vec<PathBuf> = files_under(&root().join("tests/rules"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 50, "{} fixtures", fixtures.len());
    let library = patrol::rules::Library::load(&root().join("rules")).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for fixture in &fixtures {
        let lines = fixture_lines(fixture, &library);
        checked += lines.len();
        let name = fixture.strip_prefix(root()).unwrap().display().to_string();
        assert_in_words(&name, &lines, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} findings betray the encoding:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 100, "only {checked} finding lines found");
}

#[test]
fn every_demo_finding_reads_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    succeeded(&patrol(&["demo", "--out", out.to_str().unwrap()], &root()));
    let lines = finding_lines(&out);
    assert!(lines.len() >= 100, "only {} finding lines", lines.len());
    let mut failures = Vec::new();
    assert_in_words("demo", &lines, &mut failures);
    assert!(
        failures.is_empty(),
        "{} findings betray the encoding:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The checker catches what the test bed printed, and lets a sentence through.
#[test]
fn the_checker_catches_the_test_beds_examples() {
    for bad in [
        "1. **[WARNING] vk01 `pt-unhealthy` is unhealthy** — `pt-unhealthy` health check (1 healthy, 0 unhealthy) is 0 (limit: below 1).",
        "- [WARNING] vk01 OOM-killed flag is 1 (since Feb 18 12:00)",
        "1. **[INFO] x** — Redis `keydb/db0` keys is 0.",
        "1. **[INFO] x** — host swap_cached_bytes is 250MB.",
        "1. **[INFO] x** — reports `db_size_bytes` = 0B.",
        "1. **[INFO] x** — it is  here.",
        "1. **[INFO] x** — it is here ().",
    ] {
        assert!(!problems(bad).is_empty(), "not caught: {bad}");
    }
    for good in [
        "1. **[WARNING] vk01 `pt-unhealthy` is unhealthy** — `pt-unhealthy` is unhealthy: its health check fails, for 62 captures in a row since 06:06.",
        "1. **[INFO] x** — Redis `keydb/db0` holds no keys; GPU 0 utilisation is 0%; size is 0B; `FATAL:  database` is 1.5GB.",
    ] {
        assert_eq!(problems(good), Vec::<String>::new(), "{good}");
    }
}
