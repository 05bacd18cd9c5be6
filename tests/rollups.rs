//! Daily rollups (issue 18): the weekly digest is the same whether it is built from the
//! snapshots, while building the rollups, or from saved rollups; rollups fed capture by capture,
//! as runs feed them, are the rollups built at once; a stale or damaged one is rebuilt.

use std::path::PathBuf;

use chrono_tz::Tz;
use patrol::digest::rollup;
use patrol::digest::{Week, build};
use patrol::ledger::Ledger;
use patrol::model::Snapshot;
use patrol::rules::Library;
use patrol::store::{Archive, Entry};

/// Two nodes over eight days, hourly, in a zone with a DST change (Europe/Berlin, 29 March):
/// a leak, a disk fill, an unhealthy spell, a reboot and an idle GPU.
const FLEET: &str = r#"
[scenario]
fleet = "rollups"
timezone = "Europe/Berlin"
seed = 5
start = "2026-03-22 22:00"
end = "2026-03-30 02:00"
interval = "1h"
jitter = "20s"

[[node]]
name = "a"
booted = "2026-03-01 00:00"
events = [
  { kind = "reboot", at = "2026-03-25 04:10" },
  { kind = "unhealthy", container = "api", at = "2026-03-26 10:00", until = "2026-03-26 14:00", output = "timeout" },
]
[node.host]
mem_total = "16GB"
mem_available = { start = "8GB", noise = "200MB" }
cpu_steal_pct = { start = 1, noise = 0.5, min = 0 }
disks = [{ mount = "/", size = "100GB", used = { start = "60GB", rate = "+100MB/h", noise = "50MB" } }]
[[node.gpu]]
name = "gpu"
util_pct = 0
mem_used_pct = 40
temp_c = { start = 40, noise = 2 }
[[node.container]]
name = "api"
image = "api"
mem = { start = "300MB", rate = "+5MB/h", noise = "2MB" }
health = "healthy"

[[node]]
name = "b"
[node.host]
mem_total = "16GB"
mem_available = { start = "9GB", noise = "100MB" }
disks = [{ mount = "/data", size = "1TB", used = { start = "400GB", noise = "1GB" } }]
[[node.container]]
name = "db"
image = "postgres"
mem = { start = "1GB", noise = "10MB" }
"#;

fn simulated(dir: &std::path::Path) -> (Archive, Vec<Snapshot>) {
    let scenario = patrol::simulate::parse(std::path::Path::new("fleet.toml"), FLEET).unwrap();
    let archive = Archive::open(dir);
    let mut snaps = Vec::new();
    patrol::simulate::generate_each(&scenario, |s| {
        archive.write(&s).unwrap();
        snaps.push(s);
    })
    .unwrap();
    (archive, snaps)
}

fn digest_json(archive: &Archive, rollups: Option<rollup::RollupDir>) -> String {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let week = Week::parse("2026-W13", tz).unwrap();
    let library = Library::from_sources(&[]).unwrap();
    let d = build(
        archive,
        &Ledger::default(),
        &library,
        ("rollups", tz),
        &week,
        rollups,
    )
    .unwrap();
    assert!(d.nodes.iter().all(|n| n.captures > 100), "{:?}", d.nodes);
    serde_json::to_string_pretty(&d).unwrap()
}

#[test]
fn a_digest_from_rollups_is_the_digest_from_the_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, _) = simulated(&dir.path().join("archive"));
    let rollups = rollup::RollupDir {
        dir: dir.path().join("rollups"),
        mode: patrol::fsutil::Mode::Private,
    };
    let in_memory = digest_json(&archive, None);
    let building = digest_json(&archive, Some(rollups.clone()));
    let saved = std::fs::read_dir(rollups.dir.join("a")).unwrap().count();
    // Monday to Sunday, local days (the Sunday is 23 hours long).
    assert_eq!(saved, 7);
    let reading = digest_json(&archive, Some(rollups.clone()));
    assert_eq!(in_memory, building);
    assert_eq!(in_memory, reading);
    assert!(in_memory.contains("\"reboots\": 1"), "{in_memory}");
    assert!(
        in_memory.contains("\"container\": \"api\",\n          \"unhealthy_s\": 14400,"),
        "{in_memory}"
    );
    // A rollup that no longer matches the archive (a capture deleted) is rebuilt, not trusted.
    let day = rollups.path("b", chrono::NaiveDate::from_ymd_opt(2026, 3, 25).unwrap());
    let mut stale = rollup::DayRollup::decode(&std::fs::read(&day).unwrap()).unwrap();
    stale.listed.pop();
    std::fs::write(&day, stale.encode().unwrap()).unwrap();
    assert_eq!(in_memory, digest_json(&archive, Some(rollups.clone())));
    // So is a damaged one.
    std::fs::write(&day, b"patrol-rollup\n\x01\x00\x00\x00garbage").unwrap();
    assert_eq!(in_memory, digest_json(&archive, Some(rollups)));
}

#[test]
fn rollups_fed_capture_by_capture_are_the_rollups_built_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, snaps) = simulated(&dir.path().join("archive"));
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let fed = rollup::RollupDir {
        dir: dir.path().join("fed"),
        mode: patrol::fsutil::Mode::Private,
    };
    let mut listing = archive.list(None, None, None).unwrap();
    listing.sort_by_key(|e| (e.captured_at, e.node.clone()));
    for s in &snaps {
        let upto: Vec<Entry> = listing
            .iter()
            .filter(|e| e.captured_at <= s.captured_at)
            .cloned()
            .collect();
        rollup::land(&fed, tz, &upto, [(s.node.as_str(), vec![s])]);
    }
    let built = rollup::RollupDir {
        dir: dir.path().join("built"),
        mode: patrol::fsutil::Mode::Private,
    };
    let from_fed = digest_json(&archive, Some(fed.clone()));
    assert_eq!(from_fed, digest_json(&archive, Some(built.clone())));
    for node in ["a", "b"] {
        for e in std::fs::read_dir(built.dir.join(node)).unwrap() {
            let name = e.unwrap().file_name();
            let (a, b) = (
                std::fs::read(built.dir.join(node).join(&name)).unwrap(),
                std::fs::read(fed.dir.join(node).join(&name)).unwrap(),
            );
            assert!(a == b, "{node}/{name:?} differs fed from built");
        }
    }
}

#[test]
fn a_node_name_never_leaves_the_rollup_directory() {
    let r = rollup::RollupDir {
        dir: PathBuf::from("/out/rollups"),
        mode: patrol::fsutil::Mode::Private,
    };
    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    assert_eq!(
        r.path("../../etc/x", date),
        PathBuf::from("/out/rollups/%2E.%2F..%2Fetc%2Fx/2026-03-02.bin")
    );
    assert_eq!(
        r.path("vk01.plant", date),
        PathBuf::from("/out/rollups/vk01.plant/2026-03-02.bin")
    );
}
