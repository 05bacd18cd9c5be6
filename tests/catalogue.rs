//! The metric catalogue holds: every metric the history layer emits is catalogued under the
//! entity it is read under, every catalogued metric is emitted by some snapshot, and
//! docs/snapshot-format.md lists exactly the catalogue. A metric added to `readings` and
//! forgotten here would otherwise print as a bare number with no unit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use patrol::history::catalogue::{METRICS, lookup};
use patrol::history::metrics::readings;
use patrol::model::Snapshot;

use crate::support::root;

/// The entity kind of a reading: `disk` for `disk:/`, `host` for `host`.
fn kind(entity: &str) -> &str {
    entity.split_once(':').map_or(entity, |(k, _)| k)
}

/// The snapshots of a scenario, or of a rule fixture (a scenario with `[[rule]]`s beside it).
fn simulated(path: &Path) -> Vec<Snapshot> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    for key in ["rule", "state", "alias"] {
        table.remove(key);
    }
    let scenario = patrol::simulate::parse(path, &toml::to_string(&table).unwrap()).unwrap();
    patrol::simulate::generate(&scenario).unwrap()
}

type Emitted = BTreeMap<&'static str, BTreeMap<String, String>>;

/// A demo capture with the fields the simulator leaves empty set as the real collectors set
/// them (Docker's health streak, OOM flag and block I/O, a GPU's fan, a Prometheus query), so
/// the metrics read from them are emitted by a snapshot too.
fn collector_filled(demo: &[Snapshot]) -> Snapshot {
    let mut s = demo
        .iter()
        .find(|s| {
            s.gpus.as_ref().is_some_and(|g| !g.is_empty())
                && s.containers.as_ref().is_some_and(|c| !c.is_empty())
        })
        .expect("snapshots/demo: a capture with GPUs and containers")
        .clone();
    for g in s.gpus.iter_mut().flatten() {
        g.fan_pct = Some(40.0);
    }
    for c in s.containers.iter_mut().flatten() {
        c.failing_streak = Some(0);
        c.oom_killed = Some(false);
        c.blkio_write_bytes = Some(4096);
    }
    s.queries.push(patrol::model::QueryResult {
        name: "up".into(),
        labels: BTreeMap::new(),
        value: Some(1.0),
    });
    s
}

/// Every (metric → entity kinds, where first seen) the history layer emits over the demo
/// archive, the bundled scenarios and every rule fixture; gathered once for both tests.
fn emitted() -> &'static Emitted {
    static EMITTED: std::sync::OnceLock<Emitted> = std::sync::OnceLock::new();
    EMITTED.get_or_init(gather)
}

fn gather() -> Emitted {
    let mut seen = Emitted::new();
    let mut note = |snapshots: &[Snapshot], origin: &str| {
        for s in snapshots {
            for r in readings(s) {
                seen.entry(r.metric)
                    .or_default()
                    .entry(kind(&r.entity).to_string())
                    .or_insert_with(|| origin.to_string());
            }
        }
    };
    let demo = patrol::store::Archive::open(root().join("snapshots/demo"));
    let entries = demo.list(None, None, None).unwrap();
    let (snapshots, skipped) = demo.load_entries(&entries);
    assert!(
        skipped.is_empty() && !snapshots.is_empty(),
        "snapshots/demo"
    );
    note(&snapshots, "snapshots/demo");
    note(
        &[collector_filled(&snapshots)],
        "a demo capture as the collectors fill it",
    );
    let mut files: Vec<_> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for dir in std::fs::read_dir(root().join("tests/rules")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    files.retain(|p| p.extension().is_some_and(|x| x == "toml"));
    files.sort();
    for path in &files {
        note(&simulated(path), &path.display().to_string());
    }
    seen
}

#[test]
fn every_emitted_metric_is_catalogued_under_its_entity() {
    let mut wrong = Vec::new();
    for (metric, kinds) in emitted() {
        for (kind, origin) in kinds {
            match lookup(metric) {
                None => wrong.push(format!("`{metric}` (from {origin}) is not catalogued")),
                Some(d) if d.entity != kind.as_str() => wrong.push(format!(
                    "`{metric}` is read under `{kind}` (from {origin}), catalogued under `{}`",
                    d.entity
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "src/history/catalogue.rs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_catalogued_metric_is_emitted_by_some_snapshot() {
    let seen = emitted();
    let never: Vec<&str> = METRICS
        .iter()
        .map(|d| d.name)
        .filter(|m| !seen.contains_key(m))
        .collect();
    assert!(
        never.is_empty(),
        "src/history/catalogue.rs catalogues metrics no demo capture, scenario or rule fixture \
         emits (a fixture that reads them, or a catalogue without them): {never:?}"
    );
}

/// The metric table of docs/snapshot-format.md: entity kind → metric names (backticked).
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let path = root().join("docs/snapshot-format.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find("## Series: what rules select")
        .expect("docs/snapshot-format.md: the section of the metric table");
    let mut table = BTreeMap::new();
    let rows = text[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| entity | metrics |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    for row in rows {
        // `\|` inside a code span (the logtpl entity) is not a cell border.
        let row = row.replace("\\|", "¦");
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(cells.len() >= 3, "docs/snapshot-format.md: row `{row}`");
        let ticked = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        let entity = ticked(cells[1]).into_iter().next().unwrap_or_default();
        let metrics = table
            .entry(kind(&entity).to_string())
            .or_insert_with(BTreeSet::new);
        metrics.extend(ticked(cells[2]));
    }
    assert!(
        !table.is_empty(),
        "docs/snapshot-format.md: no metric table"
    );
    table
}

#[test]
fn snapshot_format_lists_exactly_the_catalogue() {
    let docs = documented();
    let mut wrong = Vec::new();
    for d in METRICS {
        if docs.get(d.entity).is_none_or(|m| !m.contains(d.name)) {
            wrong.push(format!("`{}` is not listed under `{}`", d.name, d.entity));
        }
    }
    for (entity, metrics) in &docs {
        for m in metrics {
            if lookup(m).is_none_or(|d| d.entity != entity) {
                wrong.push(format!("`{m}` under `{entity}` is not in the catalogue"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/snapshot-format.md against src/history/catalogue.rs:\n{}",
        wrong.join("\n")
    );
}
