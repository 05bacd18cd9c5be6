//! The demo replay: the report it writes is the golden file, it shows what the seed report
//! showed, and every before → after (change) it prints adds up.

use crate::support::{blessing, patrol, root, succeeded, text};

fn demo_report() -> String {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo");
    let out = patrol(&["demo", "--out", out_dir.to_str().unwrap()], &root());
    succeeded(&out);
    assert!(text(&out.stdout).contains("improvements.md"));
    let report = crate::support::rolling_report(&out_dir);
    let dated = crate::support::files_under(&out_dir.join("reports/2026/02")).len();
    assert_eq!(
        crate::support::files_under(&out_dir.join("reports")).len(),
        dated,
        "every dated file in the folder of its year and month"
    );
    assert_eq!(
        dated,
        report.matches("\n## ").count(),
        "one dated file per section"
    );
    let index = std::fs::read_to_string(out_dir.join("improvements.md")).unwrap();
    let golden = root().join("tests/golden/demo-index.md");
    if blessing() {
        std::fs::write(&golden, &index).unwrap();
    }
    assert_eq!(
        index,
        std::fs::read_to_string(&golden).unwrap_or_default(),
        "the index of the demo's months changed (PATROL_BLESS=1 to accept)"
    );
    report
}

#[test]
fn demo_report_matches_the_golden_file() {
    let report = demo_report();
    let golden = root().join("tests/golden/demo-improvements.md");
    if blessing() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &report).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        report == expected,
        "demo report changed (PATROL_BLESS=1 to accept); first difference at line {}",
        report
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or(0)
    );
}

#[test]
fn demo_report_shows_what_the_seed_showed() {
    let r = demo_report();
    let must = [
        // F15: inference version drift between the processing nodes.
        "Version drift on `visionking-inference` across vk01/vk02",
        "vk01 has `dev-visionking-inference:c014` (revision `a8399db`); vk02 has `visionking-inference:c009` (revision `3a0eb21`)",
        // F25: compose drift.
        "vk01 has `v2.32.4`; vk02 has `v2.29.7`; vk03 has `v2.31.0`",
        // F08/F21 and F48: reboots, with the memory they released.
        "vk01 rebooted at 21:47",
        "vk01 rebooted at 22:50",
        "`database-server` 16.67GB → 1.17GB",
        // F12: 414 → 315 is -99MB, not the seed's 100MB.
        "memory dropped 414MB → 315MB (-99MB",
        // F29/F32: a 6 °C drop, then a 9 °C rise.
        "temperature dropped 24°C → 18°C (-6°C in 15 min)",
        "temperature rose 18°C → 27°C (+9°C in 15 min)",
        // F35/F38/F44: GPU telemetry blackout, sustained, then recovered.
        "vk01 GPU 0 telemetry went null (temperature was 27°C",
        "vk01 GPU 0 telemetry went null (temperature was 27°C at 00:15) — escalated: sustained for 15 min (2 captures)",
        "Resolved: vk01 GPU 0 telemetry went null",
        "Now 36°C",
        // F13: vk03's database writable layer.
        "vk03 `database-server` writable layer is 5.78GB",
        // F54: the idle leak of the image saver with its computed rate.
        "vk01 `is-sis-surface` memory is leaking +2.",
    ];
    let missing: Vec<&str> = must.iter().copied().filter(|m| !r.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "missing from the demo report: {missing:#?}"
    );
    // The seed extrapolated 824 → 829MB over 74 seconds (F20); patrol must not.
    assert!(!r.contains("824MB → 829MB"));
}

/// Every "A → B (Δ" printed in the report adds up: Δ = B − A in the units printed.
#[test]
fn every_printed_change_adds_up() {
    let r = demo_report();
    let re = regex::Regex::new(
        r"(\d[\d.]*)(MB|GB|KB|°C|%) → (\d[\d.]*)(MB|GB|KB|°C|%) \(([+-]\d[\d.]*)(MB|GB|KB|°C|%)",
    )
    .unwrap();
    let scale = |u: &str| match u {
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => 1.0,
    };
    let mut checked = 0;
    for c in re.captures_iter(&r) {
        let a: f64 = c[1].parse::<f64>().unwrap() * scale(&c[2]);
        let b: f64 = c[3].parse::<f64>().unwrap() * scale(&c[4]);
        let d: f64 = c[5].parse::<f64>().unwrap() * scale(&c[6]);
        // The change is printed with up to four significant digits.
        let tolerance = d.abs() * 0.0005 + 1e-9;
        assert!(
            ((b - a) - d).abs() <= tolerance,
            "`{}` does not add up ({} vs {})",
            &c[0],
            b - a,
            d
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} changes found");
    // "A → B (Nx …)": the ratio is the larger printed value over the smaller.
    let ratio_re =
        regex::Regex::new(r"(\d[\d.]*)(MB|GB|KB) → (\d[\d.]*)(MB|GB|KB) \((\d[\d.]*)x").unwrap();
    let mut ratios = 0;
    for c in ratio_re.captures_iter(&r) {
        let a: f64 = c[1].parse::<f64>().unwrap() * scale(&c[2]);
        let b: f64 = c[3].parse::<f64>().unwrap() * scale(&c[4]);
        let shown: f64 = c[5].parse().unwrap();
        let exact = a.max(b) / a.min(b);
        // Printed with one decimal below 10x, whole above.
        let step = if shown >= 10.0 { 0.5 } else { 0.05 };
        assert!(
            (exact - shown).abs() <= step + 0.02 * exact,
            "`{}`: ratio is {exact:.2}",
            &c[0]
        );
        ratios += 1;
    }
    assert!(ratios >= 5, "only {ratios} ratios found");
}

#[test]
fn demo_report_is_valid_markdown_with_numbered_findings() {
    let r = demo_report();
    let mut items = 0;
    let parser = pulldown_cmark::Parser::new(&r);
    let mut in_item = false;
    for event in parser {
        match event {
            pulldown_cmark::Event::Start(pulldown_cmark::Tag::Item) => {
                in_item = true;
                items += 1;
            }
            pulldown_cmark::Event::End(pulldown_cmark::TagEnd::Item) => in_item = false,
            pulldown_cmark::Event::Html(h) if in_item => {
                panic!("raw HTML leaked into a finding: {h}")
            }
            _ => {}
        }
    }
    assert!(items > 40, "{items} list items");
    let heading = regex::Regex::new(
        r"^## \d{4}-\d{2}-\d{2} \d{2}:\d{2} \(UTC-03:00\) -- (WARNING|INFO|SUGGESTION)$",
    )
    .unwrap();
    for line in r.lines().filter(|l| l.starts_with("## ")) {
        assert!(heading.is_match(line), "bad heading: {line}");
    }
}

/// The rolling report follows findings over time as the seed did: the vk01 GPU blackout is new
/// once, escalated once (sustained) and resolved once; an unchanged finding is repeated at most
/// once per quiet period (24 h), never every capture.
#[test]
fn the_rolling_report_tells_each_finding_once_then_only_what_changed() {
    let r = demo_report();
    let items: Vec<&str> = r
        .lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .collect();
    let blackout = "vk01 GPU 0 telemetry went null (temperature was 27°C at 00:15)";
    let about: Vec<&&str> = items.iter().filter(|l| l.contains(blackout)).collect();
    let new = about
        .iter()
        .filter(|l| l.contains(&format!("**[WARNING] {blackout}**")))
        .count();
    let escalated = about
        .iter()
        .filter(|l| l.contains("— escalated: sustained"))
        .count();
    let resolved = about.iter().filter(|l| l.contains("Resolved: ")).count();
    assert_eq!((new, escalated, resolved), (1, 1, 1), "{about:#?}");

    // The demo spans Feb 18 12:00 – Feb 23 06:00 (under 5 days): at most 4 repeats of anything.
    let unchanged: Vec<&&str> = items
        .iter()
        .filter(|l| l.contains("— unchanged since"))
        .collect();
    let mut per_title: std::collections::BTreeMap<String, usize> = Default::default();
    for l in &unchanged {
        let title = l.split(" — unchanged since").next().unwrap_or_default();
        let title = title.split("** ").next().unwrap_or(title).to_string();
        *per_title.entry(title).or_default() += 1;
    }
    for (title, n) in &per_title {
        assert!(*n <= 4, "{title} repeated unchanged {n} times");
    }
    let ratio = per_title
        .iter()
        .filter(|(t, _)| t.contains("`visionking-visualizer` idle CPU"))
        .map(|(_, n)| *n)
        .sum::<usize>();
    assert!(ratio <= 1, "the idle-CPU ratio repeated {ratio} times");
    // Sections are far fewer than captures: 315 snapshots, 105 capture rounds.
    let sections = r.matches("\n## ").count();
    assert!(sections < 60, "{sections} sections");
}

/// The README's excerpt of the demo report is the report: every quoted finding is in the golden
/// file word for word.
#[test]
fn the_readme_excerpt_is_taken_from_the_demo_report() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let golden = std::fs::read_to_string(root().join("tests/golden/demo-improvements.md")).unwrap();
    let quoted: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .filter(|l| {
            l.starts_with("## ")
                || l.chars().next().is_some_and(|c| c.is_ascii_digit())
                || l.starts_with("- [")
        })
        .collect();
    assert!(quoted.len() >= 4);
    for line in quoted {
        assert!(
            golden.contains(line),
            "README quotes a line the demo report does not have: {line}"
        );
    }
}

/// Issue 16's bound on the demo: one problem told once, so the rolling report of the whole demo
/// is read in minutes, not scrolled: at most 60 KB and 110 numbered findings.
#[test]
fn the_demo_report_stays_short() {
    let report = demo_report();
    let numbered = report
        .lines()
        .filter(|l| {
            l.split_once(". **[")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .count();
    assert!(
        report.len() <= 60_000 && numbered <= 110,
        "the demo's rolling report has {} bytes and {numbered} numbered findings (bound: 60,000 and 110)",
        report.len()
    );
}
