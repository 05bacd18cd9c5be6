use std::path::PathBuf;

use chrono::TimeZone;

use super::*;
use crate::model::{CronJob, Disk, Host, Snapshot};

/// One capture of a healthy node whose cleanup job is called `nightly-purge` (not what the score
/// card's default `*cleanup*` matches), last run ten days before and freeing space (8 of 15).
fn archive_with_a_purge_job(dir: &std::path::Path) -> Archive {
    let archive = Archive::open(dir);
    let at = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap();
    let mut s = Snapshot::new("test", "vk01", at);
    s.host = Some(Host {
        cpu_steal_pct: Some(0.5),
        mem_available_bytes: Some(16_000_000_000),
        mem_free_bytes: Some(16_000_000_000),
        disks: vec![Disk {
            mount: "/".into(),
            fs_type: None,
            size_bytes: Some(100_000_000_000),
            used_bytes: Some(20_000_000_000),
            used_pct: Some(20.0),
        }],
        ..Default::default()
    });
    s.containers = Some(Vec::new());
    s.cron_jobs.push(CronJob {
        name: "nightly-purge".into(),
        schedule: "0 3 * * *".into(),
        last_run: Some(at - chrono::Duration::days(10)),
        last_success: Some(true),
        consecutive_failures: 0,
        outcome: [("freed_mb".to_string(), 512.0)].into(),
    });
    archive.write(&s).unwrap();
    archive
}

fn library(params: &str) -> Library {
    let text = format!(
        r#"[[rule]]
id = "node-score-low"
kind = "score-card"
severity = "info"
description = "The node's health score is low."
params = {params}
title = "{{{{ node }}}} scores {{{{ score }}}}/100"
recommendation = "Work on the weakest dimension first."
"#
    );
    Library::from_sources(&[(PathBuf::from("rules.toml"), text)]).unwrap()
}

fn score_of(library: &Library) -> (Option<u32>, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_with_a_purge_job(dir.path());
    let week = Week::parse("2026-W10", chrono_tz::UTC).unwrap();
    let d = build(
        &archive,
        &Ledger::default(),
        library,
        ("test", chrono_tz::UTC),
        &week,
        None,
    )
    .unwrap();
    (d.nodes[0].score, d.nodes[0].weakest.clone())
}

#[test]
fn the_score_card_looks_for_the_cleanup_job_the_rule_names() {
    let (default_score, default_weakest) = score_of(&library("{ below = 60 }"));
    // The default glob finds no job: hygiene could not be checked, and the node scores 100 over
    // the 85 points that could be, with nothing lost.
    assert_eq!(default_score, Some(100), "{default_weakest:?}");
    assert_eq!(default_weakest, None);
    let (score, weakest) = score_of(&library(r#"{ below = 60, cleanup_job = "nightly-purge" }"#));
    assert_eq!(score, Some(93), "{weakest:?}");
    assert!(
        weakest
            .as_deref()
            .is_some_and(|w| w.contains("Maintenance hygiene 8/15")),
        "{weakest:?}"
    );
}

/// Readings every 15 minutes from Monday 00:00: (time, bytes) from a function of the hour.
fn week_of(hours: usize, f: impl Fn(f64) -> f64) -> Vec<(i64, f64)> {
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .unwrap()
        .timestamp();
    (0..hours * 4)
        .map(|i| (start + i as i64 * 900, f(i as f64 / 4.0)))
        .collect()
}

#[test]
fn a_daily_cycle_back_to_its_level_does_not_grow_whatever_the_phase() {
    for phase in [0.0, 6.0, 12.0, 18.0] {
        let cycle = week_of(7 * 24 - 5, |h| {
            let x = ((h + phase) % 24.0) / 24.0;
            600e6 + 200e6 * x // a sawtooth: climbs all day, drops back at midnight
        });
        let g = node::floor_growth(&cycle).unwrap();
        assert!(g.growth.abs() < 10e6, "phase {phase}: {}", g.growth);
    }
}

#[test]
fn a_leak_a_reboot_reset_counts_for_both_climbs() {
    // 100MB/h for 10 h, reset to 50MB, then 100MB/h for 10 h more.
    let pts = week_of(20, |h| 50e6 + 100e6 * (h % 10.0));
    let g = node::floor_growth(&pts).unwrap();
    assert_eq!(g.resets, 1);
    // Each run's floor: its last quarter's lowest less its first quarter's lowest (7.5 h of
    // climb in a 10 h run read every 15 minutes: 9.75 h spanned, quarter of 40 readings = 10).
    let per_run = (50e6 + 100e6 * 7.5) - 50e6;
    assert!((g.growth - 2.0 * per_run).abs() < 1.0, "{}", g.growth);
    assert!((g.span_s - 2.0 * 9.75 * 3600.0).abs() < 1.0);
}

#[test]
fn a_capture_gap_ends_a_run_and_what_happened_in_it_is_no_rate() {
    let mut pts = week_of(4, |_| 1e9);
    let later = week_of(4, |_| 15e9);
    pts.extend(later.iter().map(|(t, v)| (t + 3 * 86_400, *v)));
    let g = node::floor_growth(&pts).unwrap();
    assert!(g.growth.abs() < 1.0, "{}", g.growth);
    assert_eq!(g.resets, 0);
}
