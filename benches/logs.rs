//! Container log cost per capture (`cargo bench --bench logs`): N lines as the Docker engine
//! sends them (8-byte frames, `timestamps=1`), fed in 64 KB chunks through the frame decoder, the
//! line counter and the reducer that templates every line. Mostly one INFO template with varying
//! numbers, one line in 500 a distinct INFO template (a hostile container writing unique lines),
//! and an ERROR at the end, which must be kept. Prints the median time of 5 runs, lines per
//! second, the templates held at the end (bounded whatever N) and the process's peak memory.
//! Under `cargo test` it runs once on the small sizes only.

mod common;

use common::{median, peak_rss_mb};
use std::time::Instant;

use chrono::Utc;
use patrol::config::LogSettings;
use patrol::sources::docker::{FrameReader, LineCounter};
use patrol::sources::logs::Reducer;

/// A different word per number (digits would be masked into one template).
fn word(mut i: usize) -> String {
    let mut w = String::new();
    loop {
        w.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            return w;
        }
    }
}

fn line(i: usize, n: usize) -> String {
    let stamp = format!("2026-11-22T13:{:02}:{:02}.{:09}Z", (i / 60) % 60, i % 60, i);
    if i + 1 == n {
        format!("{stamp} ERROR disk full\n")
    } else if i.is_multiple_of(500) {
        format!("{stamp} INFO user {} signed in from the web\n", word(i))
    } else {
        format!(
            "{stamp} INFO processed batch {i} of camera {} in {} ms\n",
            i % 12,
            i % 97
        )
    }
}

/// Feeds `n` lines and returns (templates held at the end, lines counted, ERROR kept).
fn feed(n: usize, settings: &LogSettings) -> (usize, u64, bool) {
    let mut reducer = Reducer::new(settings);
    let mut counter = LineCounter::new(None, usize::MAX);
    let mut frames = FrameReader::new(false);
    let mut chunk = Vec::with_capacity(64 * 1024 + 512);
    for i in 0..n {
        let payload = line(i, n);
        chunk.extend([1u8, 0, 0, 0]);
        chunk.extend((payload.len() as u32).to_be_bytes());
        chunk.extend(payload.as_bytes());
        if chunk.len() >= 64 * 1024 || i + 1 == n {
            frames.feed(&chunk, |l| counter.add(&mut reducer, l));
            chunk.clear();
        }
    }
    frames.finish(|l| counter.add(&mut reducer, l));
    let held = reducer.templates_held();
    let stream = reducer.finish("container:bench", Utc::now(), Utc::now());
    let error = stream
        .templates
        .iter()
        .any(|t| t.template == "ERROR disk full");
    (held, stream.lines_total, error)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, sizes): (usize, &[usize]) = if full {
        (5, &[1_000, 10_000, 100_000, 1_000_000])
    } else {
        (1, &[1_000, 10_000])
    };
    let settings = LogSettings::default();
    for &n in sizes {
        let mut times = Vec::new();
        let mut held = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let (h, total, error) = feed(n, &settings);
            times.push(t.elapsed());
            held = h;
            assert_eq!(total, n as u64, "every line is counted");
            assert!(error, "the ERROR at the end is kept");
        }
        let m = median(times);
        println!(
            "{n:>9} lines: median {m:?} per capture ({:.0} lines/s), {held} templates held (cap {} + {}), peak RSS {:.1} MB",
            n as f64 / m.as_secs_f64(),
            settings.max_templates,
            settings.warn_templates,
            peak_rss_mb()
        );
    }
}
