//! `patrol rules score`: the library judged against answer keys written from a story. Each key's
//! scenario (or, with `--archive`, a fleet's own history) is replayed through the same path as
//! `rules test` or `backtest`, the ledger's episodes are matched against the key
//! ([`crate::rules::score`]), and recall, precision, misses and extras are printed, so a change
//! to a rule can be weighed on fleets it was not written for.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::analysis::replay_each;
use super::rules::replay_scenario;
use super::{EXIT_FINDINGS, EXIT_OK, fleet_config, open_archive, window_span};
use crate::cli::ScoreArgs;
use crate::error::{Error, Result};
use crate::markdown::plain;
use crate::rules::Library;
use crate::rules::score::{Context, Episode, KeyFile, Score, Tracker, pct, score, stamp};
use crate::simulate;
use crate::store::Archive;

/// What a key is scored against.
enum Target {
    Scenario(PathBuf),
    Archive(String),
}

/// One key's score, with what was replayed.
struct Scored {
    key: PathBuf,
    target: String,
    nodes: usize,
    rounds: usize,
    seconds: f64,
    tz: Tz,
    score: Score,
}

/// Every `*.key.toml` of a directory, sorted.
fn keys_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.is_file()
            && p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(".key.toml"))
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The keys to score and what each is scored against (`None`: the scenario the key names).
fn jobs(args: &ScoreArgs) -> Result<Vec<(PathBuf, Option<Target>)>> {
    if let Some(key) = &args.expect {
        return match (&args.archive, args.paths.as_slice()) {
            (Some(a), []) => Ok(vec![(key.clone(), Some(Target::Archive(a.clone())))]),
            (None, [scenario]) => Ok(vec![(key.clone(), Some(Target::Scenario(scenario.clone())))]),
            _ => Err(Error::Usage(
                "--expect KEY scores one scenario (`--expect KEY SCENARIO.toml`) or an archive (`--expect KEY --archive DIR`)".into(),
            )),
        };
    }
    if args.archive.is_some() {
        return Err(Error::Usage(
            "--archive needs the key to score it against: --expect KEY".into(),
        ));
    }
    if args.paths.is_empty() {
        return Err(Error::Usage(
            "give an answer key (KEY.key.toml), a directory of them, or --expect KEY SCENARIO"
                .into(),
        ));
    }
    let mut out = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            out.extend(keys_in(p)?.into_iter().map(|k| (k, None)));
        } else if p.is_file() {
            out.push((p.clone(), None));
        } else {
            return Err(Error::Usage(format!(
                "{}: no such answer key or directory",
                p.display()
            )));
        }
    }
    Ok(out)
}

/// The scheduled time of the capture round whose first capture was at `t`: a key speaks of
/// rounds as scheduled, and nodes are captured seconds after (their offset and `jitter`).
fn scheduled(t: DateTime<Utc>, start: DateTime<Utc>, interval_s: f64) -> DateTime<Utc> {
    let interval_ms = (interval_s * 1000.0).round() as i64;
    if interval_ms <= 0 || t < start {
        return t;
    }
    let k = (t - start).num_milliseconds() / interval_ms;
    start + chrono::Duration::milliseconds(k * interval_ms)
}

pub(super) fn score_cmd(
    args: &ScoreArgs,
    config: Option<PathBuf>,
    library: impl Fn() -> Result<Library>,
) -> Result<i32> {
    let jobs = jobs(args)?;
    let lib = library()?;
    let ids: Vec<&str> = lib.rules.iter().map(|r| r.id.as_str()).collect();
    let window = match &args.window {
        Some(w) => w.clone(),
        None => match fleet_config(config)? {
            Some(c) => c.window,
            None => "24h".into(),
        },
    };
    let mut scored = Vec::new();
    for (key_path, target) in jobs {
        let keyfile = KeyFile::load(&key_path)?;
        let target = match target.or_else(|| keyfile.scenario_path().map(Target::Scenario)) {
            Some(t) => t,
            None => {
                return Err(Error::bad_file(
                    &key_path,
                    "[key] names no scenario: add `scenario = \"….toml\"`, or score it with --expect KEY SCENARIO or --expect KEY --archive DIR",
                ));
            }
        };
        let started = Instant::now();
        let mut tracker = Tracker::default();
        let mut rounds = 0;
        let (key, tz, nodes, what) = match &target {
            Target::Scenario(path) => {
                let scenario = simulate::load(path)?;
                let tz = scenario.scenario.timezone.0;
                let start = scenario.scenario.start.resolve(tz, Utc::now());
                let nodes: Vec<String> = simulate::expand_nodes(&scenario)
                    .into_iter()
                    .map(|n| n.name)
                    .collect();
                let key = keyfile.resolve(&Context {
                    tz,
                    start,
                    rules: &ids,
                    nodes: &nodes,
                })?;
                let interval = scenario.scenario.interval.0;
                replay_scenario(&scenario, &lib, tz, &mut |round, _, ledger| {
                    tracker.observe(ledger, round.at, scheduled(round.first, start, interval));
                    rounds += 1;
                })?;
                (key, tz, nodes.len(), format!("scenario {}", path.display()))
            }
            Target::Archive(arg) => {
                let (archive, _, tz) = open_archive(arg)?;
                let (start, nodes) = first_capture_and_nodes(&archive)?;
                let key = keyfile.resolve(&Context {
                    tz,
                    start,
                    rules: &ids,
                    nodes: &nodes,
                })?;
                replay_each(
                    &archive,
                    &lib,
                    lib.history_span(window_span(&window)?),
                    &mut |round, _, ledger| {
                        tracker.observe(ledger, round.at, round.first);
                        rounds += 1;
                    },
                )?;
                (
                    key,
                    tz,
                    nodes.len(),
                    format!("archive {}", archive.describe()),
                )
            }
        };
        let s = score(&key, tracker.finish(), tz);
        scored.push(Scored {
            key: key_path,
            target: what,
            nodes,
            rounds,
            seconds: started.elapsed().as_secs_f64(),
            tz,
            score: s,
        });
    }
    let (hit, expected) = sum(&scored, |s| (s.hit, s.expectations));
    let (correct, episodes) = sum(&scored, |s| (s.correct, s.episodes.len()));
    if args.json {
        print_json(&scored, (hit, expected), (correct, episodes))?;
    } else {
        if scored.is_empty() {
            println!("no answer keys (*.key.toml) to score");
        }
        for s in &scored {
            print_text(s);
        }
        println!(
            "total: recall {}, precision {} over {}",
            fraction(hit, expected),
            fraction(correct, episodes),
            crate::units::plural(scored.len(), "key")
        );
    }
    let mut code = EXIT_OK;
    for (name, value, min) in [
        ("recall", pct(hit, expected), args.min_recall),
        ("precision", pct(correct, episodes), args.min_precision),
    ] {
        if let Some(min) = min
            && value < min
        {
            eprintln!("patrol: {name} {value:.1}% is under the {min}% asked for");
            code = EXIT_FINDINGS;
        }
    }
    Ok(code)
}

/// When an archive begins (what `+6h` in a key counts from) and the nodes it holds.
fn first_capture_and_nodes(archive: &Archive) -> Result<(DateTime<Utc>, Vec<String>)> {
    let entries = archive.list(None, None, None)?;
    let Some(start) = entries.iter().map(|e| e.captured_at).min() else {
        return Err(Error::Usage(format!(
            "{}: the archive holds no captures to score",
            archive.describe()
        )));
    };
    let mut nodes: Vec<String> = entries.iter().map(|e| e.node.clone()).collect();
    nodes.sort();
    nodes.dedup();
    Ok((start, nodes))
}

fn sum(scored: &[Scored], f: impl Fn(&Score) -> (usize, usize)) -> (usize, usize) {
    scored
        .iter()
        .map(|s| f(&s.score))
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
}

/// `7/8 (87.5%)`.
fn fraction(n: usize, d: usize) -> String {
    if d == 0 {
        format!("{n}/{d} (nothing to count)")
    } else {
        format!("{n}/{d} ({:.1}%)", pct(n, d))
    }
}

/// An episode on one line: severity, rule, nodes, subject, when it opened and ended, title.
fn episode_line(ep: &Episode, tz: Tz) -> String {
    let end = match (ep.resolved, ep.event) {
        (_, true) => "an event".to_string(),
        (Some(r), false) => format!("resolved {}", stamp(r, tz)),
        (None, false) => "open at the end".to_string(),
    };
    let note = ep
        .note
        .as_ref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    plain(&format!(
        "[{}] {} on {} {}, opened {}, {end}{note}: {}",
        ep.severity,
        ep.rule,
        ep.nodes.join(","),
        ep.subject,
        stamp(ep.opened, tz),
        ep.title
    ))
}

fn print_text(s: &Scored) {
    let sc = &s.score;
    println!(
        "{}: {}, {} nodes, {} capture rounds, replayed and scored in {:.1}s",
        s.key.display(),
        s.target,
        s.nodes,
        s.rounds,
        s.seconds
    );
    println!(
        "  recall    {} of the expectations met",
        fraction(sc.hit, sc.expectations)
    );
    println!(
        "  precision {} of the episodes expected or allowed",
        fraction(sc.correct, sc.episodes.len())
    );
    for m in &sc.misses {
        println!("  MISS  `{}`: {}", m.expect, plain(&m.wanted));
        if !m.why.is_empty() {
            println!("        story: {}", plain(&m.why));
        }
        match m.nearest {
            Some(i) => println!(
                "        nearest: {}\n        did not count: {}",
                episode_line(&sc.episodes[i], s.tz),
                plain(&m.reason)
            ),
            None => println!("        nearest: none ({})", plain(&m.reason)),
        }
    }
    for x in &sc.extras {
        println!(
            "  EXTRA {}\n        {}",
            episode_line(&sc.episodes[x.episode], s.tz),
            plain(&x.reason)
        );
    }
}

fn print_json(
    scored: &[Scored],
    (hit, expected): (usize, usize),
    (correct, episodes): (usize, usize),
) -> Result<()> {
    let figures = |n: usize, d: usize| json!({ "count": n, "of": d, "pct": pct(n, d) });
    let keys: Vec<serde_json::Value> = scored
        .iter()
        .map(|s| {
            let sc = &s.score;
            json!({
                "key": s.key.display().to_string(),
                "target": s.target,
                "nodes": s.nodes,
                "rounds": s.rounds,
                "seconds": s.seconds,
                "recall": figures(sc.hit, sc.expectations),
                "precision": figures(sc.correct, sc.episodes.len()),
                "hits": sc.hits,
                "misses": sc.misses.iter().map(|m| json!({
                    "expect": m.expect,
                    "why": m.why,
                    "wanted": m.wanted,
                    "nearest": m.nearest.map(|i| &sc.episodes[i]),
                    "reason": m.reason,
                })).collect::<Vec<_>>(),
                "extras": sc.extras.iter().map(|x| json!({
                    "episode": &sc.episodes[x.episode],
                    "reason": x.reason,
                })).collect::<Vec<_>>(),
                "episodes": sc.episodes,
            })
        })
        .collect();
    let doc = json!({
        "keys": keys,
        "total": {
            "keys": scored.len(),
            "recall": figures(hit, expected),
            "precision": figures(correct, episodes),
        },
    });
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| Error::Runtime(format!("cannot encode the score as JSON: {e}")))?;
    println!("{text}");
    Ok(())
}
