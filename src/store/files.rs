//! The archive on a filesystem: one zstd-compressed JSON file per node and capture, under
//! `<root>/<node>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>.json.zst` (UTC). Listing reads only directory
//! and file names; a window loads only the files whose names fall inside it. Files are written to
//! a temporary name and renamed, so a reader never sees half a snapshot.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{ArchiveMeta, Encoded, Entry, Location, decode_stored};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::{Snapshot, validate_node_name};

const EXTENSION: &str = ".json.zst";
const FILE_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

#[derive(Debug, Clone)]
pub struct FileArchive {
    root: PathBuf,
}

/// The capture time a file's name gives (`20260301T001502Z`, [`FILE_TIME_FORMAT`]), read
/// by hand: a week of a thousand nodes lists 672,000 names, and a format-string parser spent a
/// quarter of the listing on them. `None` for any other name.
fn parse_stamp(stamp: &str) -> Option<DateTime<Utc>> {
    let b = stamp.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(4..6)?, num(6..8)?)?;
    let time = chrono::NaiveTime::from_hms_opt(num(9..11)?, num(11..13)?, num(13..15)?)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

impl FileArchive {
    pub fn open(root: impl Into<PathBuf>) -> FileArchive {
        FileArchive { root: root.into() }
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

    /// Stores one encoded capture, atomically.
    pub fn write_encoded(&self, capture: &Encoded) -> Result<()> {
        validate_node_name(&capture.node).map_err(Error::Usage)?;
        fsutil::write_atomic(
            &self.path_for(&capture.node, capture.captured_at),
            &capture.body,
            fsutil::Mode::Private,
        )
    }

    /// Node names present in the archive, sorted.
    pub fn nodes(&self) -> Result<Vec<String>> {
        let mut nodes = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(nodes),
            Err(e) => return Err(fsutil::io_error(&self.root, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| fsutil::io_error(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if entry.path().is_dir() && validate_node_name(&name).is_ok() {
                nodes.push(name);
            }
        }
        nodes.sort();
        Ok(nodes)
    }

    /// Captures with `from <= captured_at <= to`, oldest first, for one node or all. A listing
    /// reads the file types the directory listing gives (no look at each file, which a week of
    /// 300 nodes made 200,000 times), following a symbolic link only where there is one.
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
                Err(e) => return Err(fsutil::io_error(&node_dir, e)),
            };
            for day in days {
                let day = day.map_err(|e| fsutil::io_error(&node_dir, e))?;
                let day_name = day.file_name().to_string_lossy().to_string();
                if from_day.as_ref().is_some_and(|f| &day_name < f)
                    || to_day.as_ref().is_some_and(|t| &day_name > t)
                {
                    continue;
                }
                // A stray file beside the day folders (notes, a backup) is not the archive's.
                if !is_kind(&day, std::fs::FileType::is_dir) {
                    continue;
                }
                let files =
                    std::fs::read_dir(day.path()).map_err(|e| fsutil::io_error(&day.path(), e))?;
                for file in files {
                    let file = file.map_err(|e| fsutil::io_error(&day.path(), e))?;
                    let name = file.file_name().to_string_lossy().to_string();
                    let Some(stamp) = name.strip_suffix(EXTENSION) else {
                        continue;
                    };
                    let Some(at) = parse_stamp(stamp) else {
                        continue;
                    };
                    if from.is_some_and(|f| at < f) || to.is_some_and(|t| at > t) {
                        continue;
                    }
                    // A pipe or a device named like a capture would block or never end a read.
                    if !is_kind(&file, std::fs::FileType::is_file) {
                        tracing::warn!("ignoring {}: not a regular file", file.path().display());
                        continue;
                    }
                    out.push(Entry {
                        captured_at: at,
                        node: node.clone(),
                        location: Location::File(file.path()),
                    });
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The stored (compressed) bytes of each entry, or why they could not be read.
    pub fn read_encoded(&self, entries: &[Entry]) -> Vec<(Entry, Result<Vec<u8>>)> {
        entries
            .iter()
            .map(|e| {
                let bytes = match &e.location {
                    Location::File(p) => read_capped(p),
                    Location::Row { .. } => Err(Error::Usage(format!(
                        "{}: not a capture of this archive",
                        e.describe()
                    ))),
                };
                (e.clone(), bytes)
            })
            .collect()
    }

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
            Err(e) => Err(fsutil::io_error(&path, e)),
        }
    }

    pub fn write_meta(&self, meta: &ArchiveMeta) -> Result<()> {
        let text = toml::to_string(meta)
            .map_err(|e| Error::Runtime(format!("cannot write archive metadata: {e}")))?;
        fsutil::write_atomic(&self.meta_path(), text.as_bytes(), fsutil::Mode::Private)
    }

    /// Deletes the given captures, and the day and node folders they leave empty.
    pub fn delete(&self, entries: &[Entry]) -> Result<usize> {
        let mut removed = 0;
        let mut dirs = std::collections::BTreeSet::new();
        for e in entries {
            let Location::File(path) = &e.location else {
                continue;
            };
            match std::fs::remove_file(path) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(fsutil::io_error(path, err)),
            }
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == self.root {
                    break;
                }
                dirs.insert(d.to_path_buf());
                dir = d.parent();
            }
        }
        // Deepest first, so a node folder is looked at after its day folders; only an empty
        // folder goes.
        for d in dirs.iter().rev() {
            if std::fs::read_dir(d).is_ok_and(|mut r| r.next().is_none()) {
                std::fs::remove_dir(d).map_err(|e| fsutil::io_error(d, e))?;
            }
        }
        Ok(removed)
    }
}

/// Reads a snapshot from `.json.zst` or plain `.json`.
pub fn read_snapshot_file(path: &Path) -> Result<Snapshot> {
    let bytes = std::fs::read(path).map_err(|e| fsutil::io_error(path, e))?;
    if path.to_string_lossy().ends_with(".zst") {
        decode_stored(path, &bytes)
    } else {
        super::decode_json(path, &bytes)
    }
}

/// Largest capture file read: a compressed capture is kilobytes; a file past this is not one.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// A capture file's bytes, read only up to [`MAX_FILE_BYTES`].
fn read_capped(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| fsutil::io_error(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fsutil::io_error(path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::bad_file(
            path,
            format!("larger than the {MAX_FILE_BYTES} bytes a capture may be"),
        ));
    }
    Ok(bytes)
}

/// Whether a directory entry is of a kind (`is_dir`, `is_file`), through a symbolic link.
fn is_kind(entry: &std::fs::DirEntry, kind: fn(&std::fs::FileType) -> bool) -> bool {
    match entry.file_type() {
        Ok(t) if !t.is_symlink() => kind(&t),
        _ => std::fs::metadata(entry.path()).is_ok_and(|m| kind(&m.file_type())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The hand-written reader agrees with the format string on every name it could be
        /// given: the archive's own names and anything else of the same length.
        #[test]
        fn a_stamp_reads_as_the_format_string_reads_it(secs in 0i64..4_102_444_800, noise in "[0-9TZ:x-]{16}") {
            let at = DateTime::from_timestamp(secs, 0).unwrap_or_default();
            let name = at.format(FILE_TIME_FORMAT).to_string();
            prop_assert_eq!(parse_stamp(&name), Some(at));
            let chrono = NaiveDateTime::parse_from_str(&noise, FILE_TIME_FORMAT).ok().map(|n| n.and_utc());
            prop_assert_eq!(parse_stamp(&noise), chrono);
        }
    }

    #[test]
    fn other_names_are_no_stamp() {
        for name in [
            "",
            "20260301T001502",
            "20260301T001502Zx",
            "2026030lT001502Z",
            "20261301T001502Z",
            "20260230T001502Z",
            "20260301T246000Z",
            "+0260301T001502Z",
        ] {
            assert_eq!(parse_stamp(name), None, "{name}");
        }
    }
}
