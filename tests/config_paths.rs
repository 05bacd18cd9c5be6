//! A config names the same files from wherever it is run: its relative paths, and the default
//! `rules/` and `report-templates/` beside it, resolve against its own directory, not the working
//! directory (cron runs from $HOME, an operator from anywhere).

use std::path::Path;

use crate::support::{files_under, patrol, root, succeeded, text};

/// Every file under `dir` with its contents, paths relative to `dir` (the run lock aside).
fn contents(dir: &Path) -> Vec<(String, String)> {
    files_under(dir)
        .into_iter()
        .filter(|p| !p.starts_with(dir.join(".state")))
        .map(|p| {
            let body = std::fs::read_to_string(&p).unwrap_or_default();
            (p.strip_prefix(dir).unwrap().display().to_string(), body)
        })
        .collect()
}

#[test]
fn the_same_config_gives_the_same_report_in_the_same_place_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(site.join("rules")).unwrap();
    std::fs::create_dir_all(site.join("report-templates")).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    succeeded(&patrol(
        &[
            "simulate",
            "scenarios/quiet.toml",
            "--out",
            site.join("archive").to_str().unwrap(),
        ],
        &root(),
    ));
    // The site's overlay: one rule of its own that speaks on this quiet fleet.
    std::fs::write(
        site.join("rules/site.toml"),
        r#"[[rule]]
id = "site-disk-watch"
kind = "threshold"
severity = "warning"
description = "The site watches its disks from a third full."
select = { entity = "disk:*", metric = "used_pct" }
params = { above = 20 }
title = "{{ node }} {{ subject }} is {{ value }} full"
recommendation = "Plan the next disk."
"#,
    )
    .unwrap();
    let section = std::fs::read_to_string(root().join("report-templates/section.md.j2")).unwrap();
    std::fs::write(
        site.join("report-templates/section.md.j2"),
        format!("<!-- site template -->\n{section}"),
    )
    .unwrap();
    std::fs::write(
        site.join("patrol.toml"),
        "fleet = \"quiet\"\ntimezone = \"UTC\"\narchive = \"archive\"\noutput = \"out\"\n\
         [[node]]\nname = \"proc-1\"\n[node.docker]\nendpoint = \"unix:///nonexistent/docker.sock\"\n",
    )
    .unwrap();
    let config = site.join("patrol.toml");

    let mut reports = Vec::new();
    for (cwd, config_arg) in [
        (&site, "patrol.toml".to_string()),
        (&elsewhere, config.display().to_string()),
    ] {
        let _ = std::fs::remove_dir_all(site.join("out"));
        let out = patrol(&["report", "--config", &config_arg], cwd);
        succeeded(&out);
        assert!(
            files_under(&elsewhere).is_empty(),
            "nothing is written in the working directory: {:?}",
            files_under(&elsewhere)
        );
        let written = contents(&site.join("out"));
        let all: String = written.iter().map(|(_, body)| body.as_str()).collect();
        assert!(
            all.contains("site-disk-watch"),
            "the site's rule spoke, run from {}: {}",
            cwd.display(),
            text(&out.stdout)
        );
        assert!(
            all.contains("<!-- site template -->"),
            "the site's template was used, run from {}",
            cwd.display()
        );
        reports.push(written);
    }
    let names = |r: &Vec<(String, String)>| r.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&reports[0]), names(&reports[1]));
    for ((name, first), (_, second)) in reports[0].iter().zip(&reports[1]) {
        assert!(
            first == second,
            "{name} differs between the two directories"
        );
    }
}
