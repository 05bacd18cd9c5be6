//! Container logs: the engine's stream read chunk by chunk within its bounds (bytes, lines,
//! time), split into lines through its 8-byte frames, lines an earlier capture counted skipped,
//! and everything passed to the log reducer. A container stopped before the window is not asked.

use chrono::{DateTime, Utc};

use super::api::Api;
use crate::config::LogSettings;
use crate::model::{Truncated, TruncatedReason};
use crate::sources::logs::Reducer;

/// Share of the source's timeout past which container logs stop being read, so the list,
/// inspections and stats (already in hand by then) always land.
pub(super) const LOGS_SHARE_OF_TIMEOUT: f64 = 0.8;

impl Api {
    /// Streams a container's log lines written since `since` into a reducer, chunk by chunk,
    /// until the end of the stream or a bound (`max_bytes`, `max_lines`, the `deadline`): past a
    /// bound reading stops, what was read is kept and the answer says where it stopped. Lines
    /// stamped at or before `cursor` were counted by an earlier capture and are skipped.
    /// `Ok(None)` when the container is gone.
    pub(super) async fn logs(
        &self,
        id: &str,
        tty: bool,
        window: (DateTime<Utc>, DateTime<Utc>),
        read: LogBounds<'_>,
        reducer: &mut Reducer<'_>,
    ) -> Result<Option<LogsRead>, String> {
        let secs =
            |t: DateTime<Utc>| format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
        let path = format!(
            "/containers/{id}/logs?stdout=1&stderr=1&timestamps=1&since={}&until={}",
            secs(window.0),
            secs(window.1)
        );
        let mut counter = LineCounter::new(read.cursor, read.settings.max_lines);
        let cut = |counter: &LineCounter, reason, bytes_read| LogsRead {
            newest: counter.newest,
            truncated: Some(Truncated {
                reason,
                after: counter.newest,
                bytes_read,
            }),
        };
        let mut response =
            match tokio::time::timeout_at(read.deadline, self.response_unless_gone(&path)).await {
                Err(_) => return Ok(Some(cut(&counter, TruncatedReason::Time, 0))),
                Ok(r) => match r? {
                    Some(r) => r,
                    None => return Ok(None),
                },
            };
        let mut frames = FrameReader::new(tty);
        let mut bytes_read: u64 = 0;
        loop {
            let chunk = match tokio::time::timeout_at(read.deadline, response.chunk()).await {
                Err(_) => return Ok(Some(cut(&counter, TruncatedReason::Time, bytes_read))),
                Ok(Err(e)) => {
                    // stderr is not a snapshot: mask what the engine echoed here too.
                    tracing::warn!(
                        "{}",
                        crate::sources::redact::builtin_text(&self.failed(&path, e))
                    );
                    return Ok(Some(cut(&counter, TruncatedReason::Error, bytes_read)));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            let room = read.settings.max_bytes.saturating_sub(bytes_read);
            let take = (chunk.len() as u64).min(room) as usize;
            bytes_read += take as u64;
            frames.feed(&chunk[..take], |line| counter.add(reducer, line));
            if counter.full() {
                return Ok(Some(cut(&counter, TruncatedReason::Lines, bytes_read)));
            }
            if take < chunk.len() || bytes_read >= read.settings.max_bytes {
                // A partial last line is left unread rather than counted as a line.
                return Ok(Some(cut(&counter, TruncatedReason::Bytes, bytes_read)));
            }
        }
        frames.finish(|line| counter.add(reducer, line));
        Ok(Some(LogsRead {
            newest: counter.newest,
            truncated: None,
        }))
    }
}

/// The bounds of one container's log read.
pub(super) struct LogBounds<'a> {
    pub(super) settings: &'a LogSettings,
    pub(super) cursor: Option<DateTime<Utc>>,
    pub(super) deadline: tokio::time::Instant,
}

/// How a container's log read ended.
pub(super) struct LogsRead {
    /// The engine's timestamp of the newest line counted.
    pub(super) newest: Option<DateTime<Utc>>,
    pub(super) truncated: Option<Truncated>,
}

/// Passes the engine's lines to the reducer, skipping those an earlier capture counted and
/// stopping at `max_lines`.
pub struct LineCounter {
    cursor: Option<DateTime<Utc>>,
    max_lines: usize,
    lines: usize,
    /// Lines skipped as already counted.
    pub repeated: u64,
    pub newest: Option<DateTime<Utc>>,
}

impl LineCounter {
    pub fn new(cursor: Option<DateTime<Utc>>, max_lines: usize) -> Self {
        LineCounter {
            cursor,
            max_lines,
            lines: 0,
            repeated: 0,
            newest: None,
        }
    }

    fn full(&self) -> bool {
        self.lines >= self.max_lines
    }

    /// A line as the engine sends it with `timestamps=1`: "2026-11-22T13:02:06.569759951Z
    /// message".
    pub fn add(&mut self, reducer: &mut Reducer<'_>, line: &str) {
        if self.full() {
            return;
        }
        let (at, text) = match line.split_once(' ') {
            Some((stamp, rest)) => match DateTime::parse_from_rfc3339(stamp) {
                Ok(t) => (Some(t.with_timezone(&Utc)), rest),
                Err(_) => (None, line),
            },
            None => (None, line),
        };
        if let (Some(at), Some(cursor)) = (at, self.cursor)
            && at <= cursor
        {
            self.repeated += 1;
            return;
        }
        self.lines += 1;
        if let Some(at) = at {
            self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
        }
        reducer.add(at, text.trim_end_matches('\r'));
    }
}

/// Splits the engine's log stream into lines: without a TTY each payload comes in a frame with
/// an 8-byte header (stream, 3 zero bytes, big-endian length). Payloads are passed on as they
/// arrive rather than gathered whole, so a header announcing 4 GB costs nothing but the bytes
/// that actually come, and lines are cut at 16 KB.
pub struct FrameReader {
    tty: bool,
    header: [u8; 8],
    header_len: usize,
    /// Bytes of the current frame's payload still to come.
    remaining: usize,
    line: Vec<u8>,
}

/// Longest line kept; the rest of it is dropped.
const MAX_LINE_BYTES: usize = 16 * 1024;

impl FrameReader {
    pub fn new(tty: bool) -> Self {
        FrameReader {
            tty,
            header: [0; 8],
            header_len: 0,
            remaining: 0,
            line: Vec::new(),
        }
    }

    pub fn feed(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&str)) {
        if self.tty {
            self.text(bytes, &mut emit);
            return;
        }
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(bytes.len());
                let (payload, rest) = bytes.split_at(take);
                self.text(payload, &mut emit);
                self.remaining -= take;
                bytes = rest;
                continue;
            }
            let take = (8 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len == 8 {
                let h = self.header;
                self.remaining = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
                self.header_len = 0;
            }
        }
    }

    fn text(&mut self, bytes: &[u8], emit: &mut impl FnMut(&str)) {
        for &b in bytes {
            if b == b'\n' {
                emit(&String::from_utf8_lossy(&self.line));
                self.line.clear();
            } else if self.line.len() < MAX_LINE_BYTES {
                self.line.push(b);
            }
        }
    }

    pub fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.line.is_empty() {
            emit(&String::from_utf8_lossy(&self.line));
            self.line.clear();
        }
    }
}

/// Whether a container's log request can be skipped: it is stopped and stopped before the
/// window, so it wrote nothing in it (dockerd would rescan its whole log file to say so).
pub(super) fn wrote_nothing_since(
    state: &str,
    finished_at: Option<&str>,
    since: DateTime<Utc>,
) -> bool {
    if !matches!(state, "exited" | "dead") {
        return false;
    }
    finished_at
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|t| t.timestamp() > 0 && t.with_timezone(&Utc) < since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_into_lines_across_chunks() {
        let frame = |text: &str| {
            let mut f = vec![1u8, 0, 0, 0];
            f.extend((text.len() as u32).to_be_bytes());
            f.extend(text.as_bytes());
            f
        };
        let mut bytes = frame("2026-11-22T13:02:06.5Z first\n2026-11-22T13:02:07Z sec");
        bytes.extend(frame("ond\n"));
        let mut reader = FrameReader::new(false);
        let mut lines = Vec::new();
        for chunk in bytes.chunks(5) {
            reader.feed(chunk, |l| lines.push(l.to_string()));
        }
        reader.finish(|l| lines.push(l.to_string()));
        assert_eq!(
            lines,
            [
                "2026-11-22T13:02:06.5Z first",
                "2026-11-22T13:02:07Z second"
            ]
        );
    }

    #[test]
    fn only_a_container_stopped_before_the_window_is_not_asked_for_logs() {
        let since: DateTime<Utc> = "2026-11-22T13:00:00Z".parse().unwrap();
        let before = Some("2026-11-22T12:59:59.9Z");
        let after = Some("2026-11-22T13:00:00.1Z");
        assert!(wrote_nothing_since("exited", before, since));
        assert!(wrote_nothing_since("dead", before, since));
        assert!(
            !wrote_nothing_since("exited", after, since),
            "it ran in the window"
        );
        assert!(!wrote_nothing_since("running", before, since));
        assert!(!wrote_nothing_since("restarting", before, since));
        assert!(!wrote_nothing_since("paused", before, since));
        // The engine's "never stopped" and an unreadable time: asked, to be safe.
        assert!(!wrote_nothing_since(
            "exited",
            Some("0001-01-01T00:00:00Z"),
            since
        ));
        assert!(!wrote_nothing_since("exited", Some("yesterday"), since));
        assert!(!wrote_nothing_since("exited", None, since));
    }

    #[test]
    fn lines_at_or_before_the_cursor_are_skipped_and_max_lines_stops_the_count() {
        let settings = LogSettings::default();
        let mut reducer = Reducer::new(&settings);
        let cursor: DateTime<Utc> = "2026-11-22T13:02:06.5Z".parse().unwrap();
        let mut counter = LineCounter::new(Some(cursor), 2);
        for line in [
            "2026-11-22T13:02:06.4Z INFO counted before",
            "2026-11-22T13:02:06.5Z INFO counted before, at the cursor",
            "2026-11-22T13:02:06.6Z ERROR new\r",
            "no timestamp",
            "2026-11-22T13:02:07Z INFO past max_lines",
        ] {
            counter.add(&mut reducer, line);
        }
        assert_eq!(counter.repeated, 2);
        assert!(counter.full());
        assert_eq!(
            counter.newest,
            Some("2026-11-22T13:02:06.6Z".parse().unwrap())
        );
        let s = reducer.finish("container:x", cursor, cursor);
        assert_eq!(s.lines_total, 2);
        assert!(s.templates.iter().any(|t| t.template == "ERROR new"));
    }

    #[test]
    fn a_frame_announcing_gigabytes_is_streamed_not_gathered() {
        let mut bytes = vec![1u8, 0, 0, 0];
        bytes.extend(u32::MAX.to_be_bytes());
        bytes.extend(b"2026-11-22T13:02:06Z first\n2026-11-22T13:02:07Z second\n");
        let mut reader = FrameReader::new(false);
        let mut lines = Vec::new();
        for chunk in bytes.chunks(7) {
            reader.feed(chunk, |l| lines.push(l.to_string()));
        }
        assert_eq!(
            lines,
            ["2026-11-22T13:02:06Z first", "2026-11-22T13:02:07Z second"],
            "lines of a frame still arriving are passed on"
        );
    }
}
