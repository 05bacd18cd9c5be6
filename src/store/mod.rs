//! The archive: every snapshot ever captured, one zstd-compressed JSON file per node and capture,
//! so any two points in time can be compared later.
//!
//! Layout: `<root>/<node>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>.json.zst` (UTC). Listing reads only
//! directory and file names; a window loads only the files whose names fall inside it. Files are
//! written to a temporary name and renamed, so a reader never sees half a snapshot; a file that is
//! corrupt anyway (disk trouble, a copy cut short) is skipped with a warning that names it.

pub mod retention;

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::{SCHEMA_MAJOR, Snapshot, validate_node_name};

const EXTENSION: &str = ".json.zst";
const FILE_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// Fixed so that the same snapshot always gives the same bytes.
const ZSTD_LEVEL: i32 = 9;

/// One archived capture, known from its path alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub captured_at: DateTime<Utc>,
    pub node: String,
    pub path: PathBuf,
}

/// A file that could not be read, and why; loading goes on without it.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Archive {
    root: PathBuf,
}

impl Archive {
    pub fn open(root: impl Into<PathBuf>) -> Archive {
        Archive { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path_for(&self, node: &str, at: DateTime<Utc>) -> PathBuf {
        self.root
            .join(node)
            .join(at.format("%Y-%m-%d").to_string())
            .join(format!("{}{}", at.format(FILE_TIME_FORMAT), EXTENSION))
    }

    /// Writes one snapshot atomically and returns where it went.
    pub fn write(&self, snapshot: &Snapshot) -> Result<PathBuf> {
        validate_node_name(&snapshot.node).map_err(Error::Usage)?;
        let path = self.path_for(&snapshot.node, snapshot.captured_at);
        fsutil::write_atomic(&path, &encode(snapshot)?)?;
        Ok(path)
    }

    /// Node names present in the archive, sorted.
    pub fn nodes(&self) -> Result<Vec<String>> {
        let mut nodes = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(nodes),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if entry.path().is_dir() && validate_node_name(&name).is_ok() {
                nodes.push(name);
            }
        }
        nodes.sort();
        Ok(nodes)
    }

    /// Captures with `from <= captured_at <= to`, oldest first, for one node or all.
    pub fn list(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        node: Option<&str>,
    ) -> Result<Vec<Entry>> {
        let nodes = match node {
            Some(n) => vec![n.to_string()],
            None => self.nodes()?,
        };
        let from_day = from.map(|t| t.format("%Y-%m-%d").to_string());
        let to_day = to.map(|t| t.format("%Y-%m-%d").to_string());
        let mut out = Vec::new();
        for node in nodes {
            let node_dir = self.root.join(&node);
            let days = match std::fs::read_dir(&node_dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&node_dir, e)),
            };
            for day in days {
                let day = day.map_err(|e| Error::io(&node_dir, e))?;
                let day_name = day.file_name().to_string_lossy().to_string();
                if from_day.as_ref().is_some_and(|f| &day_name < f)
                    || to_day.as_ref().is_some_and(|t| &day_name > t)
                {
                    continue;
                }
                let files = std::fs::read_dir(day.path()).map_err(|e| Error::io(day.path(), e))?;
                for file in files {
                    let file = file.map_err(|e| Error::io(day.path(), e))?;
                    let name = file.file_name().to_string_lossy().to_string();
                    let Some(stamp) = name.strip_suffix(EXTENSION) else {
                        continue;
                    };
                    let Ok(naive) = NaiveDateTime::parse_from_str(stamp, FILE_TIME_FORMAT) else {
                        continue;
                    };
                    let at = naive.and_utc();
                    if from.is_some_and(|f| at < f) || to.is_some_and(|t| at > t) {
                        continue;
                    }
                    out.push(Entry {
                        captured_at: at,
                        node: node.clone(),
                        path: file.path(),
                    });
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The capture of `node` closest in time to `at`.
    pub fn nearest(&self, node: &str, at: DateTime<Utc>) -> Result<Option<Entry>> {
        let entries = self.list(None, None, Some(node))?;
        Ok(entries
            .into_iter()
            .min_by_key(|e| (e.captured_at - at).num_seconds().abs()))
    }

    /// Loads the given entries, skipping (and reporting) the ones that cannot be read.
    pub fn load_entries(&self, entries: &[Entry]) -> (Vec<Snapshot>, Vec<Skipped>) {
        let mut snapshots = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for entry in entries {
            match read_snapshot_file(&entry.path) {
                Ok(s) => snapshots.push(s),
                Err(e) => {
                    tracing::warn!("skipping unreadable snapshot: {e}");
                    skipped.push(Skipped {
                        path: entry.path.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        (snapshots, skipped)
    }
}

pub fn encode(snapshot: &Snapshot) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(snapshot)
        .map_err(|e| Error::Usage(format!("cannot serialise snapshot: {e}")))?;
    zstd::bulk::compress(&json, ZSTD_LEVEL)
        .map_err(|e| Error::Usage(format!("cannot compress snapshot: {e}")))
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

/// Reads a snapshot from `.json.zst` or plain `.json`.
pub fn read_snapshot_file(path: &Path) -> Result<Snapshot> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let json = if path.to_string_lossy().ends_with(".zst") {
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(&bytes[..])
            .and_then(|mut d| d.read_to_end(&mut out))
            .map_err(|e| Error::bad_file(path, format!("corrupt or truncated zstd data: {e}")))?;
        out
    } else {
        bytes
    };
    decode_json(path, &json)
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
    let mut out: Vec<Vec<T>> = Vec::new();
    for item in items {
        let start_new = match out.last() {
            None => true,
            Some(round) => {
                round.iter().any(|r| node(r) == node(&item))
                    || (at(&item) - at(&round[0])).num_seconds() > ROUND_SPAN_S
            }
        };
        if start_new {
            out.push(vec![item]);
        } else if let Some(last) = out.last_mut() {
            last.push(item);
        }
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
        let path = archive.write(&snap("vk01", 0)).unwrap();
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

impl Archive {
    pub fn meta_path(&self) -> PathBuf {
        self.root.join("fleet.toml")
    }

    pub fn read_meta(&self) -> Result<Option<ArchiveMeta>> {
        let path = self.meta_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|e| Error::bad_file(&path, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    pub fn write_meta(&self, meta: &ArchiveMeta) -> Result<()> {
        let text = toml::to_string(meta)
            .map_err(|e| Error::Usage(format!("cannot write archive metadata: {e}")))?;
        fsutil::write_atomic(&self.meta_path(), text.as_bytes())
    }

    /// Removes every archived capture (and the directories left empty), keeping anything else.
    pub fn clear_captures(&self) -> Result<usize> {
        let mut removed = 0;
        for entry in self.list(None, None, None)? {
            std::fs::remove_file(&entry.path).map_err(|e| Error::io(&entry.path, e))?;
            removed += 1;
            let mut dir = entry.path.parent();
            while let Some(d) = dir {
                if d == self.root || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        Ok(removed)
    }
}
