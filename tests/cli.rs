//! The binary as a user drives it: exit codes, messages that name the file and line, and nothing
//! half-written after an error.

use std::path::Path;

use crate::support::{files_under, patrol, root, succeeded, text};

#[test]
fn simulate_twice_gives_identical_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let scenario = root().join("scenarios/visionking.toml");
    for dir in [a.path(), b.path()] {
        let out = patrol(
            &[
                "simulate",
                scenario.to_str().unwrap(),
                "--out",
                dir.to_str().unwrap(),
            ],
            &root(),
        );
        succeeded(&out);
    }
    let fa = files_under(a.path());
    let fb = files_under(b.path());
    assert_eq!(fa.len(), fb.len());
    assert!(fa.len() > 300);
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(
            x.strip_prefix(a.path()).unwrap(),
            y.strip_prefix(b.path()).unwrap()
        );
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{} differs",
            x.display()
        );
    }
}

#[test]
fn the_committed_demo_archive_is_what_the_scenario_gives() {
    let fresh = tempfile::tempdir().unwrap();
    let scenario = root().join("scenarios/visionking.toml");
    let out = patrol(
        &[
            "simulate",
            scenario.to_str().unwrap(),
            "--out",
            fresh.path().to_str().unwrap(),
        ],
        &root(),
    );
    assert!(out.status.success());
    let committed = root().join("snapshots/demo");
    let a = files_under(&committed);
    let b = files_under(fresh.path());
    assert_eq!(
        a.len(),
        b.len(),
        "regenerate: patrol simulate scenarios/visionking.toml --out snapshots/demo"
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{} is stale",
            x.display()
        );
    }
}

#[test]
fn a_scenario_with_a_bad_unit_names_the_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("bad.toml");
    std::fs::write(
        &scenario,
        "[scenario]\nfleet = \"x\"\nstart = \"2026-02-18T00:00:00Z\"\nend = \"2026-02-18T01:00:00Z\"\ninterval = \"15m\"\n\n[[node]]\nname = \"n1\"\n[[node.container]]\nname = \"c\"\nimage = \"i\"\nmem = \"414XB\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("archive");
    let out = patrol(
        &[
            "simulate",
            scenario.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("line 12"), "{err}");
    assert!(err.contains("unknown size unit `XB`"), "{err}");
    assert!(!out_dir.exists(), "nothing may be written");
}

#[test]
fn a_rules_file_with_two_mistakes_lists_both_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("bad.toml");
    std::fs::write(
        &rules,
        r#"[[rule]]
id = "one"
kind = "growth-rat"
severity = "info"
description = "x"
select = { entity = "container:*", metric = "mem_usage_bytes" }
title = "t"
recommendation = "r"

[[rule]]
id = "two"
kind = "threshold"
severity = "critical"
description = "x"
select = { entity = "container:*", metric = "mem_usage_bytes" }
params = { above = "1GB" }
title = "t"
recommendation = "r"
"#,
    )
    .unwrap();
    let out = patrol(
        &["rules", "check", "--rules", rules.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.toml:3:8")
            && err.contains("unknown kind `growth-rat` (did you mean `growth-rate`?)"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:13:12") && err.contains("severity `critical`"),
        "{err}"
    );
}

#[test]
fn a_template_variable_typo_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"a\"\nkind = \"threshold\"\nseverity = \"info\"\ndescription = \"x\"\nselect = { entity = \"host\", metric = \"load1\" }\nparams = { above = 4 }\ntitle = \"load is {{ valeu }}\"\nrecommendation = \"r\"\n",
    )
    .unwrap();
    let out = patrol(
        &["rules", "check", "--rules", rules.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("r.toml:8:9"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_truncated_snapshot_is_a_clear_error_for_show_and_skipped_by_report() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("fleet");
    for entry in files_under(&root().join("snapshots/demo")).iter().take(40) {
        let rel = entry.strip_prefix(root().join("snapshots/demo")).unwrap();
        let dest = archive.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(entry, dest).unwrap();
    }
    std::fs::copy(
        root().join("snapshots/demo/fleet.toml"),
        archive.join("fleet.toml"),
    )
    .unwrap();
    let victim = files_under(&archive)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".zst"))
        .unwrap();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 3]).unwrap();

    let out = patrol(&["show", victim.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(victim.to_str().unwrap()) && err.contains("truncated"),
        "{err}"
    );

    let out_dir = dir.path().join("out");
    let out = patrol(
        &[
            "report",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--rules",
            root().join("rules").to_str().unwrap(),
        ],
        dir.path(),
    );
    succeeded(&out);
    assert!(
        text(&out.stderr).contains(victim.to_str().unwrap()),
        "the warning names the skipped file"
    );
    assert!(out_dir.join("improvements.md").exists());
}

#[test]
fn show_finds_the_nearest_capture() {
    let out = patrol(
        &[
            "show",
            "vk01@2026-02-18 23:33",
            "--archive",
            "snapshots/demo",
        ],
        &root(),
    );
    succeeded(&out);
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snap["node"], "vk01");
    assert!(text(&out.stderr).contains("nearest capture of vk01"));
}

#[test]
fn run_with_a_config_archives_this_machine_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        "fleet = \"Local Test\"\ntimezone = \"UTC\"\n[[node]]\nname = \"here\"\n[node.host]\n",
    )
    .unwrap();
    let out = patrol(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--fail-on",
            "warning",
        ],
        dir.path(),
    );
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        text(&out.stderr)
    );
    let snaps = files_under(&dir.path().join("snapshots/local-test/here"));
    assert_eq!(snaps.len(), 1);
    let out = patrol(&["show", snaps[0].to_str().unwrap()], dir.path());
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(snap["host"]["mem_total_bytes"].as_u64().unwrap() > 0);
    assert!(
        files_under(dir.path())
            .iter()
            .all(|p| !p.to_string_lossy().contains(".patrol-")),
        "no temp files left"
    );
}

#[test]
fn a_config_with_mistakes_lists_them_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        "fleet = \"x\"\ntimezone = \"Mars/Olympus\"\nwindwo = \"1h\"\n",
    )
    .unwrap();
    let out = patrol(&["run", "--config", config.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("patrol.toml:2:12") && err.contains("patrol.toml:3:1"),
        "{err}"
    );
    assert!(!dir.path().join("snapshots").exists());
}

#[test]
fn rules_explain_prints_the_doc_with_every_heading() {
    let out = patrol(&["rules", "explain", "growth-rate"], &root());
    assert!(out.status.success());
    let doc = text(&out.stdout);
    for h in [
        "## What it does",
        "## Why it matters",
        "## Parameters",
        "## Example",
        "## Known limitations",
    ] {
        assert!(doc.contains(h), "missing {h}");
    }
    let out = patrol(&["rules", "explain", "growth-rat"], &root());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("did you mean `growth-rate`"));
}

#[test]
fn report_at_a_time_writes_the_section_of_that_capture() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "report",
        "--archive",
        "snapshots/demo",
        "--at",
        "2026-02-19 00:31",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = patrol(&args, &root());
    succeeded(&out);
    // The newest capture at or before 00:31 local is the 00:30 round: its dated file.
    let dated = out_dir.join("reports/2026/02/2026-02-19_0030-0300.md");
    assert!(dated.exists(), "{}", text(&out.stdout));
    let section = std::fs::read_to_string(&dated).unwrap();
    assert!(
        section.contains("Times are America/Sao_Paulo;")
            && section.contains("## 2026-02-19 00:30 (UTC-03:00) -- ")
    );
    assert!(
        section.contains("vk01 GPU 0 telemetry went null"),
        "{section}"
    );
    // The same analysis again has nothing new to say.
    let again = patrol(&args, &root());
    assert!(
        text(&again.stdout).contains("nothing new"),
        "{}",
        text(&again.stdout)
    );
    // --fail-on warning: open warnings make the exit code 1.
    let failing = patrol(&[&args[..], &["--fail-on", "warning"]].concat(), &root());
    assert_eq!(failing.status.code(), Some(1));
}

#[test]
fn the_example_configs_parse() {
    for example in [
        "examples/fleet.toml",
        "examples/testbed.toml",
        "examples/site-collector.toml",
    ] {
        let config = patrol::config::load(&root().join(example)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.nodes.is_empty(), "{example}");
    }
    let fleet = patrol::config::load(&root().join("examples/fleet.toml")).unwrap();
    let sources: usize = fleet.nodes.iter().map(|n| n.sources.len()).sum();
    assert!(sources >= 12, "the full example shows every kind of source");
    let site = patrol::config::load(&root().join("examples/site-collector.toml")).unwrap();
    assert!(site.daemon.capture_only);
    assert!(matches!(
        site.archive,
        patrol::config::ArchiveSpec::Postgres {
            password: Some(_),
            ..
        }
    ));
}

#[test]
fn backtest_prints_when_a_rule_would_have_fired() {
    let out = patrol(&["backtest", "gpu-telemetry-null"], &root());
    let stdout = succeeded(&out);
    assert!(
        stdout.contains("2026-02-19 00:30 FIRES    [WARNING] vk01 GPU 0 telemetry went null"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2026-02-22 17:30 RESOLVED vk01 GPU 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gpu-telemetry-null: 105 capture rounds"),
        "{stdout}"
    );
    let out = patrol(&["backtest", "gpu-telemetry-nul"], &root());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("did you mean `gpu-telemetry-null`"));
}

#[test]
fn a_gate_naming_an_unknown_state_is_a_load_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.toml");
    std::fs::write(
        &file,
        "[[state]]\nid = \"line\"\ndescription = \"d\"\notherwise = \"idle\"\n[[state.case]]\nvalue = \"production\"\nany = [{ entity = \"gpu:*\", metric = \"util_pct\", above = 5 }]\n\n[[rule]]\nid = \"r\"\nkind = \"threshold\"\nseverity = \"info\"\ndescription = \"d\"\nselect = { entity = \"gpu:*\", metric = \"temp_c\" }\nparams = { above = 80 }\nwhen = { lines = \"idle\", line = \"busy\" }\ntitle = \"t\"\nrecommendation = \"r\"\n",
    )
    .unwrap();
    let out = patrol(
        &["rules", "check", "--rules", file.to_str().unwrap()],
        &root(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(":16:") && err.contains("no state `lines`"),
        "{err}"
    );
    assert!(err.contains("state `line` is never `busy`"), "{err}");
}

/// A run killed between writing the ledger and the report, or between the report and clearing
/// the ledger, loses and duplicates nothing: the next run finishes the section it left.
#[test]
fn a_crash_while_writing_a_section_loses_and_repeats_nothing() {
    let times = ["2026-02-19 00:15", "2026-02-19 00:31", "2026-02-19 00:46"];
    let run = |out: &Path, at: &str, crash: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patrol"));
        cmd.args([
            "report",
            "--archive",
            "snapshots/demo",
            "--at",
            at,
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(root());
        if let Some(point) = crash {
            cmd.env("PATROL_TEST_CRASH", point);
        }
        cmd.output().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean");
    for at in times {
        assert!(run(&clean, at, None).status.success());
    }
    let expected = crate::support::rolling_report(&clean);
    assert!(expected.matches("\n## ").count() >= 2, "{expected}");
    for point in ["after-ledger", "after-report"] {
        let out = dir.path().join(point);
        assert!(run(&out, times[0], None).status.success());
        let crashed = run(&out, times[1], Some(point));
        assert_eq!(crashed.status.code(), Some(86), "{}", text(&crashed.stderr));
        assert!(run(&out, times[2], None).status.success());
        let got = crate::support::rolling_report(&out);
        assert_eq!(
            got, expected,
            "crash {point}: the report differs from a clean run"
        );
        let dated: Vec<_> = std::fs::read_dir(out.join("reports")).unwrap().collect();
        let clean_dated: Vec<_> = std::fs::read_dir(clean.join("reports")).unwrap().collect();
        assert_eq!(dated.len(), clean_dated.len());
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }
}

#[test]
fn report_as_json_gives_every_open_finding_with_its_lifecycle_and_a_textfile() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let prom = dir.path().join("patrol.prom");
    let run = |at: &str| {
        let out = patrol(
            &[
                "report",
                "--archive",
                "snapshots/demo",
                "--at",
                at,
                "--out",
                out_dir.to_str().unwrap(),
                "--format",
                "json",
                "--textfile",
                prom.to_str().unwrap(),
            ],
            &root(),
        );
        succeeded(&out);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let status_of = |doc: &serde_json::Value, rule: &str| -> String {
        doc["open"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["finding"]["rule_id"] == rule && o["finding"]["nodes"][0] == "vk01")
            .map(|o| o["lifecycle"]["status"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let first = run("2026-02-19 00:31");
    assert_eq!(status_of(&first, "gpu-telemetry-null"), "new");
    let second = run("2026-02-19 00:46");
    assert_eq!(status_of(&second, "gpu-telemetry-null"), "escalated");
    let third = run("2026-02-19 00:59");
    assert_eq!(status_of(&third, "gpu-telemetry-null"), "persisting");
    assert_eq!(third["worst_open"], "WARNING");
    let textfile = std::fs::read_to_string(&prom).unwrap();
    let warnings = third["open"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["finding"]["severity"] == "warning")
        .count();
    assert!(
        textfile.contains(&format!(
            "patrol_open_findings{{fleet=\"VisionKing 03002\",severity=\"warning\"}} {warnings}\n"
        )),
        "{textfile}"
    );
    assert!(textfile.contains("patrol_open_findings_by_rule{fleet=\"VisionKing 03002\",rule=\"gpu-telemetry-null\",severity=\"warning\"} 1"));
}

#[test]
fn acknowledged_findings_wait_until_they_expire_and_a_past_expiry_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let acks = dir.path().join("acknowledged.toml");
    let report = |out: &str, at: &str| {
        let out_dir = dir.path().join(out);
        let o = patrol(
            &[
                "report",
                "--archive",
                "snapshots/demo",
                "--at",
                at,
                "--out",
                out_dir.to_str().unwrap(),
                "--acks",
                acks.to_str().unwrap(),
            ],
            &root(),
        );
        succeeded(&o);
        crate::support::rolling_report(&out_dir)
    };
    std::fs::write(
        &acks,
        "[[ack]]\nrule = \"endpoint-down\"\nsubject = \"endpoint:pgadmin\"\nreason = \"pgAdmin is retired; endpoint to be removed\"\nowner = \"ana\"\nexpires = \"2026-03-01\"\n",
    )
    .unwrap();
    let held = report("held", "2026-02-18 12:01");
    assert!(
        !held.contains("**[WARNING] vk03 endpoint `pgadmin` is down"),
        "{held}"
    );
    assert!(held.contains("- [WARNING] vk03 endpoint `pgadmin` is down: nothing answered (ana: pgAdmin is retired; endpoint to be removed; until 2026-03-01)"), "{held}");
    std::fs::write(
        &acks,
        "[[ack]]\nrule = \"endpoint-down\"\nsubject = \"endpoint:pgadmin\"\nreason = \"pgAdmin is retired\"\nowner = \"ana\"\nexpires = \"2026-02-01\"\n",
    )
    .unwrap();
    let expired = report("expired", "2026-02-18 12:01");
    assert!(
        expired.contains("**[WARNING] vk03 endpoint `pgadmin` is down: nothing answered**"),
        "{expired}"
    );
    assert!(!expired.contains("Acknowledged ("));
    // A mistake in the file is named with its line, exit 2.
    std::fs::write(
        &acks,
        "[[ack]]\nrule = \"endpoint-down\"\nowner = \"ana\"\nexpires = \"soon\"\n",
    )
    .unwrap();
    let bad = patrol(
        &[
            "report",
            "--archive",
            "snapshots/demo",
            "--out",
            dir.path().join("bad").to_str().unwrap(),
            "--acks",
            acks.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(bad.status.code(), Some(2));
    let err = text(&bad.stderr);
    assert!(
        err.contains("acknowledged.toml:1:") && err.contains(":4:"),
        "{err}"
    );
}

#[test]
fn rules_noise_ranks_rules_from_a_reports_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo");
    assert!(
        patrol(&["demo", "--out", out_dir.to_str().unwrap()], &root())
            .status
            .success()
    );
    let out = patrol(
        &[
            "rules",
            "noise",
            "--out",
            out_dir.to_str().unwrap(),
            "--last",
            "20",
        ],
        &root(),
    );
    let stdout = succeeded(&out);
    assert!(stdout.contains("over the last 20 sections"), "{stdout}");
    assert!(
        stdout.contains("redis-empty-while-idle") && stdout.contains("flaps"),
        "{stdout}"
    );
    let missing = patrol(
        &[
            "rules",
            "noise",
            "--out",
            dir.path().join("none").to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(missing.status.code(), Some(2));
}

/// Text from the fleet (log lines with markdown and HTML in them) cannot break the report.
#[test]
fn hostile_log_text_stays_inside_its_code_span() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("hostile.toml");
    std::fs::write(
        &scenario,
        r#"[scenario]
fleet = "hostile"
start = "2026-02-18T00:00:00Z"
end = "2026-02-18T01:30:00Z"
interval = "15m"

[[node]]
name = "n1"
[[node.container]]
name = "web"
image = "web"
mem = "100MB"
log = [{ message = "boom **bold** <b>html</b> [link](http://x) `tick` | pipe", level = "ERROR", every = "10s" }]
"#,
    )
    .unwrap();
    let archive = dir.path().join("archive");
    let out = patrol(
        &[
            "simulate",
            scenario.to_str().unwrap(),
            "--out",
            archive.to_str().unwrap(),
        ],
        &root(),
    );
    succeeded(&out);
    let out_dir = dir.path().join("out");
    let out = patrol(
        &[
            "report",
            "--archive",
            archive.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &root(),
    );
    succeeded(&out);
    let report = crate::support::rolling_report(&out_dir);
    assert!(
        report.contains("log-error") || report.contains("in every capture"),
        "{report}"
    );
    let mut code = Vec::new();
    for event in pulldown_cmark::Parser::new(&report) {
        match event {
            pulldown_cmark::Event::Html(h) | pulldown_cmark::Event::InlineHtml(h) => {
                panic!("HTML from the fleet reached the report: {h}")
            }
            pulldown_cmark::Event::Code(c) => code.push(c.to_string()),
            _ => {}
        }
    }
    assert!(
        code.iter()
            .any(|c| c.contains("<b>html</b>") && c.contains("`tick`")),
        "{code:?}"
    );
}

#[test]
fn compare_orders_a_reboot_before_the_memory_it_released_and_shows_peer_differences() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = patrol(
        &[
            "compare",
            "vk01@2026-02-22 22:45",
            "vk01@2026-02-22 23:00",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &root(),
    );
    let md = succeeded(&out);
    let reboot = md.find("vk01 rebooted in between").expect("reboot");
    let memory = md
        .find("`database-server` memory 16.67GB → 1.17GB")
        .expect("memory");
    let image = md
        .find("`camera-agent-1` image `visionking-camera:c004` → `visionking-camera:c005`")
        .expect("the image updated with the reboot");
    assert!(reboot < memory && memory < image, "{md}");
    assert!(
        md.contains("the nearest capture is 2026-02-22 22:45:05"),
        "{md}"
    );
    let written = std::fs::read_dir(out_dir.join("compare")).unwrap().count();
    assert_eq!(written, 1);
    // Two peers at one time: what runs only on one, and the version drift.
    let peers = patrol(
        &[
            "compare",
            "vk01",
            "vk02",
            "--at",
            "2026-02-18 23:30",
            "--out",
            out_dir.to_str().unwrap(),
            "--format",
            "json",
        ],
        &root(),
    );
    succeeded(&peers);
    let doc: serde_json::Value = serde_json::from_slice(&peers.stdout).unwrap();
    let texts: Vec<&str> = doc["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["text"].as_str().unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("`rc-sis-surface` only on vk02")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("`dev-visionking-inference:c014`")
                && t.contains("`visionking-inference:c009`")),
        "{texts:?}"
    );
    let bad = patrol(&["compare", "vk09@2026-02-18 23:30", "vk01"], &root());
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("no captures of node `vk09`"));
}

/// Two runs of one fleet at the same time: one runs, the other says who holds the fleet and
/// exits 2 (or waits with --wait); nothing is left half-written.
#[test]
fn two_runs_at_once_one_runs_the_other_says_why_or_waits() {
    // An endpoint that answers after 2 s keeps the first run busy.
    let port = crate::support::slow_endpoint(std::time::Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        format!("fleet = \"Lock Test\"\ntimezone = \"UTC\"\n[[node]]\nname = \"here\"\n[node.host]\n[[node.http]]\nname = \"slow\"\nurl = \"http://127.0.0.1:{port}/\"\n"),
    )
    .unwrap();
    let start = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
            .args(["run", "--config", config.to_str().unwrap()])
            .args(extra)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = start(&[]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    let second = start(&[]).wait_with_output().unwrap();
    assert_eq!(second.status.code(), Some(2), "{}", text(&second.stderr));
    let err = text(&second.stderr);
    assert!(
        err.contains("another patrol is running (pid") && err.contains("run.lock"),
        "{err}"
    );
    let waiting = start(&["--wait", "30s"]);
    let first = first.wait_with_output().unwrap();
    succeeded(&first);
    let waited = waiting.wait_with_output().unwrap();
    succeeded(&waited);
    let snaps = files_under(&dir.path().join("snapshots/lock-test/here"));
    assert_eq!(
        snaps.len(),
        2,
        "the first run and the one that waited each captured once"
    );
    assert!(
        files_under(dir.path())
            .iter()
            .all(|p| !p.to_string_lossy().contains(".patrol-")),
        "no temp files left"
    );
}

#[test]
fn history_prints_a_nodes_values_over_time_and_writes_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = patrol(
        &[
            "history",
            "vk02",
            "gpu:0",
            "temp_c",
            "--since",
            "2026-02-19 00:00",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &root(),
    );
    let stdout = succeeded(&out);
    assert!(stdout.starts_with("vk02 gpu:0 temp_c\n"), "{stdout}");
    assert!(
        stdout.contains("2026-02-19 00:30  22°C") && stdout.contains("2026-02-19 00:45  23°C"),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(out_dir.join("history/vk02_gpu_0_temp_c.svg")).unwrap();
    assert!(svg.contains("<polyline"));
    // Issue 19: nothing dropped in silence. The GPU telemetry blackout from Feb 22 19:30 is
    // "null", the 3.7-day capture gap is said and breaks the chart's line, reboots are marked.
    assert!(stdout.contains("2026-02-22 19:30  null"), "{stdout}");
    assert!(stdout.contains("… no capture for 3.7 days"), "{stdout}");
    assert!(svg.contains(">×<title>null</title>"), "{svg}");
    assert!(
        svg.matches("<polyline").count() >= 2,
        "the gap breaks the line: {svg}"
    );
    let mem = patrol(
        &[
            "history",
            "vk01",
            "container:database-server",
            "--since",
            "2026-02-18 20:00",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &root(),
    );
    let mem_out = succeeded(&mem);
    assert!(
        mem_out.contains("vk01 rebooted at 2026-02-22 22:50"),
        "{mem_out}"
    );
    let mem_svg = std::fs::read_to_string(
        out_dir.join("history/vk01_container_database-server_mem_usage_bytes.svg"),
    )
    .unwrap();
    assert!(mem_svg.contains(">reboot</text>"), "{mem_svg}");
    let bad = patrol(&["history", "vk02", "gpu:0", "temp"], &root());
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("did you mean `temp_c`"),
        "{}",
        text(&bad.stderr)
    );
}

/// Retention thins by age and keeps what open findings point to; stats show the archive.
#[test]
fn archive_prune_thins_by_age_and_keeps_the_evidence_of_open_findings() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("demo");
    let copy = std::process::Command::new("cp")
        .args([
            "-r",
            root().join("snapshots/demo").to_str().unwrap(),
            archive.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(copy.success());
    let out = dir.path().join("out");
    assert!(
        patrol(
            &[
                "demo",
                "--archive",
                archive.to_str().unwrap(),
                "--out",
                out.to_str().unwrap()
            ],
            &root()
        )
        .status
        .success()
    );
    std::fs::write(
        dir.path().join("patrol.toml"),
        "fleet = \"VisionKing 03002\"\ntimezone = \"America/Sao_Paulo\"\narchive = \"demo\"\noutput = \"out\"\n[retention]\nfull = \"12h\"\nhourly = \"1d\"\ndaily = \"3d\"\n[[node]]\nname = \"vk01\"\n",
    )
    .unwrap();
    let count = || {
        files_under(&archive)
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
            .count()
    };
    assert_eq!(count(), 315);
    let dry = patrol(&["archive", "prune", "--dry-run"], dir.path());
    succeeded(&dry);
    assert_eq!(count(), 315, "a dry run deletes nothing");
    let pruned = patrol(&["archive", "prune"], dir.path());
    let said = succeeded(&pruned);
    assert!(
        said.contains("deleted") && said.contains("only because open findings point to them"),
        "{said}"
    );
    let left = count();
    assert!(left < 315 && left > 100, "{left} captures left");
    // The newest 12 hours are whole: 3 nodes × 4 captures an hour.
    let stats = patrol(&["archive", "stats"], dir.path());
    let s = text(&stats.stdout);
    assert!(s.contains(&format!("{left} captures")), "{s}");
    // The capture of the vk02 GPU blackout (an open finding since Feb 22 19:30) is still there.
    let show = patrol(
        &[
            "show",
            "vk02@2026-02-22 19:30",
            "--archive",
            archive.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(show.status.success());
    assert!(
        text(&show.stderr).contains("nearest capture of vk02: 2026-02-22T22:3"),
        "{}",
        text(&show.stderr)
    );
}
