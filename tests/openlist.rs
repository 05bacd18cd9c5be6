//! Headings and lists that inform (issue 16, item 5): a section sums up what is still open in
//! a line and five findings, and `open.md`, rewritten by every analysis, lists them all by node.
//! Checked on the demo: open.md exists, groups by node, and lists as many findings as the last
//! section counts (every open one, those it reports above its summary included).

use std::collections::BTreeMap;

use crate::support::{patrol, rolling_report, root, succeeded};

/// "vk01 37, vk02 21, fleet 3" as counts.
fn counts(text: &str) -> BTreeMap<String, usize> {
    text.split(", ")
        .map(|part| {
            let (name, n) = part.rsplit_once(' ').unwrap();
            (name.to_string(), n.parse().unwrap())
        })
        .collect()
}

#[test]
fn the_demo_writes_open_md_by_node_with_as_many_findings_as_the_last_section_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    succeeded(&patrol(&["demo", "--out", out.to_str().unwrap()], &root()));
    let report = rolling_report(&out);
    let open = std::fs::read_to_string(out.join("open.md")).expect("open.md is written");
    let last = report.rsplit("\n## ").next().unwrap();

    // The section: "S still open: … — vk01 a, …", at most five lines, the link to the rest.
    let summary = last
        .lines()
        .find(|l| l.contains(" still open: "))
        .expect("the last section sums up what is still open");
    let still: usize = summary.split(' ').next().unwrap().parse().unwrap();
    let by_node = counts(summary.split(" — ").nth(1).unwrap().trim_end_matches('.'));
    assert_eq!(by_node.values().sum::<usize>(), still, "{summary}");
    let named = last.lines().filter(|l| l.starts_with("- [")).count();
    assert_eq!(named, 5, "five still-open findings are named");
    // The findings the section reports in full stay open too (the demo's last reports none
    // that resolve or is an event): the summary counts them, the list names others.
    let reported = last
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(". **["))
        .filter(|l| !l.contains("] Resolved: "))
        .count();
    let more = last
        .lines()
        .find(|l| l.starts_with("…and "))
        .expect("the rest is linked");
    assert!(
        more.contains(&format!(
            "…and {} more in [open.md](../open.md)",
            still - reported - 5
        )),
        "{more}: the items above, the five named and the rest add up to {still}"
    );
    assert!(
        out.join("improvements/../open.md").exists(),
        "the link resolves"
    );
    let total = still;

    // open.md: exactly as many findings as that, under one heading per node, the fleet last.
    assert!(
        open.contains(&format!(": {total} open (")) && open.contains(", 0 acknowledged."),
        "open.md says how many it lists"
    );
    assert!(open.contains("Written by the analysis of the capture at 2026-02-23"));
    let lines: Vec<&str> = open.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(lines.len(), total, "open.md lists every open finding once");
    let mut groups: Vec<(String, usize, usize)> = Vec::new();
    for line in open.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            let (name, count) = h.split_once(" (").unwrap();
            let n: usize = count.split(' ').next().unwrap().parse().unwrap();
            groups.push((name.to_string(), n, 0));
        } else if line.starts_with("- [") {
            let (name, _, listed) = groups.last_mut().expect("a line under a heading");
            *listed += 1;
            if name.as_str() != "Fleet" {
                assert!(
                    line.contains(&format!("] {name} ")) || line.contains(&format!("] {name}: ")),
                    "a line of open.md under {name} is about another node"
                );
            }
        }
    }
    let names: Vec<&str> = groups.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, vec!["vk01", "vk02", "vk03", "Fleet"]);
    for (name, said, listed) in &groups {
        assert_eq!(said, listed, "the heading of {name} counts its lines");
        let in_summary = by_node
            .get(if name == "Fleet" { "fleet" } else { name })
            .copied()
            .unwrap_or(0);
        assert!(
            listed >= &in_summary,
            "{name}: open.md lists fewer than the summary counts"
        );
    }
    // Worst first within a node.
    let rank = |l: &str| {
        ["- [WARNING]", "- [INFO]", "- [SUGGESTION]"]
            .iter()
            .position(|p| l.starts_with(p))
            .unwrap()
    };
    for group in open.split("\n## ").skip(1) {
        let ranks: Vec<usize> = group
            .lines()
            .filter(|l| l.starts_with("- ["))
            .map(rank)
            .collect();
        assert!(
            ranks.windows(2).all(|w| w[0] <= w[1]),
            "worst first in {group}"
        );
    }
}
