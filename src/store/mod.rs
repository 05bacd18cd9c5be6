//! The archive: every snapshot ever captured, so any two points in time can be compared later.
//! Two backends behind one interface: a directory of zstd-compressed JSON files ([`files`]), and
//! a PostgreSQL database several collectors share ([`postgres`]). Both store the same bytes per
//! capture and list captures from an index (file names, or the table's key) without reading
//! them; a capture that is corrupt anyway (disk trouble, a copy cut short) is skipped with a
//! warning that names it.

pub mod files;
pub mod postgres;
pub mod retention;

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{SCHEMA_MAJOR, Snapshot};

pub use files::{FileArchive, read_snapshot_file};
pub use postgres::{PgArchive, PgTarget};

/// Fixed so that the same snapshot always gives the same bytes.
const ZSTD_LEVEL: i32 = 9;

/// Where an archived capture is kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    File(PathBuf),
    /// A row of the shared archive, and the bytes its body takes.
    Row {
        bytes: u64,
    },
}

/// One archived capture, known from the index alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub captured_at: DateTime<Utc>,
    pub node: String,
    pub location: Location,
}

impl Entry {
    /// `node@time`, as people name a capture.
    pub fn describe(&self) -> String {
        format!(
            "{}@{}",
            self.node,
            self.captured_at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }

    /// Bytes the capture takes where it is stored.
    pub fn stored_bytes(&self) -> u64 {
        match &self.location {
            Location::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Location::Row { bytes } => *bytes,
        }
    }
}

/// One capture as stored: the compressed snapshot and what the index needs to know of it.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub node: String,
    pub captured_at: DateTime<Utc>,
    pub schema_version: String,
    /// zstd-compressed snapshot JSON.
    pub body: Vec<u8>,
}

impl Encoded {
    pub fn of(snapshot: &Snapshot) -> Result<Encoded> {
        Ok(Encoded {
            node: snapshot.node.clone(),
            captured_at: snapshot.captured_at,
            schema_version: snapshot.schema_version.clone(),
            body: encode(snapshot)?,
        })
    }
}

/// The entry closest in time to `at`, the earlier one on a tie.
pub fn closest<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    at: DateTime<Utc>,
) -> Option<&'a Entry> {
    entries
        .into_iter()
        .min_by_key(|e| ((e.captured_at - at).num_seconds().abs(), e.captured_at))
}

/// A capture that could not be read, and why; loading goes on without it.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub what: String,
    pub reason: String,
}

/// An archive, on files or in PostgreSQL.
#[derive(Debug)]
pub enum Archive {
    Files(FileArchive),
    Postgres(Box<PgArchive>),
}

impl Archive {
    /// The filesystem archive rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Archive {
        Archive::Files(FileArchive::open(root))
    }

    /// The shared archive at `target`; see [`PgArchive::connect`].
    pub fn connect(
        target: &PgTarget,
        password: Option<&str>,
        default_fleet: Option<&str>,
    ) -> Result<Archive> {
        PgArchive::connect(target, password, default_fleet).map(|a| Archive::Postgres(Box::new(a)))
    }

    /// The directory, or the URL (never with a password).
    pub fn describe(&self) -> String {
        match self {
            Archive::Files(f) => f.root().display().to_string(),
            Archive::Postgres(p) => p.display(),
        }
    }

    /// The directory of a filesystem archive.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Archive::Files(f) => Some(f.root()),
            Archive::Postgres(_) => None,
        }
    }

    /// The fleet a shared archive was opened for (a directory says it in its metadata).
    pub fn fleet(&self) -> Option<&str> {
        match self {
            Archive::Files(_) => None,
            Archive::Postgres(p) => Some(p.fleet()),
        }
    }

    /// Writes one snapshot atomically.
    pub fn write(&self, snapshot: &Snapshot) -> Result<()> {
        self.write_all(std::slice::from_ref(snapshot))
    }

    /// Writes the snapshots of one capture round (in one statement for a shared archive).
    pub fn write_all(&self, snapshots: &[Snapshot]) -> Result<()> {
        let encoded = snapshots
            .iter()
            .map(Encoded::of)
            .collect::<Result<Vec<_>>>()?;
        self.write_encoded(&encoded)
    }

    /// Writes captures already encoded.
    pub fn write_encoded(&self, captures: &[Encoded]) -> Result<()> {
        match self {
            Archive::Files(f) => captures.iter().try_for_each(|c| f.write_encoded(c)),
            Archive::Postgres(p) => p.write_encoded(captures),
        }
    }

    /// Node names present in the archive, sorted.
    pub fn nodes(&self) -> Result<Vec<String>> {
        match self {
            Archive::Files(f) => f.nodes(),
            Archive::Postgres(p) => p.nodes(),
        }
    }

    /// Captures with `from <= captured_at <= to`, oldest first, for one node or all.
    pub fn list(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        node: Option<&str>,
    ) -> Result<Vec<Entry>> {
        let entries = match self {
            Archive::Files(f) => f.list(from, to, node)?,
            Archive::Postgres(p) => p.list(from, to, node)?,
        };
        Ok(without_future(entries, Utc::now(), &self.describe()))
    }

    /// The capture of `node` closest in time to `at` (the earlier one on a tie).
    pub fn nearest(&self, node: &str, at: DateTime<Utc>) -> Result<Option<Entry>> {
        match self {
            Archive::Files(_) => Ok(closest(&self.list(None, None, Some(node))?, at).cloned()),
            // The index's two neighbours of `at`; when one is dated in the future (and so not in
            // the archive as `list` sees it), the node's captures up to now decide.
            Archive::Postgres(p) => match p.nearest(node, at)? {
                Some(e) if e.captured_at <= Utc::now() + FUTURE_ALLOWANCE => Ok(Some(e)),
                _ => Ok(closest(&self.list(None, None, Some(node))?, at).cloned()),
            },
        }
    }

    /// Loads the given entries, skipping (and reporting) the ones that cannot be read.
    pub fn load_entries(&self, entries: &[Entry]) -> (Vec<Snapshot>, Vec<Skipped>) {
        let mut snapshots = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for loaded in self.load_each(entries) {
            match loaded {
                Ok(s) => snapshots.push(s),
                Err(s) => skipped.push(s),
            }
        }
        (snapshots, skipped)
    }

    /// Loads the given entries, one answer per entry in the same order. Reading and decoding
    /// are spread over the machine's cores when there are many (a 24-hour window of a large fleet
    /// is mostly zstd and JSON work).
    pub fn load_each(&self, entries: &[Entry]) -> Vec<std::result::Result<Snapshot, Skipped>> {
        const PER_WORKER_MIN: usize = 64;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(entries.len() / PER_WORKER_MIN)
            .max(1);
        if workers == 1 {
            return self.load_sequentially(entries);
        }
        let chunk = entries.len().div_ceil(workers);
        std::thread::scope(|scope| {
            let handles: Vec<_> = entries
                .chunks(chunk)
                .map(|part| scope.spawn(move || self.load_sequentially(part)))
                .collect();
            handles
                .into_iter()
                .zip(entries.chunks(chunk))
                .flat_map(|(h, part)| {
                    h.join().unwrap_or_else(|_| {
                        part.iter()
                            .map(|e| {
                                Err(Skipped {
                                    what: e.describe(),
                                    reason: "the reader thread failed".into(),
                                })
                            })
                            .collect()
                    })
                })
                .collect()
        })
    }

    fn load_sequentially(&self, entries: &[Entry]) -> Vec<std::result::Result<Snapshot, Skipped>> {
        let describe = self.describe();
        self.read_encoded(entries)
            .into_iter()
            .map(|(entry, bytes)| {
                let name = match &entry.location {
                    Location::File(p) => p.clone(),
                    Location::Row { .. } => {
                        PathBuf::from(format!("{describe} {}", entry.describe()))
                    }
                };
                bytes
                    .and_then(|b| decode_stored(&name, &b))
                    .and_then(|s| check_place(&name, &entry, &s).map(|()| s))
                    .map_err(|e| {
                        tracing::warn!("skipping unreadable snapshot: {e}");
                        Skipped {
                            what: entry.describe(),
                            reason: e.to_string(),
                        }
                    })
            })
            .collect()
    }

    /// Loads one capture, or says why it cannot.
    pub fn load(&self, entry: &Entry) -> Result<Snapshot> {
        let (mut snaps, skipped) = self.load_entries(std::slice::from_ref(entry));
        match (snaps.pop(), skipped.into_iter().next()) {
            (Some(s), _) => Ok(s),
            (None, Some(s)) => Err(Error::Usage(s.reason)),
            (None, None) => Err(Error::Usage(format!("{}: not found", entry.describe()))),
        }
    }

    /// The stored bytes of each entry, unopened (for copying an archive).
    pub fn read_encoded(&self, entries: &[Entry]) -> Vec<(Entry, Result<Vec<u8>>)> {
        match self {
            Archive::Files(f) => f.read_encoded(entries),
            Archive::Postgres(p) => p.read_encoded(entries),
        }
    }

    pub fn read_meta(&self) -> Result<Option<ArchiveMeta>> {
        match self {
            Archive::Files(f) => f.read_meta(),
            Archive::Postgres(p) => p.read_meta(),
        }
    }

    pub fn write_meta(&self, meta: &ArchiveMeta) -> Result<()> {
        match self {
            Archive::Files(f) => f.write_meta(meta),
            Archive::Postgres(p) => p.write_meta(meta),
        }
    }

    /// Deletes the given captures; returns how many went.
    pub fn delete(&self, entries: &[Entry]) -> Result<usize> {
        match self {
            Archive::Files(f) => f.delete(entries),
            Archive::Postgres(p) => p.delete(entries),
        }
    }

    /// Removes every archived capture, keeping anything else.
    pub fn clear_captures(&self) -> Result<usize> {
        let all = self.list(None, None, None)?;
        self.delete(&all)
    }
}

pub fn encode(snapshot: &Snapshot) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(snapshot)
        .map_err(|e| Error::Runtime(format!("cannot serialise snapshot: {e}")))?;
    zstd::bulk::compress(&json, ZSTD_LEVEL)
        .map_err(|e| Error::Runtime(format!("cannot compress snapshot: {e}")))
}

#[derive(Deserialize)]
struct VersionOnly {
    schema_version: String,
}

fn major_of(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// Parses snapshot JSON, refusing an unknown major version with a message that says so.
pub fn decode_json(path: &Path, json: &[u8]) -> Result<Snapshot> {
    let check_version = |version: &str| -> Result<()> {
        match major_of(version) {
            Some(SCHEMA_MAJOR) => Ok(()),
            _ => Err(Error::UnsupportedSchema {
                path: path.to_path_buf(),
                found: version.to_string(),
                supported: SCHEMA_MAJOR,
            }),
        }
    };
    match serde_json::from_slice::<Snapshot>(json) {
        Ok(s) => {
            check_version(&s.schema_version)?;
            Ok(s)
        }
        Err(e) => {
            if let Ok(v) = serde_json::from_slice::<VersionOnly>(json) {
                check_version(&v.schema_version)?;
            }
            Err(Error::bad_file(
                path,
                format!(
                    "not a valid snapshot (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ),
            ))
        }
    }
}

/// Largest snapshot JSON a capture may decompress to. A 40-container node with its logs is a
/// few hundred kilobytes; a thousand times that is still a snapshot, anything beyond is a
/// decompression bomb (a 101 KB file can expand to gigabytes) and is skipped.
pub const MAX_SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;

/// Decompresses and parses one stored capture; `what` names it in errors.
pub fn decode_stored(what: &Path, bytes: &[u8]) -> Result<Snapshot> {
    decode_stored_within(what, bytes, MAX_SNAPSHOT_BYTES)
}

/// [`decode_stored`] with the decompressed size capped at `max` bytes: the decoder is read
/// as a stream and stopped one byte past the cap.
fn decode_stored_within(what: &Path, bytes: &[u8], max: u64) -> Result<Snapshot> {
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(bytes)
        .and_then(|d| d.take(max + 1).read_to_end(&mut out))
        .map_err(|e| Error::bad_file(what, format!("corrupt or truncated zstd data: {e}")))?;
    if out.len() as u64 > max {
        return Err(Error::bad_file(
            what,
            format!("decompresses to more than {max} bytes: not a snapshot"),
        ));
    }
    decode_json(what, &out)
}

/// A capture must be what its place in the archive says: the node and the time (to the second,
/// as file names hold it) it is listed under. A file copied to the wrong place, or edited,
/// would otherwise put one node's readings under another, or date them elsewhere.
fn check_place(what: &Path, entry: &Entry, snapshot: &Snapshot) -> Result<()> {
    let listed = entry.captured_at.timestamp();
    let inside = snapshot.captured_at.timestamp();
    if snapshot.node != entry.node || listed != inside {
        return Err(Error::bad_file(
            what,
            format!(
                "holds {}@{} but is archived as {}",
                snapshot.node,
                snapshot.captured_at.format("%Y-%m-%dT%H:%M:%SZ"),
                entry.describe()
            ),
        ));
    }
    Ok(())
}

/// Captures may be dated this far past the reader's clock (clock skew between a collector and
/// the reporter); anything later is ignored.
pub const FUTURE_ALLOWANCE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Drops the captures dated after `now` plus [`FUTURE_ALLOWANCE`], with a warning naming each:
/// one file from a host with a wrong clock must not date every report and the ledger years ahead.
fn without_future(entries: Vec<Entry>, now: DateTime<Utc>, archive: &str) -> Vec<Entry> {
    let limit = now + FUTURE_ALLOWANCE;
    let (kept, future): (Vec<Entry>, Vec<Entry>) =
        entries.into_iter().partition(|e| e.captured_at <= limit);
    // One line, not one per capture: a node whose clock ran a month ahead leaves thousands, and
    // every listing would repeat them all.
    if let (Some(first), Some(last)) = (future.first(), future.last()) {
        let what = |e: &Entry| match &e.location {
            Location::File(p) => p.display().to_string(),
            Location::Row { .. } => format!("{archive} {}", e.describe()),
        };
        if future.len() == 1 {
            tracing::warn!("ignoring {}: it is dated in the future", what(first));
        } else {
            tracing::warn!(
                "ignoring {} captures dated in the future (after {}), from {} to {}",
                future.len(),
                limit.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                what(first),
                what(last)
            );
        }
    }
    kept
}

/// Captures of one round lie within this of the round's first.
const ROUND_SPAN_S: i64 = 300;

/// Groups time-sorted items into capture rounds: at most one capture per node, all within
/// [`ROUND_SPAN_S`] of the round's first.
pub fn group_rounds<T>(
    items: impl IntoIterator<Item = T>,
    node: impl Fn(&T) -> &str,
    at: impl Fn(&T) -> DateTime<Utc>,
) -> Vec<Vec<T>> {
    use std::hash::{Hash, Hasher};
    let hash = |name: &str| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        h.finish()
    };
    let mut out: Vec<Vec<T>> = Vec::new();
    // The nodes already in the round in progress, by hash: a thousand nodes a round asked one
    // by one against the whole round cost half a million comparisons per round. A hash seen
    // before is confirmed against the names.
    let mut in_round = std::collections::HashSet::new();
    for item in items {
        let name = hash(node(&item));
        let start_new = match out.last() {
            None => true,
            Some(round) => {
                (in_round.contains(&name) && round.iter().any(|r| node(r) == node(&item)))
                    || (at(&item) - at(&round[0])).num_seconds() > ROUND_SPAN_S
            }
        };
        if start_new {
            in_round.clear();
            out.push(vec![item]);
        } else if let Some(last) = out.last_mut() {
            last.push(item);
        }
        in_round.insert(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn snap(node: &str, minute: u32) -> Snapshot {
        Snapshot::new(
            "test",
            node,
            Utc.with_ymd_and_hms(2026, 2, 18, 21, minute, 0).unwrap(),
        )
    }

    #[test]
    fn writes_lists_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path());
        for m in [0, 15, 30] {
            archive.write(&snap("vk01", m)).unwrap();
            archive.write(&snap("vk02", m)).unwrap();
        }
        assert_eq!(archive.nodes().unwrap(), vec!["vk01", "vk02"]);
        let all = archive.list(None, None, None).unwrap();
        assert_eq!(all.len(), 6);
        let from = Utc.with_ymd_and_hms(2026, 2, 18, 21, 10, 0).unwrap();
        let some = archive.list(Some(from), None, Some("vk02")).unwrap();
        assert_eq!(some.len(), 2);
        let (loaded, skipped) = archive.load_entries(&some);
        assert!(skipped.is_empty());
        assert_eq!(loaded[0], snap("vk02", 15));
    }

    #[test]
    fn truncated_file_is_skipped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path());
        archive.write(&snap("vk01", 0)).unwrap();
        let path = FileArchive::open(dir.path()).path_for("vk01", snap("vk01", 0).captured_at);
        archive.write(&snap("vk01", 15)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let entries = archive.list(None, None, None).unwrap();
        let (loaded, skipped) = archive.load_entries(&entries);
        assert_eq!(loaded.len(), 1);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].reason.contains(&path.display().to_string()));
    }

    #[test]
    fn a_capture_that_disagrees_with_its_place_is_skipped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path());
        let files = FileArchive::open(dir.path());
        archive.write(&snap("vk01", 0)).unwrap();
        archive.write(&snap("vk01", 15)).unwrap();
        archive.write(&snap("vk01", 30)).unwrap();
        // vk02's capture under vk01's name, and a 30-minute capture under the 15-minute name.
        let wrong_node = files.path_for("vk01", snap("vk01", 0).captured_at);
        std::fs::write(&wrong_node, encode(&snap("vk02", 0)).unwrap()).unwrap();
        let wrong_time = files.path_for("vk01", snap("vk01", 15).captured_at);
        std::fs::write(&wrong_time, encode(&snap("vk01", 30)).unwrap()).unwrap();
        let entries = archive.list(None, None, None).unwrap();
        let (loaded, skipped) = archive.load_entries(&entries);
        assert_eq!(loaded, vec![snap("vk01", 30)]);
        assert_eq!(skipped.len(), 2);
        for (s, path) in skipped.iter().zip([&wrong_node, &wrong_time]) {
            assert!(
                s.reason.contains(&path.display().to_string()),
                "{}",
                s.reason
            );
            assert!(s.reason.contains("archived as"), "{}", s.reason);
        }
    }

    #[test]
    fn decompression_is_capped() {
        let json = serde_json::to_vec(&snap("vk01", 0)).unwrap();
        let body = zstd::bulk::compress(&json, 1).unwrap();
        let err = decode_stored_within(Path::new("bomb.json.zst"), &body, 100)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bomb.json.zst"), "{err}");
        assert!(err.contains("more than 100 bytes"), "{err}");
        let cap = json.len() as u64;
        assert!(decode_stored_within(Path::new("ok.json.zst"), &body, cap).is_ok());
    }

    #[test]
    fn stray_files_pipes_and_oversized_files_do_not_stop_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path());
        let at = Utc::now() - chrono::TimeDelta::hours(1);
        archive.write(&Snapshot::new("test", "vk01", at)).unwrap();
        let Location::File(path) = archive.list(None, None, None).unwrap()[0].location.clone()
        else {
            panic!("a directory archive lists files")
        };
        // A note beside the day folders, and a pipe named like a capture.
        std::fs::write(dir.path().join("vk01/notes.txt"), "moved disks on Monday").unwrap();
        let day = path.parent().unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let earlier = if name.contains("T00") { "T01" } else { "T00" };
        let fifo = day.join(name.replacen(&name[8..11], earlier, 1));
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        let listed = archive.list(None, None, None).unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        let (snapshots, skipped) = archive.load_entries(&listed);
        assert_eq!((snapshots.len(), skipped.len()), (1, 0));
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
        // A file far larger than any capture is refused without being read whole.
        let big = std::fs::File::create(&path).unwrap();
        big.set_len(MAX_TEST_FILE).unwrap();
        let (snapshots, skipped) = archive.load_entries(&listed);
        assert_eq!((snapshots.len(), skipped.len()), (0, 1));
    }

    const MAX_TEST_FILE: u64 = 65 * 1024 * 1024;

    #[test]
    fn captures_dated_in_the_future_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path());
        let now = Utc::now();
        for at in [
            now - chrono::TimeDelta::hours(1),
            now + chrono::TimeDelta::minutes(5),
            now + chrono::TimeDelta::days(400),
        ] {
            archive.write(&Snapshot::new("test", "vk01", at)).unwrap();
        }
        let listed = archive.list(None, None, None).unwrap();
        assert_eq!(listed.len(), 2, "within the clock-skew allowance, or past");
        assert!(
            listed
                .iter()
                .all(|e| e.captured_at < now + FUTURE_ALLOWANCE)
        );
        let nearest = archive.nearest("vk01", now + chrono::TimeDelta::days(400));
        assert!(nearest.unwrap().unwrap().captured_at < now + FUTURE_ALLOWANCE);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_bytes_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let _ = decode_stored(Path::new("x.json.zst"), &bytes);
            }

            #[test]
            fn a_cut_or_damaged_capture_is_an_error(cut in 0.0f64..1.0, flip in any::<(usize, u8)>()) {
                let body = encode(&snap("vk01", 0)).unwrap();
                let end = (body.len() as f64 * cut) as usize;
                prop_assert!(decode_stored(Path::new("x.json.zst"), &body[..end]).is_err());
                let mut damaged = body.clone();
                let at = flip.0 % damaged.len();
                damaged[at] ^= flip.1 | 1;
                // Damage may still decode (a changed digit); it must never panic.
                let _ = decode_stored(Path::new("x.json.zst"), &damaged);
            }
        }
    }

    #[test]
    fn unknown_major_version_is_a_clear_error() {
        let mut s = snap("vk01", 0);
        s.schema_version = "2.0".into();
        let json = serde_json::to_vec(&s).unwrap();
        let err = decode_json(Path::new("x.json"), &json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema version 2.0 is not supported"), "{err}");
        s.schema_version = "1.7".into();
        let json = serde_json::to_vec(&s).unwrap();
        assert!(decode_json(Path::new("x.json"), &json).is_ok());
    }
}

/// What an archive says about its fleet (`<root>/fleet.toml`), so it can be analysed without
/// the configuration that produced it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveMeta {
    pub fleet: String,
    pub timezone: String,
    /// Nominal time between captures, in seconds.
    #[serde(default)]
    pub interval_s: Option<u64>,
}
