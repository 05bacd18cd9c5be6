use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::files::INDEX_MARKER;
use super::textfile::label_value;
use super::*;
use crate::ledger::{Ledger, MonthCounts, PendingSection};

#[test]
fn the_textfile_says_which_sources_answered_and_when_each_last_did() {
    let node = "odd \"name\" \\ here";
    let health = |source: &str, up: bool, last_success: Option<i64>| SourceHealth {
        node: node.to_string(),
        source: source.to_string(),
        up,
        last_success,
    };
    let text = prometheus_textfile(
        "fleet",
        &Ledger::default(),
        &[
            health("host", true, Some(2_000)),
            health("docker", false, Some(1_000)),
            health("ssh", false, None),
        ],
        DateTime::from_timestamp(2_000, 0).unwrap(),
    );
    let esc = "odd \\\"name\\\" \\\\ here";
    for line in [
        "# TYPE patrol_source_up gauge".to_string(),
        "# TYPE patrol_source_last_success_timestamp_seconds gauge".to_string(),
        format!("patrol_source_up{{fleet=\"fleet\",node=\"{esc}\",source=\"host\"}} 1"),
        format!("patrol_source_up{{fleet=\"fleet\",node=\"{esc}\",source=\"docker\"}} 0"),
        format!("patrol_source_up{{fleet=\"fleet\",node=\"{esc}\",source=\"ssh\"}} 0"),
        format!(
            "patrol_source_last_success_timestamp_seconds{{fleet=\"fleet\",node=\"{esc}\",source=\"host\"}} 2000"
        ),
        format!(
            "patrol_source_last_success_timestamp_seconds{{fleet=\"fleet\",node=\"{esc}\",source=\"docker\"}} 1000"
        ),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    assert!(!text.contains("source_last_success_timestamp_seconds{fleet=\"fleet\",node=\"odd \\\"name\\\" \\\\ here\",source=\"ssh\"}"));
}

fn pending(output: &Output, at: DateTime<Utc>, months: &[(&str, u32)]) -> PendingSection {
    let tz: Tz = "America/Sao_Paulo".parse().unwrap();
    let section = Section {
        heading_time: heading_time(at, tz, None),
        severity: "INFO".into(),
        items: vec![Item {
            severity: "INFO".into(),
            title: format!("at {at}"),
            body: "b".into(),
        }],
        still_open: vec![],
        acknowledged: vec![],
        counts: Counts {
            new: 1,
            escalated: 0,
            changed: 0,
            unchanged: 0,
            resolved: 0,
            still_open: 0,
            acknowledged: 0,
        },
    };
    let months = months
        .iter()
        .map(|(m, n)| {
            (
                m.to_string(),
                MonthCounts {
                    sections: *n,
                    new: *n,
                    resolved: 0,
                },
            )
        })
        .collect();
    render_section(output, "f", tz, at, &section, &months, None).unwrap()
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn sections_go_to_the_file_of_their_local_month_and_the_index_points_at_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let output = Output {
        dir: dir.path().to_path_buf(),
        mode: fsutil::Mode::SHARED,
    };
    // 01:00 UTC on Mar 1 is still Feb 28 in São Paulo (UTC-3).
    let feb = utc("2026-03-01T01:00:00Z");
    let p = pending(&output, feb, &[("2026-02", 1)]);
    commit_section(&output, &p).unwrap();
    let mar = utc("2026-03-01T04:00:00Z");
    let p = pending(&output, mar, &[("2026-02", 1), ("2026-03", 1)]);
    // Written twice (a crash after the first): appended once.
    commit_section(&output, &p).unwrap();
    commit_section(&output, &p).unwrap();
    let month =
        |m: &str| std::fs::read_to_string(dir.path().join(format!("improvements/{m}.md"))).unwrap();
    assert_eq!(month("2026-02").matches("\n## ").count(), 1);
    assert_eq!(month("2026-03").matches("\n## ").count(), 1);
    assert!(month("2026-03").starts_with("# f -- Live Improvements Report"));
    let index = std::fs::read_to_string(output.rolling()).unwrap();
    assert!(
        index.contains("Current month: [2026-03](improvements/2026-03.md)"),
        "{index}"
    );
    let rows: Vec<&str> = index.lines().filter(|l| l.starts_with("| [")).collect();
    assert_eq!(
        rows,
        vec![
            "| [2026-03](improvements/2026-03.md) | 1 | 1 | 0 |",
            "| [2026-02](improvements/2026-02.md) | 1 | 1 | 0 |",
        ]
    );
    assert!(
        dir.path()
            .join("reports/2026/02/2026-02-28_2200-0300.md")
            .exists()
    );
    assert!(
        dir.path()
            .join("reports/2026/03/2026-03-01_0100-0300.md")
            .exists()
    );
}

#[test]
fn a_report_from_before_monthly_files_is_kept_whole_and_linked_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let output = Output {
        dir: dir.path().to_path_buf(),
        mode: fsutil::Mode::SHARED,
    };
    let old = "# f -- Live Improvements Report\n\n## 2026-01-05 10:00 (UTC-03:00) -- INFO\nold\n";
    std::fs::write(output.rolling(), old).unwrap();
    // A section a patrol from before monthly files left pending: it ends the old report.
    let legacy = PendingSection {
        rolling_path: None,
        index_text: None,
        ..pending(&output, utc("2026-01-06T13:00:00Z"), &[])
    };
    commit_section(&output, &legacy).unwrap();
    let p = pending(&output, utc("2026-02-01T13:00:00Z"), &[("2026-02", 1)]);
    commit_section(&output, &p).unwrap();
    let kept = std::fs::read_to_string(output.earlier()).unwrap();
    assert!(kept.starts_with(old), "the old report is kept unchanged");
    assert_eq!(kept.matches("\n## ").count(), 2, "with the pending section");
    let index = std::fs::read_to_string(output.rolling()).unwrap();
    assert!(index.starts_with(INDEX_MARKER));
    assert!(index.contains("| [before monthly files](improvements/earlier.md) | | | |"));
    // The index, now in place, is never taken for an old report.
    let p = pending(&output, utc("2026-02-02T13:00:00Z"), &[("2026-02", 2)]);
    commit_section(&output, &p).unwrap();
    assert!(!dir.path().join("improvements/earlier-2.md").exists());
}

#[test]
fn dated_files_older_than_the_cutoff_go_with_their_empty_folders() {
    let dir = tempfile::tempdir().unwrap();
    let output = Output {
        dir: dir.path().to_path_buf(),
        mode: fsutil::Mode::SHARED,
    };
    let files = [
        "reports/2025-12-30_1000-0300.md",
        "reports/2026/01/2026-01-30_2300-0300.md",
        "reports/2026/01/2026-01-31_2300-0300_2.md",
        "reports/2026/02/2026-02-01_0000-0300.md",
        "reports/2026/02/2026-02-20_1000-0300.md",
    ];
    for f in files {
        let p = dir.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "x").unwrap();
    }
    std::fs::write(dir.path().join("reports/notes.txt"), "mine").unwrap();
    // 2026-02-01 02:00 UTC is Jan 31 23:00 in São Paulo.
    let deleted = prune_dated(&output, utc("2026-02-01T02:30:00Z")).unwrap();
    assert_eq!(deleted, 3);
    let left: Vec<bool> = files.iter().map(|f| dir.path().join(f).exists()).collect();
    assert_eq!(left, vec![false, false, false, true, true]);
    assert!(
        !dir.path().join("reports/2026/01").exists(),
        "empty month folder removed"
    );
    assert!(
        dir.path().join("reports/notes.txt").exists(),
        "other files stay"
    );
}

#[test]
fn label_values_escape_exactly_what_the_exposition_format_escapes() {
    assert_eq!(label_value("a\\b\"c\nd\te"), "a\\\\b\\\"c\\nd e");
}

fn finding(title: &str) -> crate::model::Finding {
    crate::model::Finding {
        rule_id: "leak".into(),
        kind: "growth-rate".into(),
        severity: crate::model::Severity::Warning,
        nodes: vec!["vk01".into()],
        scope: None,
        entity: "container:db".into(),
        metric: "mem_used_bytes".into(),
        observed_at: utc("2026-02-23T03:00:00Z"),
        title: title.into(),
        evidence: "evidence.".into(),
        recommendation: String::new(),
        values: std::collections::BTreeMap::new(),
        event: false,
        event_id: None,
        lifecycle: Default::default(),
        context: std::collections::BTreeMap::new(),
        members: Vec::new(),
        facets: Vec::new(),
    }
}

#[test]
fn every_since_of_a_section_is_the_episodes_and_a_reopened_finding_says_when_it_resolved() {
    use crate::ledger::{Episode, Outcome, Reason, Reported, Resolved, StillOpen};
    let first = utc("2026-02-18T21:00:00Z");
    let back = Episode {
        start: utc("2026-02-23T03:00:00Z"),
        back_after: Some(utc("2026-02-22T21:15:00Z")),
    };
    let reported = |title: &str, reason: Reason| Reported {
        finding: finding(title),
        reason,
        first_seen: first,
        episode: back,
        deployment: None,
        leaves_unchecked: 0,
    };
    let outcome = Outcome {
        reported: vec![
            reported(
                "leak",
                Reason::Escalated {
                    why: "worse".into(),
                },
            ),
            reported(
                "no limit (5.4GB in use)",
                Reason::Unchanged {
                    since: back.start,
                    nth: 2,
                    then: vec![("usage".into(), "1.02GB".into())],
                },
            ),
        ],
        resolved: vec![Resolved {
            finding: finding("gone"),
            first_seen: first,
            episode: back,
            resolved_at: utc("2026-02-23T04:00:00Z"),
            now: None,
        }],
        still_open: vec![StillOpen {
            finding: finding("idle"),
            unchecked_since: None,
            first_seen: first,
            episode: back,
        }],
        acknowledged: vec![],
    };
    let tz = chrono_tz::UTC;
    let s = crate::report::build_section(&outcome, None, back.start, tz, None).unwrap();
    assert_eq!(
        s.items[0].body,
        "Open since Feb 23 03:00, back after resolving at Feb 22 21:15. evidence."
    );
    assert_eq!(
        s.items[1].title,
        "no limit (5.4GB in use) — open since Feb 23 03:00 (usage 1.02GB then), 2nd report"
    );
    assert!(
        s.items[2]
            .body
            .contains("(back at Feb 23 03:00 after resolving at Feb 22 21:15) no longer holds; it was open for 60 min"),
        "{}",
        s.items[2].body
    );
    assert_eq!(
        s.still_open,
        vec!["[WARNING] idle (since Feb 23 03:00, back after resolving at Feb 22 21:15)"]
    );
    assert_eq!((s.counts.changed, s.counts.unchanged), (1, 0));
}
