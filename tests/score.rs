//! `patrol rules score` driven as a user would: a small scenario of our own (tests/score/web.toml)
//! with a key written from its story, a deliberately wrong key (a miss and extras), the same key
//! over the simulated archive, and bad keys (exit 2 with file:line:column). Run from an empty
//! directory, so the library is the built-in one.

use std::path::PathBuf;

use crate::support::{patrol, root, succeeded, text};

fn dir() -> PathBuf {
    root().join("tests/score")
}

fn arg(p: PathBuf) -> String {
    p.to_str().unwrap().to_string()
}

fn score(args: &[&str]) -> std::process::Output {
    let cwd = tempfile::tempdir().unwrap();
    let mut all = vec!["rules", "score"];
    all.extend_from_slice(args);
    patrol(&all, cwd.path())
}

#[test]
fn the_key_written_from_the_story_scores_full_marks() {
    let key = arg(dir().join("web.key.toml"));
    let out = score(&[&key, "--min-recall", "100", "--min-precision", "100"]);
    let stdout = succeeded(&out);
    assert!(
        stdout.contains("recall    2/2 (100.0%)"),
        "web.key.toml:\n{stdout}"
    );
    assert!(stdout.contains("precision 3/3 (100.0%)"), "{stdout}");
    assert!(
        !stdout.contains("MISS") && !stdout.contains("EXTRA"),
        "{stdout}"
    );
    // The same key given with its scenario.
    let scenario = arg(dir().join("web.toml"));
    let again = succeeded(&score(&["--expect", &key, &scenario]));
    assert!(again.contains("recall    2/2 (100.0%)"), "{again}");
}

#[test]
fn a_wrong_key_shows_each_miss_with_the_nearest_episode_and_each_extra() {
    let key = arg(dir().join("wrong.key.toml"));
    let out = score(&[&key]);
    let stdout = succeeded(&out);
    assert!(stdout.contains("recall    0/2 (0.0%)"), "{stdout}");
    assert!(
        stdout.contains("MISS  `api-leak-web1`: container-memory-leak about web-1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("did not count: wrong node: about web-2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("did not count: an event, expected open at the end"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "EXTRA [INFO] container-memory-jump on web-2 container:api, opened 2026-03-02 06:15"
        ),
        "{stdout}"
    );
    assert_eq!(stdout.matches("EXTRA").count(), 3, "{stdout}");
    // Under the bar asked for: exit 1, saying which figure.
    let gated = score(&[&key, "--min-recall", "95"]);
    assert_eq!(gated.status.code(), Some(1), "{}", text(&gated.stdout));
    assert!(text(&gated.stderr).contains("recall 0.0% is under the 95% asked for"));
}

#[test]
fn a_directory_of_keys_is_scored_key_by_key_with_a_total() {
    let out = score(&[&arg(dir()), "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&succeeded(&out)).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "tests/score/*.key.toml");
    assert_eq!(doc["total"]["recall"]["count"], 2);
    assert_eq!(doc["total"]["recall"]["of"], 4);
    assert_eq!(doc["total"]["precision"]["count"], 3);
    assert_eq!(doc["total"]["precision"]["of"], 6);
    let wrong = &keys[1];
    assert_eq!(
        wrong["misses"][0]["nearest"]["rule"],
        "container-memory-leak"
    );
    assert_eq!(wrong["extras"].as_array().unwrap().len(), 3);
    let text_out = succeeded(&score(&[&arg(dir())]));
    assert!(
        text_out.contains("total: recall 2/4 (50.0%), precision 3/6 (50.0%) over 2 keys"),
        "{text_out}"
    );
}

#[test]
fn a_key_scores_an_archive_of_the_same_history_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("web");
    succeeded(&patrol(
        &[
            "simulate",
            &arg(dir().join("web.toml")),
            "--out",
            archive.to_str().unwrap(),
        ],
        tmp.path(),
    ));
    // Over an archive the key's scenario is not read: its times are the archive's.
    let out = score(&[
        "--archive",
        archive.to_str().unwrap(),
        "--expect",
        &arg(dir().join("web.key.toml")),
    ]);
    let stdout = succeeded(&out);
    assert!(stdout.contains("recall    2/2 (100.0%)"), "{stdout}");
    assert!(stdout.contains("precision 3/3 (100.0%)"), "{stdout}");
}

#[test]
fn bad_keys_exit_2_naming_file_line_and_column() {
    let bad = dir().join("bad");
    let out = score(&[&arg(bad.join("unknown-rule.key.toml"))]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown-rule.key.toml:6:8: no rule `container-memory-leek` in the library (did you mean `container-memory-leak`?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown-rule.key.toml:7:8: no node `web-3` in the fleet"),
        "{stderr}"
    );
    let out = score(&[&arg(bad.join("syntax.key.toml"))]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "syntax.key.toml:8:12: [[expect]] at line 4: `opens_by`: `soon` is not a time"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("syntax.key.toml:9:1: [[expect]] at line 4: unknown key `lifecycel` (did you mean `lifecycle`?)"),
        "{stderr}"
    );
    // A key naming no scenario, scored alone.
    let tmp = tempfile::tempdir().unwrap();
    let lone = tmp.path().join("lone.key.toml");
    std::fs::write(
        &lone,
        "[[expect]]\nid = \"a\"\nrule = \"node-rebooted\"\nnode = \"web-1\"\n",
    )
    .unwrap();
    let out = score(&[lone.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("[key] names no scenario"));
    // --archive without a key, and a missing path.
    assert_eq!(score(&["--archive", "x"]).status.code(), Some(2));
    assert_eq!(score(&["no-such.key.toml"]).status.code(), Some(2));
}
