//! A fleet's rules are an overlay on the built-in library, driven through the binary: `rules
//! list` names where each rule comes from, and a `disable` keeps a rule out of the report.

use crate::support::{patrol, root, succeeded, text};

const OVERRIDE: &str = r#"[[rule]]
id = "disk-almost-full"
kind = "threshold"
severity = "warning"
description = "This fleet's disks are small: warn from 80 %."
select = { entity = "disk:*", metric = "used_pct" }
params = { above = 80 }
title = "{{ node }} {{ subject }} is {{ value }} full"
recommendation = "Free space."

[[rule]]
id = "fleet-load-high"
kind = "threshold"
severity = "info"
description = "Load above this fleet's cores."
select = { entity = "host", metric = "load1" }
params = { above = 16 }
title = "{{ node }} load is {{ value }}"
recommendation = "Look at what runs."
"#;

#[test]
fn rules_list_names_each_rules_source_and_what_an_overlay_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("rules")).unwrap();
    std::fs::write(site.join("rules/fleet.toml"), OVERRIDE).unwrap();
    std::fs::write(
        site.join("patrol.toml"),
        "fleet = \"site\"\ntimezone = \"UTC\"\n[[node]]\nname = \"n1\"\n[node.docker]\nendpoint = \"unix:///nonexistent/docker.sock\"\n",
    )
    .unwrap();
    let config = site.join("patrol.toml");
    // From elsewhere, through --config: the library is the one beside the config.
    let out = succeeded(&patrol(
        &["rules", "list", "--config", config.to_str().unwrap()],
        dir.path(),
    ));
    let line = |id: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("rules list has no {id}:\n{out}"))
            .to_string()
    };
    assert!(
        line("disk-almost-full").ends_with("fleet.toml:1 (overrides built-in)"),
        "{out}"
    );
    assert!(line("fleet-load-high").ends_with("fleet.toml:11"), "{out}");
    assert!(line("container-removed").ends_with(" built-in"), "{out}");
    let check = succeeded(&patrol(&["rules", "check"], &site));
    assert!(
        check.contains("(2 from the fleet's files, 1 of them overriding)"),
        "{check}"
    );
}

#[test]
fn an_overlay_that_disables_a_rule_keeps_it_out_of_the_demo_report() {
    let demo = root().join("snapshots/demo");
    let report = |cwd: &std::path::Path| {
        let out = cwd.join("out");
        succeeded(&patrol(
            &[
                "report",
                "--archive",
                demo.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            cwd,
        ));
        std::fs::read_to_string(out.join("ledger.json")).unwrap()
    };
    let plain = tempfile::tempdir().unwrap();
    let ledger = report(plain.path());
    assert!(
        ledger.contains("\"redis-empty-while-idle\""),
        "the demo no longer shows it"
    );
    assert!(
        ledger.contains("\"endpoint-down\""),
        "the demo no longer shows it"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/quiet.toml"),
        "disable = [\"redis-empty-while-idle\"]\n",
    )
    .unwrap();
    let ledger = report(dir.path());
    assert!(
        !ledger.contains("\"redis-empty-while-idle\""),
        "out/ledger.json"
    );
    assert!(ledger.contains("\"endpoint-down\""), "out/ledger.json");

    // A mistyped id is refused with its line and the likely meant one.
    std::fs::write(
        dir.path().join("rules/quiet.toml"),
        "# quiet\ndisable = [\"redis-empty-while-idel\"]\n",
    )
    .unwrap();
    let out = patrol(&["rules", "check"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("quiet.toml:2:"), "{err}");
    assert!(
        err.contains("did you mean `redis-empty-while-idle`"),
        "{err}"
    );
}

#[test]
fn an_overlay_tunes_a_rule_and_a_state_without_copying_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let file = dir.path().join("rules/tune.toml");
    std::fs::write(
        &file,
        "# this fleet's tuning\n[[rule]]\nid = \"log-error-loop\"\nseverity = \"info\"\nparams = { captures = 6 }\n\n\
         [[state]]\nid = \"line\"\n[[state.case]]\nvalue = \"production\"\n\
         any = [{ entity = \"container:*\", metric = \"cpu_cores\", sum = true, above = 0.5 }]\n",
    )
    .unwrap();
    let out = succeeded(&patrol(&["rules", "list"], dir.path()));
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some("log-error-loop"))
        .unwrap_or_else(|| panic!("rules list has no log-error-loop:\n{out}"));
    assert!(line.ends_with("tune.toml:2 (tunes built-in)"), "{out}");
    assert!(line.contains(" INFO "), "{out}");
    let check = succeeded(&patrol(&["rules", "check"], dir.path()));
    assert!(
        check.contains("(1 from the fleet's files, 1 of them overriding)"),
        "{check}"
    );

    // A misspelt id or parameter is refused with file, line and column.
    std::fs::write(
        &file,
        "[[rule]]\nid = \"log-error-lop\"\nparams = { captures = 6 }\n\n[[rule]]\nid = \"log-error-interval\"\nparams = { every = \"5m\" }\n",
    )
    .unwrap();
    let out = patrol(&["rules", "check"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("tune.toml:2:6"), "{err}");
    assert!(
        err.contains("no earlier rule `log-error-lop` to tune"),
        "{err}"
    );
    assert!(err.contains("did you mean `log-error-loop`"), "{err}");
    assert!(err.contains("tune.toml:7:12"), "{err}");
    assert!(err.contains("`every`"), "{err}");
}
