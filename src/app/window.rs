//! Where a run's history window comes from: the window the previous run saved, brought up to
//! date with the captures it lacks, or, when there is none or it no longer matches the archive,
//! the archive's snapshots decoded again. Both give the same window, byte for byte (a test
//! replays scenarios both ways); the saved one costs the new captures instead of the whole span.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::fnv::Fnv;
use crate::history::Window;
use crate::history::persist::{self, Stamp};
use crate::rules::Library;
use crate::store::{Archive, Entry};

/// Captures decoded per read while filling a window: enough for every core to decode a share,
/// few enough that a large fleet's day is never held decoded at once (the window keeps only
/// series and the newest few snapshots per node).
pub(super) const CAPTURES_PER_READ: usize = 512;

/// The window a long-running process (the daemon) saved last, by file: the next tick takes it
/// from memory instead of decoding the file it also wrote (which a restart reads).
static KEPT: std::sync::Mutex<Option<(PathBuf, Window, Stamp)>> = std::sync::Mutex::new(None);

/// The saved window of one output: where it lives, and what it must have been built from.
pub(super) struct WindowFile {
    pub path: PathBuf,
    /// The archive, fleet and rule set the window must have been saved for.
    pub identity: u64,
    /// Ignore the saved window and rebuild from the snapshots (the saved one is replaced).
    pub rebuild: bool,
    pub mode: crate::fsutil::Mode,
    /// Keep the saved window in this process's memory for the next analysis (the daemon).
    pub keep_in_memory: bool,
}

impl WindowFile {
    pub fn new(
        out_dir: &std::path::Path,
        archive: &Archive,
        fleet: &str,
        library: &Library,
    ) -> WindowFile {
        let mut identity = Fnv::default();
        identity.write(archive.describe().as_bytes()).write(&[0]);
        identity.write(fleet.as_bytes()).write(&[0]);
        let mut ids: Vec<&str> = library.rules.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        for id in ids {
            identity.write(id.as_bytes()).write(&[0]);
        }
        WindowFile {
            path: out_dir.join("window.bin"),
            identity: identity.finish(),
            rebuild: false,
            mode: crate::fsutil::Mode::SHARED,
            keep_in_memory: false,
        }
    }

    /// The saved window, when there is one saved for this archive, fleet, rule set and span;
    /// otherwise says why not (a missing file quietly).
    pub fn read(&self, span: chrono::Duration) -> Option<(Window, Stamp)> {
        if self.rebuild {
            tracing::info!("rebuilding the history window from the snapshots, as asked");
            return None;
        }
        let kept = KEPT.lock().ok().and_then(|mut k| {
            let fits = k.as_ref().is_some_and(|(path, _, stamp)| {
                *path == self.path
                    && stamp.span_s == span.num_seconds()
                    && stamp.identity == self.identity
            });
            if fits { k.take() } else { None }
        });
        if let Some((_, window, stamp)) = kept {
            tracing::debug!("history window: the one kept in memory since the previous analysis");
            return Some((window, stamp));
        }
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(
                    "{}: {e}; rebuilding the history window",
                    self.path.display()
                );
                return None;
            }
        };
        let why = match persist::decode(&bytes) {
            Err(e) => e,
            Ok((_, stamp)) if stamp.span_s != span.num_seconds() => format!(
                "saved for a {} s window, this run reads {} s",
                stamp.span_s,
                span.num_seconds()
            ),
            Ok((_, stamp)) if stamp.identity != self.identity => {
                "saved for another archive, fleet or rule set".to_string()
            }
            Ok(saved) => return Some(saved),
        };
        tracing::info!(
            "{}: {why}; rebuilding the history window from the snapshots",
            self.path.display()
        );
        None
    }

    /// Saves `window`, built as of `at`, stamped with the archive's captures in its span
    /// (`listing` must hold at least those).
    pub fn save(&self, window: Window, listing: &[Entry], at: DateTime<Utc>) -> Result<()> {
        let span = chrono::Duration::seconds(window.span_s());
        let stamp = stamp_of(listing, at, span, self.identity);
        let bytes = persist::encode(&window, &stamp).map_err(|e| crate::error::Error::BadFile {
            path: self.path.clone(),
            message: e,
        })?;
        crate::fsutil::write_atomic(&self.path, &bytes, self.mode)?;
        if self.keep_in_memory
            && let Ok(mut k) = KEPT.lock()
        {
            *k = Some((self.path.clone(), window, stamp));
        }
        Ok(())
    }
}

/// The stamp of the archive's captures in `[at - span, at]` of `listing`.
pub(super) fn stamp_of(
    listing: &[Entry],
    at: DateTime<Utc>,
    span: chrono::Duration,
    identity: u64,
) -> Stamp {
    let mut digest = Fnv::default();
    let mut captures = 0;
    for e in in_span(listing, at - span, at) {
        digest
            .write(e.node.as_bytes())
            .write(&[0])
            .write(&e.captured_at.timestamp().to_le_bytes());
        captures += 1;
    }
    Stamp {
        span_s: span.num_seconds(),
        identity,
        at: at.timestamp(),
        captures,
        digest: digest.finish(),
    }
}

/// The entries of a listing sorted oldest first (then by node) that lie in `[from, to]`.
fn in_span(listing: &[Entry], from: DateTime<Utc>, to: DateTime<Utc>) -> &[Entry] {
    let start = listing.partition_point(|e| e.captured_at < from);
    let end = listing.partition_point(|e| e.captured_at <= to);
    &listing[start..end.max(start)]
}

/// Sorts a listing the way windows are filled: oldest first, then by node.
pub(super) fn sort_listing(listing: &mut [Entry]) {
    listing.sort_by(|a, b| {
        a.captured_at
            .cmp(&b.captured_at)
            .then_with(|| a.node.cmp(&b.node))
    });
}

/// The window as of `at`: the saved one brought up to date when its stamp matches `listing`
/// (sorted, covering `[saved.at - span, at]`), else rebuilt from the snapshots.
pub(super) fn window_at(
    archive: &Archive,
    listing: &[Entry],
    at: DateTime<Utc>,
    span: chrono::Duration,
    saved: Option<(Window, Stamp)>,
) -> Window {
    if let Some((mut window, stamp)) = saved {
        match DateTime::from_timestamp(stamp.at, 0) {
            Some(saved_at) if saved_at <= at => {
                let now = stamp_of(listing, saved_at, span, stamp.identity);
                if now == stamp {
                    restore_recent(
                        archive,
                        &mut window,
                        in_span(listing, saved_at - span, saved_at),
                    );
                    let newer = in_span(listing, saved_at, at);
                    let newer = &newer[newer.partition_point(|e| e.captured_at <= saved_at)..];
                    fill(archive, &mut window, newer);
                    window.evict_before((at - span).timestamp());
                    tracing::debug!(
                        "history window: the saved one as of {saved_at}, and {} newer captures",
                        newer.len()
                    );
                    return window;
                }
                tracing::info!(
                    "the archive's captures up to {saved_at} are not those the saved history window was built from (added late, or pruned); rebuilding it from the snapshots"
                );
            }
            _ => tracing::info!(
                "the saved history window is newer than {at}; rebuilding it from the snapshots"
            ),
        }
    }
    let mut window = Window::new(span);
    fill(archive, &mut window, in_span(listing, at - span, at));
    window
}

/// Pushes the captures of `entries` (sorted), a few hundred decoded at a time.
fn fill(archive: &Archive, window: &mut Window, entries: &[Entry]) {
    for part in entries.chunks(CAPTURES_PER_READ) {
        for s in archive.load_each(part).into_iter().flatten() {
            window.push(s);
        }
    }
}

/// Reads back the newest readable snapshots of every node of a saved window from `entries` (its
/// captures), the ones a rebuild would hold in full.
fn restore_recent(archive: &Archive, window: &mut Window, entries: &[Entry]) {
    let latest: std::collections::HashMap<&str, i64> = window.latest_by_node().collect();
    let mut by_node: std::collections::BTreeMap<&str, Vec<&Entry>> = Default::default();
    for e in entries {
        if latest.contains_key(e.node.as_str()) {
            by_node.entry(e.node.as_str()).or_default().push(e);
        }
    }
    let mut found: std::collections::HashMap<&str, usize> = Default::default();
    // Newest first per node; an unreadable capture is skipped as a rebuild skips it, so the
    // next older one is read in its place.
    let mut depth = 0;
    loop {
        let wanted: Vec<Entry> = by_node
            .iter()
            .filter(|(node, _)| {
                found.get(*node).copied().unwrap_or(0) < crate::history::RECENT_SNAPSHOTS
            })
            .flat_map(|(_, list)| {
                let end = list.len().saturating_sub(depth);
                let take = crate::history::RECENT_SNAPSHOTS;
                list[end.saturating_sub(take)..end]
                    .iter()
                    .map(|e| (*e).clone())
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let loaded: Vec<_> = archive.load_each(&wanted).into_iter().flatten().collect();
        for s in &loaded {
            if let Some((node, _)) = by_node.get_key_value(s.node.as_str()) {
                *found.entry(node).or_default() += 1;
            }
        }
        window.restore_recent(loaded);
        depth += crate::history::RECENT_SNAPSHOTS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &std::path::Path, keep: bool) -> WindowFile {
        WindowFile {
            path: dir.join("window.bin"),
            identity: 7,
            rebuild: false,
            mode: crate::fsutil::Mode::SHARED,
            keep_in_memory: keep,
        }
    }

    fn window() -> (Window, DateTime<Utc>) {
        let at = DateTime::from_timestamp(1_771_400_000, 0).unwrap_or_default();
        let mut w = Window::new(chrono::Duration::hours(24));
        w.push(crate::model::Snapshot::new("t", "vk01", at));
        (w, at)
    }

    #[test]
    fn a_daemon_takes_its_window_from_memory_and_a_one_shot_run_from_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let span = chrono::Duration::hours(24);
        let (w, at) = window();
        let daemon = file(dir.path(), true);
        daemon.save(w, &[], at).unwrap_or_else(|e| panic!("{e}"));
        assert!(daemon.path.is_file(), "written for a restart too");
        std::fs::remove_file(&daemon.path).unwrap_or_else(|e| panic!("{e}"));
        let (kept, stamp) = daemon.read(span).unwrap_or_else(|| panic!("not kept"));
        assert_eq!(stamp.at, at.timestamp());
        assert_eq!(kept.nodes().count(), 1);
        // Taken, not copied: the next analysis saves its own.
        assert!(daemon.read(span).is_none());

        let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let run = file(other.path(), false);
        let (w, at) = window();
        run.save(w, &[], at).unwrap_or_else(|e| panic!("{e}"));
        assert!(run.read(span).is_some(), "read back from the file");
        std::fs::remove_file(&run.path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            run.read(span).is_none(),
            "a one-shot run keeps nothing in memory"
        );
    }
}
