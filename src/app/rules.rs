//! `patrol rules list|explain|check|test|noise` and `patrol backtest`: the rule library looked
//! at, run over fixtures and archives, and judged by how often it speaks. The fixture harness
//! ([`run_fixture`]) is here because `rules test` is what runs it.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use super::analysis::{RoundTime, analyse_round};
use super::{
    EXIT_FINDINGS, EXIT_OK, config_library, fleet_config, load_library, open_archive,
    replay_rounds, window_span,
};
use crate::cli::{BacktestArgs, NoiseArgs, RulesArgs, RulesCommand, TestArgs};
use crate::error::{Error, Result};
use crate::history::Window;
use crate::ledger::{Ledger, Outcome, Reason};
use crate::markdown::plain;
use crate::model::Finding;
use crate::rules::{self, Library};
use crate::simulate;
use crate::store::group_rounds;

/// `patrol rules …`.
pub(super) fn rules_cmd(args: RulesArgs) -> Result<i32> {
    let path = args.rules;
    let config = args.config;
    let library = || -> Result<Library> {
        match path.as_deref() {
            Some(p) => load_library(Some(p)),
            None => match fleet_config(config.clone())? {
                Some(c) => config_library(&c),
                None => load_library(None),
            },
        }
    };
    match args.command {
        RulesCommand::List => {
            let lib = library()?;
            for r in &lib.rules {
                let verb = if r.tuned { "tunes" } else { "overrides" };
                let overrides = match &r.overrides {
                    Some(o) => format!(" ({verb} {o})"),
                    None => String::new(),
                };
                let line = format!(
                    "{:<40} {:<24} {:<10} {}{overrides}",
                    r.id,
                    r.kind_name,
                    r.severity.label(),
                    rules::source(r)
                );
                println!("{}", plain(&line));
            }
            Ok(EXIT_OK)
        }
        RulesCommand::Explain(explain) => explain_cmd(&explain.name, library),
        RulesCommand::Check => {
            let lib = library()?;
            let added = lib.rules.iter().filter(|r| rules::source(r) != "built-in");
            let overrides = added.clone().filter(|r| r.overrides.is_some()).count();
            println!(
                "{} rules loaded ({} from the fleet's files, {overrides} of them overriding), no problems",
                lib.rules.len(),
                added.count()
            );
            Ok(EXIT_OK)
        }
        RulesCommand::Test(test) => rules_test(test, path.as_deref()),
        RulesCommand::Noise(noise_args) => noise(&noise_args),
        RulesCommand::Score(score_args) => {
            super::score::score_cmd(&score_args, config.clone(), library)
        }
    }
}

/// `patrol rules explain`: a kind's documentation, or a rule's line and its kind's documentation.
fn explain_cmd(name: &str, library: impl Fn() -> Result<Library>) -> Result<i32> {
    if let Some(kind) = rules::kinds::spec(name) {
        print!("{}", kind.doc);
        return Ok(EXIT_OK);
    }
    let lib = library()?;
    let Some(r) = lib.get(name) else {
        let mut names: Vec<&str> = rules::kinds::KINDS.iter().map(|k| k.name).collect();
        names.extend(lib.rules.iter().map(|r| r.id.as_str()));
        return Err(Error::Usage(format!(
            "no kind or rule named `{name}`{}",
            crate::error::did_you_mean(name, &names)
        )));
    };
    let line = format!(
        "rule `{}` ({}), defined at {}: {}\n",
        r.id,
        r.severity.label(),
        rules::location(r),
        r.description
    );
    println!("{}", plain(&line));
    let impact = r
        .impact
        .unwrap_or_else(|| crate::model::Impact::of_kind(r.kind_name, r.blinds));
    let declared = if r.impact.is_some() {
        "declared"
    } else {
        "its kind's default"
    };
    println!(
        "Impact (`impact = \"{}\"`, {declared}): {}; the weekly digest ranks its top action by it.\n",
        impact.name(),
        impact.label()
    );
    if r.worse_under_work {
        println!(
            "Resolution (`worse_under_work = true`): work only makes its condition likelier, so a finding that arose after two hours at rest (a state's declared `rest` value) also resolves when seen healthy under work; any other is judged only in the states it was raised in.\n"
        );
    }
    println!("{}\n", plain(&grouping_of(r, &lib)));
    if let Some(k) = rules::kinds::spec(r.kind_name) {
        print!("{}", k.doc);
    }
    Ok(EXIT_OK)
}

/// What the rule's findings become in a report with others: grouped across nodes or a role's
/// baseline, folded into another rule's, or taking others in.
fn grouping_of(r: &rules::Rule, lib: &Library) -> String {
    let mut lines = vec![match r.across_nodes {
        _ if r.event && r.across_nodes == rules::AcrossNodes::Each => "Across nodes (`across_nodes = \"each\"`): an event is told for each node it happens on.".to_string(),
        _ if r.event => "Across nodes: the same event on several nodes of a role within 10 minutes (a power cut rebooting a site) is one finding naming them; events further apart are told apart.".to_string(),
        rules::AcrossNodes::Group => "Across nodes (`across_nodes = \"group\"`): the same finding on several nodes of a role is one finding naming the worst nodes; a node whose numbers depart from its peers' is named on its own.".to_string(),
        rules::AcrossNodes::Baseline => "Across nodes (`across_nodes = \"baseline\"`): shown alike by nearly every node of a role it is the role's baseline and not reported; only nodes that depart from it are.".to_string(),
        rules::AcrossNodes::Each => "Across nodes (`across_nodes = \"each\"`): every node's finding stands alone.".to_string(),
    }];
    if let Some(family) = &r.family {
        let others: Vec<&str> = lib
            .rules
            .iter()
            .filter(|o| o.id != r.id && o.family.as_ref() == Some(family))
            .map(|o| o.id.as_str())
            .collect();
        lines.push(format!(
            "Family `{family}` (with {}): findings of the family about one subject fold into the most severe, the others as \"Also:\" lines.",
            if others.is_empty() { "no other rule".to_string() } else { others.join(", ") }
        ));
    }
    if !r.folds_into.is_empty() {
        lines.push(format!(
            "Folds into {}: a finding of it about the same node and subject (or the whole node) takes this one's as an \"Also:\" line.",
            r.folds_into.join(", ")
        ));
    }
    let takes: Vec<&str> = lib
        .rules
        .iter()
        .filter(|o| o.folds_into.contains(&r.id))
        .map(|o| o.id.as_str())
        .collect();
    if !takes.is_empty() {
        lines.push(format!("Takes in: {}.", takes.join(", ")));
    }
    lines.join("\n")
}

/// `patrol rules noise`: which rules spoke in most of the recent sections, or flapped.
fn noise(args: &NoiseArgs) -> Result<i32> {
    let (out, last) = (args.out.as_path(), args.last);
    let path = out.join("ledger.json");
    if !path.exists() {
        return Err(Error::Usage(format!(
            "{}: no ledger here; run `patrol report` or `patrol demo` with --out {} first",
            path.display(),
            out.display()
        )));
    }
    let ledger = Ledger::load(&path)?;
    let rows = crate::report::noise(&ledger, last);
    if rows.is_empty() {
        println!("no sections yet in {}", path.display());
        return Ok(EXIT_OK);
    }
    let sections = ledger.sections.len().min(last);
    println!("over the last {sections} sections of {}:", path.display());
    println!(
        "{:<40} {:>9} {:>6} {:>7}  verdict",
        "rule", "sections", "share", "flaps"
    );
    for r in rows {
        let line = format!(
            "{:<40} {:>9} {:>5.0}% {:>7}  {}",
            r.rule, r.sections, r.share_pct, r.flaps, r.verdict
        );
        println!("{}", plain(&line));
    }
    Ok(EXIT_OK)
}

fn fixture_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    for entry in entries {
        let p = entry.map_err(|e| Error::io(path, e))?.path();
        if p.is_dir() {
            fixture_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
    Ok(())
}

/// `patrol rules test`: every fixture against its expected findings, and, over the whole set,
/// which kinds have a firing and a quiet case.
fn rules_test(args: TestArgs, rules_dir: Option<&Path>) -> Result<i32> {
    let bless = args.bless;
    let mut roots = args.paths;
    if roots.is_empty() {
        let mut defaults = vec![PathBuf::from("tests/rules")];
        defaults.push(rules_dir.unwrap_or(Path::new("rules")).join("tests"));
        roots = defaults.into_iter().filter(|p| p.is_dir()).collect();
        if roots.is_empty() {
            return Err(Error::Usage(
                "no fixtures: give a file or directory, or create tests/rules/<kind>/<case>.toml"
                    .into(),
            ));
        }
    }
    let mut files = Vec::new();
    for root in &roots {
        if !root.exists() {
            return Err(Error::Usage(format!(
                "{}: no such fixture file or directory",
                root.display()
            )));
        }
        fixture_files(root, &mut files)?;
    }
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    // kind -> (firing cases, quiet cases), by the fixture's directory name
    let mut by_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for file in &files {
        let got = run_fixture(file)?;
        let expected_path = file.with_extension("expected");
        if bless {
            // A fixture's expected output is a source file of its repository.
            crate::fsutil::write_atomic(
                &expected_path,
                got.as_bytes(),
                crate::fsutil::Mode::Public,
            )?;
        }
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("FAIL {}: no {}", file.display(), expected_path.display());
                failed += 1;
                continue;
            }
            Err(e) => return Err(Error::io(&expected_path, e)),
        };
        let kind = file
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let entry = by_kind.entry(kind).or_default();
        if got.is_empty() {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
        if got == expected {
            passed += 1;
            println!("ok   {}", file.display());
        } else {
            failed += 1;
            println!("FAIL {}", file.display());
            for line in diff_lines(&expected, &got) {
                println!("     {}", plain(&line));
            }
        }
    }
    let lacking: Vec<String> = rules::kinds::KINDS
        .iter()
        .filter_map(|k| {
            let (firing, quiet) = by_kind.get(k.name).copied().unwrap_or_default();
            (firing == 0 || quiet == 0)
                .then(|| format!("{} ({firing} firing, {quiet} quiet)", k.name))
        })
        .collect();
    let covered = rules::kinds::KINDS.len() - lacking.len();
    println!("{passed} passed, {failed} failed");
    // Coverage of kinds only means something for a whole fixture tree.
    if roots.iter().any(|r| r.is_dir()) {
        println!(
            "{covered} of {} kinds have a firing and a quiet fixture",
            rules::kinds::KINDS.len()
        );
        if !lacking.is_empty() {
            println!("kinds without both: {}", lacking.join(", "));
        }
    }
    Ok(if failed == 0 { EXIT_OK } else { EXIT_FINDINGS })
}

/// Lines only in `expected` (-) and only in `got` (+), in order, for a readable failure.
fn diff_lines(expected: &str, got: &str) -> Vec<String> {
    let e: Vec<&str> = expected.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out = Vec::new();
    for line in &e {
        if !g.contains(line) {
            out.push(format!("- {line}"));
        }
    }
    for line in &g {
        if !e.contains(line) {
            out.push(format!("+ {line}"));
        }
    }
    out
}

/// `patrol backtest`: one rule over every capture of an archive; prints each time it opened,
/// resolved or could not check, and a summary.
pub(super) fn backtest(args: &BacktestArgs) -> Result<i32> {
    let (rule_id, archive_arg, window) = (
        args.rule.as_str(),
        args.archive.as_str(),
        args.window.as_str(),
    );
    let mut library = load_library(args.rules.as_deref())?;
    if library.get(rule_id).is_none() {
        let names: Vec<&str> = library.rules.iter().map(|r| r.id.as_str()).collect();
        return Err(Error::Usage(format!(
            "no rule `{rule_id}` in the library{}",
            crate::error::did_you_mean(rule_id, &names)
        )));
    }
    library.rules.retain(|r| r.id == rule_id);
    let span = library.history_span(window_span(window)?);
    let (archive, _, tz) = open_archive(archive_arg)?;
    let rounds = replay_rounds(&archive, &library, span)?;
    let mut open: std::collections::BTreeSet<String> = Default::default();
    let (mut opened, mut resolved, mut rounds_firing) = (0, 0, 0);
    for round in &rounds {
        let stamp = round.at.with_timezone(&tz).format("%Y-%m-%d %H:%M");
        if !round.findings.is_empty() {
            rounds_firing += 1;
        }
        for f in &round.findings {
            if open.insert(f.key()) || f.event {
                opened += 1;
                println!(
                    "{stamp} FIRES    [{}] {}",
                    f.severity.label(),
                    plain(&f.title)
                );
            }
            if f.event {
                open.remove(&f.key());
            }
        }
        for f in &round.resolved {
            open.remove(&f.key());
            resolved += 1;
            println!("{stamp} RESOLVED {}", plain(&f.title));
        }
    }
    println!(
        "{rule_id}: {} capture rounds, fired in {rounds_firing}; {opened} findings opened, {resolved} resolved, {} still open",
        rounds.len(),
        open.len()
    );
    Ok(EXIT_OK)
}

/// Runs one rule fixture: a scenario file that also carries `[[rule]]` instances. The scenario is
/// replayed capture by capture and every finding the rules open or resolve is written down, one
/// block per event, in UTC. The text is compared with `<fixture>.expected`.
pub fn run_fixture(path: &Path) -> Result<String> {
    // Both callbacks write the one text, in the order the replay reports.
    let out = std::cell::RefCell::new(String::new());
    replay_fixture(
        path,
        None,
        &mut |stamp, tag, f| {
            out.borrow_mut().push_str(&format!(
                "{stamp} {tag} [{}] {} {}\n  title: {}\n  evidence: {}\n",
                f.severity.label(),
                f.rule_id,
                f.nodes.join(","),
                f.title,
                f.evidence
            ));
        },
        &mut |stamp, r| {
            out.borrow_mut().push_str(&format!(
                "{stamp} RESOLVED {} {} now {}\n",
                r.finding.rule_id,
                r.finding.nodes.join(","),
                r.now.clone().unwrap_or_else(|| "-".into())
            ));
        },
    )?;
    Ok(out.into_inner())
}

/// Every finding a fixture's scenario reports, replayed with the fixture's own rules or, when
/// `library` is given, with that library instead (to read the library's texts on the data
/// written for them).
pub fn fixture_findings(path: &Path, library: Option<&Library>) -> Result<Vec<Finding>> {
    let mut found = Vec::new();
    replay_fixture(
        path,
        library,
        &mut |_, _, f| found.push(f.clone()),
        &mut |_, _| {},
    )?;
    Ok(found)
}

type OnReported<'a> = dyn FnMut(&str, &str, &Finding) + 'a;
type OnResolved<'a> = dyn FnMut(&str, &crate::ledger::Resolved) + 'a;

fn replay_fixture(
    path: &Path,
    library: Option<&Library>,
    on_reported: &mut OnReported<'_>,
    on_resolved: &mut OnResolved<'_>,
) -> Result<()> {
    let text = crate::fsutil::read_to_string(path)?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| Error::bad_file(path, e.message().to_string()))?;
    let rules_value = table
        .remove("rule")
        .ok_or_else(|| Error::bad_file(path, "a fixture needs at least one [[rule]]"))?;
    let mut rules_table = toml::Table::new();
    rules_table.insert("rule".into(), rules_value);
    // States and aliases belong to the rule library, not to the scenario.
    for key in ["state", "alias"] {
        if let Some(v) = table.remove(key) {
            rules_table.insert(key.into(), v);
        }
    }
    let to_text =
        |t: &toml::Table| toml::to_string(t).map_err(|e| Error::bad_file(path, e.to_string()));
    let own = Library::from_sources(&[(path.to_path_buf(), to_text(&rules_table)?)])?;
    let library = library.unwrap_or(&own);
    let scenario = simulate::parse(path, &to_text(&table)?)?;
    // Fixtures are written in UTC, and only read: nothing is written but the text.
    replay_scenario(
        &scenario,
        library,
        chrono_tz::UTC,
        &mut |round, outcome, _| {
            let stamp = round.at.format("%Y-%m-%d %H:%M:%S").to_string();
            for n in &outcome.reported {
                let tag = match &n.reason {
                    Reason::New => "NEW".to_string(),
                    Reason::Reopened { .. } => "REOPENED".to_string(),
                    Reason::Escalated { why } => format!("ESCALATED ({why})"),
                    Reason::Changed { what } => format!("CHANGED ({what})"),
                    Reason::Unchanged { nth, .. } => format!("REPEATED (report {nth})"),
                    Reason::AckExpired { .. } => "ACK EXPIRED".to_string(),
                };
                on_reported(&stamp, &tag, &n.finding);
            }
            for r in &outcome.resolved {
                on_resolved(&stamp, r);
            }
        },
    )
}

/// What a replay hands on after each capture round: its time, what the ledger made of it, and
/// the ledger.
pub(super) type OnRound<'a> = dyn FnMut(RoundTime, &Outcome, &Ledger) + 'a;

/// Replays a scenario capture by capture through `library` with a 24-hour window (or the
/// longer one a rule asks for, [`Library::history_span`]) and a fresh
/// ledger, writing nothing: the one path of `rules test` and `rules score`, so a score judges
/// what a fixture (and a user) would be told.
pub(super) fn replay_scenario(
    scenario: &simulate::scenario::Scenario,
    library: &Library,
    tz: Tz,
    each: &mut OnRound<'_>,
) -> Result<()> {
    let snapshots = simulate::generate(scenario)?;
    let mut window = Window::new(library.history_span(chrono::Duration::hours(24)));
    let mut ledger = Ledger::default();
    for round in group_rounds(snapshots, |s| s.node.as_str(), |s| s.captured_at) {
        let first = round.iter().map(|s| s.captured_at).min();
        for s in round {
            window.push(s);
        }
        let Some(at) = window.latest_at() else {
            continue;
        };
        let outcome = analyse_round(library, tz, &mut ledger, &window, None)?.outcome;
        let first = first.unwrap_or(at).min(at);
        each(RoundTime { first, at }, &outcome, &ledger);
    }
    Ok(())
}
