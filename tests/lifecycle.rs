//! The lifecycle text is true (issue 15, item 4): every "since" counts from the finding's
//! current episode, "unchanged since X" is said only of what printed the same at X, and a count
//! "since X" starts at X. Checked on the demo's examples and, as a property, on the report of
//! every scenario in the repository.

use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{NaiveDate, NaiveDateTime};

use crate::support::{patrol, rolling_report, root, succeeded};

/// A section template from before the still-open summary: it lists every still-open finding,
/// so each "since" and count is checked in every section (and a fleet's override of that age
/// keeps working).
const FULL_LIST_TEMPLATE: &str = "
## {{ section.heading_time }} -- {{ section.severity }}
{% for item in section.items %}
{{ loop.index }}. **[{{ item.severity }}] {{ item.title }}** — {{ item.body }}
{% endfor %}
{% if section.still_open %}

Still open ({{ section.still_open | length }}):

{% for line in section.still_open %}
- {{ line }}
{% endfor %}
{% endif %}
";

fn demo() -> &'static str {
    static REPORT: OnceLock<String> = OnceLock::new();
    REPORT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("report-templates");
        std::fs::create_dir(&templates).unwrap();
        std::fs::write(templates.join("section.md.j2"), FULL_LIST_TEMPLATE).unwrap();
        let out = dir.path().join("demo");
        let (archive, rules) = (root().join("snapshots/demo"), root().join("rules"));
        succeeded(&patrol(
            &[
                "demo",
                "--archive",
                archive.to_str().unwrap(),
                "--rules",
                rules.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            dir.path(),
        ));
        let report = rolling_report(&out);
        assert!(report.contains("\n\nStill open ("), "the override is used");
        report
    })
}

/// One section of a rolling report: its local time, its items (title, body) and its
/// still-open lines.
struct Section {
    at: NaiveDateTime,
    items: Vec<(String, String)>,
    still_open: Vec<String>,
}

fn sections(report: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in report.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            let stamp: String = h.chars().take(16).collect();
            let Ok(at) = NaiveDateTime::parse_from_str(&stamp, "%Y-%m-%d %H:%M") else {
                continue;
            };
            out.push(Section {
                at,
                items: Vec::new(),
                still_open: Vec::new(),
            });
        } else if let Some(s) = out.last_mut() {
            if let Some(rest) = line.split_once(". **[").map(|(_, r)| r)
                && line.starts_with(|c: char| c.is_ascii_digit())
                && let Some((title, body)) = rest.split_once("** — ")
            {
                let title = title.split_once("] ").map_or(title, |(_, t)| t);
                s.items.push((title.to_string(), body.to_string()));
            } else if let Some(rest) = line.strip_prefix("- [") {
                s.still_open
                    .push(rest.split_once("] ").map_or(rest, |(_, t)| t).to_string());
            }
        }
    }
    out
}

/// A printed time ("Feb 22 17:30", or "17:30" on the day of `at`) as a local time.
fn when(text: &str, at: NaiveDateTime) -> Option<NaiveDateTime> {
    let text = text.split(" (UTC").next()?.trim();
    let year = at.format("%Y").to_string();
    NaiveDateTime::parse_from_str(&format!("{year} {text}"), "%Y %b %d %H:%M")
        .ok()
        .or_else(|| {
            let t = chrono::NaiveTime::parse_from_str(text, "%H:%M").ok()?;
            Some(NaiveDate::and_time(&at.date(), t))
        })
}

/// The text after `marker` up to the first of `ends`.
fn after<'a>(text: &'a str, marker: &str, ends: &[&str]) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let end = ends
        .iter()
        .filter_map(|e| rest.find(e))
        .min()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// A title with its numbers blanked, so one finding is recognised while its values move
/// (names like `vk01`, `db0`, `camera-agent-1` keep their digits).
fn skeleton(title: &str) -> String {
    let mut out = String::new();
    let mut prev = ' ';
    let mut in_number = false;
    for c in title.chars() {
        let starts = !(prev.is_alphanumeric() || prev == '_' || prev == '-' || prev == '/');
        if c.is_ascii_digit() && (in_number || starts) {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else if in_number && (c == '.' || c == ',') {
        } else {
            in_number = false;
            out.push(c);
        }
        prev = c;
    }
    out
}

const SUFFIXES: [&str; 4] = [
    " — escalated: ",
    " — changed: ",
    " — unchanged since ",
    " — open since ",
];

fn bare(title: &str) -> &str {
    SUFFIXES
        .iter()
        .filter_map(|s| title.find(s))
        .min()
        .map_or(title, |i| &title[..i])
}

/// Every lifecycle claim of a report that does not hold, described without the report's text
/// beyond the finding's title.
fn lifecycle_problems(report: &str) -> Vec<String> {
    let sections = sections(report);
    let mut problems = Vec::new();
    // Per finding (title skeleton): when its current episode started, and when it last resolved.
    let mut episode: std::collections::BTreeMap<String, NaiveDateTime> = Default::default();
    let mut resolved: std::collections::BTreeMap<String, NaiveDateTime> = Default::default();
    for (i, s) in sections.iter().enumerate() {
        for (title, body) in &s.items {
            if let Some(t) = title.strip_prefix("Resolved: ") {
                resolved.insert(skeleton(t), s.at);
                episode.remove(&skeleton(t));
                continue;
            }
            let key = skeleton(bare(title));
            let is_new = bare(title) == title && !body.starts_with("The acknowledgement");
            if is_new {
                episode.insert(key.clone(), s.at);
            }
            if let Some(t) = after(body, "Open since ", &[",", ". "]) {
                check_since(
                    &mut problems,
                    title,
                    when(t, s.at),
                    &key,
                    &episode,
                    &resolved,
                );
            }
            if let Some(x) = after(title, " — unchanged since ", &[","]) {
                let at_x = when(x, s.at);
                let then = sections[..i].iter().rev().find(|p| Some(p.at) == at_x);
                let same =
                    then.is_some_and(|p| p.items.iter().any(|(t, _)| bare(t) == bare(title)));
                if !same {
                    problems.push(format!(
                        "{}: \"{}\" is said unchanged since {x}, but it did not print so then",
                        s.at,
                        bare(title)
                    ));
                }
            }
        }
        for line in &s.still_open {
            let Some(i) = line.rfind(" (since ") else {
                continue;
            };
            let title = &line[..i];
            let t = after(line, " (since ", &[",", ")"]);
            let key = skeleton(title);
            check_since(
                &mut problems,
                title,
                t.and_then(|t| when(t, s.at)),
                &key,
                &episode,
                &resolved,
            );
        }
    }
    problems
}

fn check_since(
    problems: &mut Vec<String>,
    title: &str,
    since: Option<NaiveDateTime>,
    key: &str,
    episode: &std::collections::BTreeMap<String, NaiveDateTime>,
    resolved: &std::collections::BTreeMap<String, NaiveDateTime>,
) {
    let Some(since) = since else {
        problems.push(format!("\"{title}\": a since that does not read as a time"));
        return;
    };
    if let Some(r) = resolved.get(key)
        && since < *r
    {
        problems.push(format!(
            "\"{title}\" is open since {since}, before it resolved at {r}"
        ));
    }
    if let Some(e) = episode.get(key)
        && since != *e
    {
        problems.push(format!(
            "\"{title}\" is open since {since}, but its episode started at {e}"
        ));
    }
}

#[test]
fn the_demo_never_calls_a_repeat_unchanged_when_its_numbers_moved() {
    let r = demo();
    assert!(
        !r.contains("(5.4GB in use) — unchanged since Feb 18 12:00"),
        "5.4GB in use is not what it printed at Feb 18 12:00"
    );
    assert!(
        r.contains(
            "`database-server` has no memory limit (1.81GB in use) on 2 of 2 `processing` nodes (as on vk01) — open since Feb 18 12:00 (usage 1.3GB then), 2nd report"
        ),
        "the repeat says what it printed then"
    );
}

#[test]
fn the_demo_counts_lost_messages_over_the_episode_not_the_sliding_window() {
    let r = demo();
    let mut last: Option<(NaiveDateTime, f64)> = None;
    let mut seen = 0;
    for s in sections(r) {
        let lines = s
            .items
            .iter()
            .map(|(t, _)| t.as_str())
            .chain(s.still_open.iter().map(String::as_str));
        for line in lines.filter(|l| l.contains("`rabbitmq/dw-sis-surface` delivered ")) {
            let count: f64 = after(line, " delivered ", &[" "])
                .unwrap()
                .replace(',', "")
                .parse()
                .unwrap();
            let since = when(after(line, " messages since ", &[" while"]).unwrap(), s.at).unwrap();
            if let Some((from, total)) = last {
                assert_eq!(from, since, "the count keeps its start (section {})", s.at);
                assert!(
                    count >= total,
                    "the count since {since} went down from {total} to {count} at {}",
                    s.at
                );
            }
            last = Some((since, count));
            seen += 1;
        }
    }
    assert!(
        seen > 20,
        "the demo's lost-messages finding is followed ({seen} lines)"
    );
    assert_eq!(
        last.map(|(_, n)| n),
        Some(106_687.0),
        "all 106,687 lost messages are counted to the end"
    );
}

/// The issue's examples, as they were printed: the checker finds each.
fn the_checker_catches_the_issues_lifecycle_examples() {
    let report = "\
## 2026-02-18 12:00 (UTC-03:00) -- INFO

1. **[SUGGESTION] vk02 `database-server` has no memory limit (1.02GB in use)** — b

## 2026-02-19 12:00 (UTC-03:00) -- INFO

1. **[SUGGESTION] vk02 `database-server` has no memory limit (5.4GB in use) — unchanged since Feb 18 12:00, 2nd report** — b

## 2026-02-22 18:00 (UTC-03:00) -- INFO

1. **[INFO] Resolved: vk01 leak** — b
2. **[INFO] vk01 GPU idle** — b

## 2026-02-23 00:00 (UTC-03:00) -- INFO

1. **[INFO] vk01 leak** — Back at Feb 23 00:00 after resolving at Feb 22 18:00. b

## 2026-02-23 01:00 (UTC-03:00) -- INFO

1. **[INFO] vk01 leak — changed: x** — Open since Feb 22 12:00. b

Still open (1):

- [INFO] vk01 GPU idle (since Feb 18 18:00)
";
    let problems = lifecycle_problems(report);
    assert_eq!(problems.len(), 4, "{problems:#?}");
}

/// The property over every scenario in the repository: the demo archive and every
/// `scenarios/*.toml`, simulated and replayed.
#[test]
fn every_scenarios_lifecycle_text_is_true() {
    the_checker_catches_the_issues_lifecycle_examples();
    let mut reports = vec![("demo".to_string(), demo().to_string())];
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 2, "{scenarios:?}");
    for scenario in &scenarios {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        let out = dir.path().join("out");
        let (a, o) = (archive.to_str().unwrap(), out.to_str().unwrap());
        succeeded(&patrol(
            &["simulate", scenario.to_str().unwrap(), "--out", a],
            &root(),
        ));
        succeeded(&patrol(&["demo", "--archive", a, "--out", o], &root()));
        let name = scenario.file_name().unwrap().to_string_lossy().into_owned();
        reports.push((name, rolling_report(&out)));
    }
    let written = reports.iter().filter(|(_, r)| r.contains("\n## ")).count();
    assert!(written >= 2, "the demo and a scenario wrote sections");
    for (name, report) in &reports {
        let problems = lifecycle_problems(report);
        assert!(
            problems.is_empty(),
            "{name}: {} untrue lifecycle claims: {problems:#?}",
            problems.len()
        );
    }
}
