//! Bounded output (issue 13): the archive is thinned by whoever analyses it, including the
//! reporter of a shared archive and never a capture-only collector; and a simulated year of a
//! 3-node fleet leaves every file under 10 MB and every folder with a bounded number of entries.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{patrol, succeeded, text};

/// One quiet node captured every hour for five days, written by `patrol simulate`.
const FIVE_DAYS: &str = r#"[scenario]
fleet = "bounded"
timezone = "UTC"
seed = 5
start = "2026-01-01 00:00"
end = "2026-01-05 23:00"
interval = "1h"

[[node]]
name = "old"
booted = "2025-12-20 06:00"
[node.host]
mem_total = "64GB"
mem_available = { start = "40GB", noise = "400MB" }
cpus = 8
"#;

/// Ages small enough for five days to cross all of them.
const SHORT_RETENTION: &str = "[retention]\nfull = \"1d\"\nhourly = \"2d\"\ndaily = \"3d\"\n";

fn simulate(dir: &Path, scenario: &str, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, scenario).unwrap();
    let out = dir.join(name);
    succeeded(&patrol(
        &[
            "simulate",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir,
    ));
    out
}

/// Capture files of a directory archive (its metadata and state left out).
fn captures(archive: &Path) -> Vec<PathBuf> {
    crate::support::files_under(archive)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zst"))
        .collect()
}

/// How many captures of the five days a reporter with [`SHORT_RETENTION`] keeps at most: every
/// one of the last day (24), one an hour of the day before (24), one a day before that (2).
const KEPT_AT_MOST: usize = 24 + 24 + 2;

#[test]
fn the_reporter_of_a_shared_archive_thins_it_and_a_capture_only_collector_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let archive = simulate(dir.path(), FIVE_DAYS, "archive");
    assert_eq!(captures(&archive).len(), 120);
    // A site whose collector only captures (cron: `patrol run --capture-only`) and whose
    // report runs apart (`patrol report --config`), one config for both.
    std::fs::write(
        dir.path().join("site.toml"),
        format!(
            "fleet = \"bounded\"\ntimezone = \"UTC\"\narchive = \"archive\"\noutput = \"out\"\n{SHORT_RETENTION}[[node]]\nname = \"here\"\n[node.host]\n"
        ),
    )
    .unwrap();
    succeeded(&patrol(&["report", "--config", "site.toml"], dir.path()));
    let kept = captures(&archive);
    assert!(
        kept.len() <= KEPT_AT_MOST && kept.len() >= 48,
        "the reporter thinned the archive to {} captures",
        kept.len()
    );
    assert!(
        kept.iter()
            .all(|p| !p.to_string_lossy().contains("2026-01-01")),
        "nothing of the first day (older than `daily`) is left"
    );
    // The collector's fresh capture makes every simulated one older than `daily`, and still
    // nothing goes: it cannot know what the reporter's open findings point to.
    let out = patrol(
        &["run", "--capture-only", "--config", "site.toml"],
        dir.path(),
    );
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        captures(&archive).len(),
        kept.len() + 1,
        "a capture-only run added its capture and deleted nothing"
    );
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn the_reporter_of_a_postgresql_archive_thins_it() {
    let url = format!(
        "{}?schema=t_bounded_{}",
        std::env::var("PATROL_TEST_ARCHIVE_URL")
            .expect("PATROL_TEST_ARCHIVE_URL is unset: run the suite with scripts/test"),
        std::process::id()
    );
    let password_file = std::env::var("PATROL_TEST_PG_PASSWORD_FILE")
        .expect("PATROL_TEST_PG_PASSWORD_FILE is unset: run the suite with scripts/test");
    let password = std::fs::read_to_string(&password_file)
        .unwrap()
        .trim()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let archive = simulate(dir.path(), FIVE_DAYS, "archive");
    let pg = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_patrol"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("PATROL_LOG")
            .env("PGPASSWORD", &password)
            .output()
            .unwrap();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !all.contains(&password),
            "the password was printed by `patrol {}`",
            args[0]
        );
        succeeded(&out)
    };
    let count = || -> usize {
        let stats = pg(&["archive", "stats", "--archive", &url]);
        let first = stats.lines().next().unwrap_or_default();
        first
            .split(": ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no capture count in `{first}`"))
    };
    // Dropped whatever happens, so the bed's database does not keep the test's schema.
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let port = std::env::var("PATROL_TEST_PG_PORT").unwrap_or_default();
            let _ = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "patrol",
                    "-d",
                    "patrol_archive",
                    "-qtAX",
                    "-c",
                    &format!("drop schema if exists {} cascade", self.0),
                ])
                .env("PGPASSWORD", &self.1)
                .output();
        }
    }
    let _cleanup = Cleanup(
        format!("t_bounded_{}", std::process::id()),
        password.clone(),
    );
    pg(&[
        "archive",
        "copy",
        "--from",
        archive.to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert_eq!(count(), 120);
    std::fs::write(
        dir.path().join("reporter.toml"),
        format!(
            "fleet = \"bounded\"\ntimezone = \"UTC\"\narchive = \"{url}\"\narchive_password_file = \"{password_file}\"\noutput = \"out\"\n{SHORT_RETENTION}"
        ),
    )
    .unwrap();
    let report = Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(["report", "--config", "reporter.toml"])
        .current_dir(dir.path())
        .env_remove("PATROL_LOG")
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    succeeded(&report);
    let kept = count();
    assert!(
        (48..=KEPT_AT_MOST).contains(&kept),
        "the reporter thinned the shared archive to {kept} captures"
    );
}
