//! Writing files so that a crash never leaves half of one: write to a temporary file in the same
//! directory, flush it to disk, then rename it over the target. A process killed between the two
//! leaves its temporary file (`.patrol-XXXXXX.tmp`); the next command that holds the fleet
//! removes those ([`remove_stale_temps`]).

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// The name of patrol's temporary files: `.patrol-` + random + `.tmp`.
const TEMP_PREFIX: &str = ".patrol-";
const TEMP_SUFFIX: &str = ".tmp";

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Appends `text` to `path` atomically: the whole new content is written beside it and renamed,
/// so a reader sees either the old file or the old file plus all of `text`.
pub fn append_atomic(path: &Path, text: &str) -> Result<()> {
    let mut content = match std::fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    content.push_str(text);
    write_atomic(path, content.as_bytes())
}

/// An exclusive lock on a file (the OS releases it when the process ends, even by a kill), with
/// who holds it written inside for the message another process shows.
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes the lock, waiting up to `wait` for another holder to finish. When it stays taken,
    /// the error says by whom and since when.
    pub fn acquire(path: &Path, wait: std::time::Duration) -> Result<RunLock> {
        use std::io::{Seek, Write};
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if std::time::Instant::now() >= deadline {
                        let holder = std::fs::read_to_string(path).unwrap_or_default();
                        return Err(Error::Usage(format!(
                            "{}: another patrol is running ({}); not starting a second one (use --wait to wait for it)",
                            path.display(),
                            holder.trim()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
            }
        }
        let holder = format!(
            "pid {} since {}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        file.set_len(0).map_err(|e| Error::io(path, e))?;
        file.rewind().map_err(|e| Error::io(path, e))?;
        file.write_all(holder.as_bytes())
            .map_err(|e| Error::io(path, e))?;
        Ok(RunLock { _file: file })
    }
}

/// Removes patrol's own temporary files (`.patrol-*.tmp`) under `dir`, down to `depth` levels of
/// subdirectories, that were last modified before `before` (the start of the command that now
/// holds the fleet): what writes killed mid-way left. Nothing else is touched; a directory that
/// cannot be read is skipped. Returns how many were removed.
pub fn remove_stale_temps(dir: &Path, before: std::time::SystemTime, depth: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if depth > 0 {
                removed += remove_stale_temps(&entry.path(), before, depth - 1);
            }
        } else if kind.is_file()
            && name.starts_with(TEMP_PREFIX)
            && name.ends_with(TEMP_SUFFIX)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// For the crash tests: `PATROL_TEST_CRASH=<point>` ends the process at that point of a
/// write sequence, as a kill would (`after-archive`, `before-ledger`, `after-ledger`,
/// `after-report`, `after-send`).
pub fn crash_point(name: &str) {
    if std::env::var("PATROL_TEST_CRASH").is_ok_and(|v| v == name) {
        eprintln!("patrol: PATROL_TEST_CRASH={name}: stopping here");
        std::process::exit(86);
    }
}

pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/file.txt");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        append_atomic(&target, "+three").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "two+three");
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "only the target remains: {names:?}");
    }

    #[test]
    fn only_old_temp_files_of_our_own_naming_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        for p in [
            dir.path().join(".patrol-x1Yz9q.tmp"),
            deep.join(".patrol-abcdef.tmp"),
            dir.path().join("report.tmp"),
            dir.path().join(".patrol-keep.md"),
        ] {
            std::fs::write(p, "x").unwrap();
        }
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        // Files newer than the command's start may belong to a writer still at work.
        assert_eq!(
            remove_stale_temps(dir.path(), std::time::SystemTime::UNIX_EPOCH, 9),
            0
        );
        assert_eq!(remove_stale_temps(dir.path(), later, 0), 1);
        assert_eq!(remove_stale_temps(dir.path(), later, 2), 1);
        assert!(dir.path().join("report.tmp").exists());
        assert!(dir.path().join(".patrol-keep.md").exists());
    }
}
