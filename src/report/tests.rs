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
        open_summary: String::new(),
        open_top: vec![],
        open_top_same_as: String::new(),
        open_top_keys: vec![],
        open_same_as: String::new(),
        open_hash: 0,
        counts_text: String::new(),
        open_more: 0,
        open_total: 0,
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
        raised_in_steady_rest: Default::default(),
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
        recommendation_told: false,
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
    let s =
        crate::report::build_section(&outcome, &Ledger::default(), back.start, tz, None).unwrap();
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

fn finding_on(
    title: &str,
    severity: crate::model::Severity,
    nodes: &[&str],
) -> crate::model::Finding {
    crate::model::Finding {
        severity,
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        entity: format!("container:{title}"),
        ..finding(title)
    }
}

fn reported(f: crate::model::Finding, reason: crate::ledger::Reason) -> crate::ledger::Reported {
    let start = utc("2026-02-23T03:00:00Z");
    crate::ledger::Reported {
        finding: f,
        reason,
        first_seen: start,
        episode: crate::ledger::Episode {
            start,
            back_after: None,
        },
        deployment: None,
        leaves_unchecked: 0,
        recommendation_told: false,
    }
}

fn still(
    f: crate::model::Finding,
    start: &str,
    unchecked_since: Option<&str>,
) -> crate::ledger::StillOpen {
    crate::ledger::StillOpen {
        unchecked_since: unchecked_since.map(utc),
        first_seen: utc(start),
        episode: crate::ledger::Episode {
            start: utc(start),
            back_after: None,
        },
        finding: f,
    }
}

#[test]
fn a_heading_carries_its_worst_new_item_never_what_is_merely_still_open() {
    use crate::ledger::{Outcome, Reason, Recheck, Resolved};
    use crate::model::Severity::{Info, Suggestion, Warning};
    let at = utc("2026-02-23T04:00:00Z");
    let leak = finding_on("leak", Warning, &["vk01"]);
    // A ledger that holds an open WARNING, and the analysis after it: the WARNING is still
    // open, an INFO is new.
    let mut ledger = Ledger::default();
    ledger.update(vec![leak.clone()], utc("2026-02-23T03:45:00Z"), |_| {
        Recheck::Holds
    });
    let outcome = ledger.update(
        vec![leak.clone(), finding_on("new", Info, &["vk01"])],
        at,
        |_| Recheck::Holds,
    );
    assert_eq!((outcome.reported.len(), outcome.still_open.len()), (1, 1));
    let s = build_section(&outcome, &ledger, at, chrono_tz::UTC, None).unwrap();
    assert_eq!(
        s.severity, "INFO",
        "the still-open WARNING does not head it"
    );
    let open_warning = outcome.still_open.clone();
    let heading = |reported: Vec<crate::ledger::Reported>, resolved: usize| {
        let outcome = Outcome {
            reported,
            resolved: (0..resolved)
                .map(|_| Resolved {
                    finding: finding_on("gone", Warning, &["vk02"]),
                    first_seen: at,
                    episode: crate::ledger::Episode {
                        start: at,
                        back_after: None,
                    },
                    resolved_at: at,
                    now: None,
                })
                .collect(),
            still_open: open_warning.clone(),
            acknowledged: vec![],
        };
        build_section(&outcome, &ledger, at, chrono_tz::UTC, None)
            .unwrap()
            .severity
    };
    let changed = || Reason::Changed { what: "x".into() };
    // New and escalated items decide even when a repeat is worse.
    assert_eq!(
        heading(
            vec![
                reported(finding_on("new", Suggestion, &["vk01"]), Reason::New),
                reported(finding_on("moved", Warning, &["vk02"]), changed()),
            ],
            0
        ),
        "SUGGESTION"
    );
    assert_eq!(
        heading(
            vec![
                reported(finding_on("new", Info, &["vk01"]), Reason::New),
                reported(
                    finding_on("worse", Warning, &["vk02"]),
                    Reason::Escalated { why: "w".into() }
                ),
            ],
            0
        ),
        "WARNING"
    );
    // Only repeats and resolutions: the worst of them (a resolution is INFO).
    assert_eq!(
        heading(
            vec![reported(
                finding_on("moved", Suggestion, &["vk02"]),
                changed()
            )],
            0
        ),
        "SUGGESTION"
    );
    assert_eq!(
        heading(
            vec![reported(
                finding_on("moved", Suggestion, &["vk02"]),
                changed()
            )],
            1
        ),
        "INFO"
    );
    assert_eq!(heading(vec![], 1), "INFO");
    assert_eq!(
        heading(
            vec![reported(finding_on("moved", Warning, &["vk02"]), changed())],
            1
        ),
        "WARNING"
    );
}

/// Eight findings still open on two nodes and the fleet, one reported in full, one acknowledged.
fn busy_outcome() -> crate::ledger::Outcome {
    use crate::model::Severity::{Info, Suggestion, Warning};
    let mut fleet = finding_on("drift", Info, &["vk01", "vk02"]);
    fleet.scope = Some("processing".into());
    crate::ledger::Outcome {
        reported: vec![reported(
            finding_on("vk02 reported", Warning, &["vk02"]),
            crate::ledger::Reason::New,
        )],
        resolved: vec![],
        still_open: vec![
            still(
                finding_on("vk01 old warning", Warning, &["vk01"]),
                "2026-02-18T12:00:00Z",
                None,
            ),
            still(
                finding_on("vk01 new warning", Warning, &["vk01"]),
                "2026-02-22T21:00:00Z",
                None,
            ),
            still(
                finding_on("vk01 blind warning", Warning, &["vk01"]),
                "2026-02-22T22:00:00Z",
                Some("2026-02-23T01:00:00Z"),
            ),
            still(
                finding_on("vk02 info", Info, &["vk02"]),
                "2026-02-20T12:00:00Z",
                None,
            ),
            still(fleet, "2026-02-19T12:00:00Z", None),
            still(
                finding_on("vk01 info", Info, &["vk01"]),
                "2026-02-21T12:00:00Z",
                None,
            ),
            still(
                finding_on("vk02 hint", Suggestion, &["vk02"]),
                "2026-02-18T12:00:00Z",
                None,
            ),
            still(
                finding_on("vk01 hint", Suggestion, &["vk01"]),
                "2026-02-18T12:00:00Z",
                None,
            ),
        ],
        acknowledged: vec![crate::ledger::Acknowledged {
            finding: finding_on("vk01 known", Warning, &["vk01"]),
            owner: "ops".into(),
            reason: "planned".into(),
            expires: "2026-03-01".into(),
        }],
    }
}

#[test]
fn still_open_is_a_summary_the_five_most_important_and_a_link_to_the_rest() {
    let at = utc("2026-02-23T04:00:00Z");
    let tz = chrono_tz::UTC;
    let s = build_section(&busy_outcome(), &Ledger::default(), at, tz, None).unwrap();
    // Every open finding, the one reported above the summary included: the same 9 as
    // `open_total` ("the same 9 as at …" in the next section) and open.md.
    assert_eq!(
        s.open_summary,
        "9 still open: 4 WARNING, 3 INFO, 2 SUGGESTION — vk01 5, vk02 3, fleet 1"
    );
    // Severity first; checked before could-not-check; newest episode first.
    assert_eq!(
        s.open_top,
        vec![
            "[WARNING] vk01 new warning (since Feb 22 21:00)",
            "[WARNING] vk01 old warning (since Feb 18 12:00)",
            "[WARNING] vk01 blind warning (could not check since Feb 23 01:00)",
            "[INFO] vk01 info (since Feb 21 12:00)",
            "[INFO] vk02 info (since Feb 20 12:00)",
        ]
    );
    assert_eq!((s.open_more, s.open_total, s.counts.still_open), (3, 9, 8));
    let dir = tempfile::tempdir().unwrap();
    let output = Output {
        dir: dir.path().to_path_buf(),
        mode: fsutil::Mode::SHARED,
    };
    let p = render_section(&output, "f", tz, at, &s, &Default::default(), None).unwrap();
    let more = "…and 3 more in [open.md](../open.md).";
    assert!(p.rolling_text.contains(more), "{}", p.rolling_text);
    assert!(
        p.dated_text.contains("[open.md](../../../open.md)"),
        "the dated file links open.md from reports/YYYY/MM/"
    );
    assert_eq!(
        p.rolling_text.matches("\n- [").count(),
        5 + 1,
        "five open, one acknowledged"
    );
    for hidden in ["drift", "vk01 hint", "vk02 hint"] {
        assert!(
            !p.rolling_text.contains(hidden),
            "{hidden} is left to open.md"
        );
    }
}

#[test]
fn a_section_with_few_open_findings_names_them_all_and_no_more() {
    let mut outcome = busy_outcome();
    outcome.still_open.truncate(2);
    outcome.acknowledged.clear();
    let at = utc("2026-02-23T04:00:00Z");
    let s = build_section(&outcome, &Ledger::default(), at, chrono_tz::UTC, None).unwrap();
    assert_eq!(s.open_summary, "3 still open: 3 WARNING — vk01 2, vk02 1");
    assert_eq!((s.open_top.len(), s.open_more), (2, 0));
    let dir = tempfile::tempdir().unwrap();
    let output = Output {
        dir: dir.path().to_path_buf(),
        mode: fsutil::Mode::SHARED,
    };
    let p = render_section(
        &output,
        "f",
        chrono_tz::UTC,
        at,
        &s,
        &Default::default(),
        None,
    )
    .unwrap();
    assert!(
        p.rolling_text
            .contains("\n3 still open: 3 WARNING — vk01 2, vk02 1.\n")
    );
    assert!(!p.rolling_text.contains("more in [open.md]"));
}

#[test]
fn open_md_lists_every_open_and_acknowledged_finding_by_node_fleet_last() {
    let at = utc("2026-02-23T04:00:00Z");
    let text = render_open("f", chrono_tz::UTC, at, &busy_outcome(), &Ledger::default());
    assert!(text.starts_with("# f -- Open findings\n"), "{text}");
    assert!(
        text.contains("Written by the analysis of the capture at 2026-02-23 04:00 (UTC+00:00): 9 open (4 WARNING, 3 INFO, 2 SUGGESTION), 1 acknowledged."),
        "{text}"
    );
    let headings: Vec<&str> = text.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(
        headings,
        vec![
            "## vk01 (5 open, 1 acknowledged)",
            "## vk02 (3 open)",
            "## Fleet (1 open)"
        ]
    );
    let vk02: Vec<&str> = text
        .split("## vk02")
        .nth(1)
        .unwrap()
        .split("## Fleet")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("- "))
        .collect();
    assert_eq!(
        vk02,
        vec![
            "- [WARNING] vk02 reported (since Feb 23 03:00)",
            "- [INFO] vk02 info (since Feb 20 12:00)",
            "- [SUGGESTION] vk02 hint (since Feb 18 12:00)",
        ]
    );
    assert!(
        text.contains("- acknowledged: [WARNING] vk01 known (ops: planned; until 2026-03-01)\n")
    );
    assert!(text.contains("- [WARNING] vk01 blind warning (could not check since Feb 23 01:00)\n"));
    assert!(
        text.ends_with("## Fleet (1 open)\n\n- [INFO] drift (since Feb 19 12:00)\n"),
        "{text}"
    );
    assert_eq!(text.lines().filter(|l| l.starts_with("- ")).count(), 10);
}

#[test]
fn open_md_is_written_atomically_with_the_reports_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let output = Output {
        dir: dir.path().join("out"),
        mode: fsutil::Mode::Shared(0o600),
    };
    let at = utc("2026-02-23T04:00:00Z");
    let path = write_open(
        &output,
        "f",
        chrono_tz::UTC,
        at,
        &busy_outcome(),
        &Ledger::default(),
    )
    .unwrap();
    assert_eq!(path, dir.path().join("out/open.md"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
