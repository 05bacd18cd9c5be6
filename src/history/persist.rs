//! The window saved between runs. A cron `patrol run` or `patrol report` would otherwise decode
//! the whole window's snapshots again for every new capture round, when only the newest round is
//! new: at a thousand nodes that is 96,000 snapshots for 1,000 new ones. What is saved is the
//! series state of every node (capture times, boots, reboots, sources' last success, and every
//! series' points, at as an index into the node's capture times and values as their exact bits),
//! not the full snapshots: the newest few per node are read back from the archive, so that they
//! are decoded exactly as a rebuild decodes them.
//!
//! The file is versioned and carries a [`Stamp`] of the archive state it reflects; the caller
//! compares it with the archive and rebuilds on any mismatch. Bad bytes are an error the caller
//! answers by rebuilding, never a crash: every count is checked against the bytes left.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::metrics::KNOWN_METRICS;
use super::{NodeHistory, Point, Series, Window};
use crate::binfmt::{Reader, Writer};

/// What a saved file starts with.
const MAGIC: &[u8; 14] = b"patrol-window\n";

/// The layout of the payload; a file of another version is rebuilt, not read.
pub const FORMAT_VERSION: u32 = 1;

/// zstd's level for the payload: a fast one, since the file is written after every run.
const ZSTD_LEVEL: i32 = 1;

/// The archive state a saved window reflects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The window's span, in seconds.
    pub span_s: i64,
    /// What the window was built from and for: the archive, the fleet and the rule set.
    pub identity: u64,
    /// The time (unix s) the window was built as of.
    pub at: i64,
    /// How many captures the archive listed in `[at - span, at]` when it was saved.
    pub captures: u64,
    /// FNV-1a over those captures' nodes and times, oldest first.
    pub digest: u64,
}

/// Encodes `window` (without its full snapshots) and `stamp`, compressed.
pub fn encode(window: &Window, stamp: &Stamp) -> Result<Vec<u8>, String> {
    let mut w = Writer::default();
    w.u64(stamp.span_s as u64);
    w.u64(stamp.identity);
    w.i64(stamp.at);
    w.u64(stamp.captures);
    w.u64(stamp.digest);
    w.u64(window.span_s as u64);
    w.len(window.nodes.len());
    for node in window.nodes.values() {
        encode_node(&mut w, node);
    }
    crate::binfmt::pack(MAGIC, FORMAT_VERSION, &w.0, ZSTD_LEVEL)
}

fn encode_node(w: &mut Writer, node: &NodeHistory) {
    w.str(&node.node);
    w.opt_str(node.role.as_deref());
    w.len(node.times.len());
    let mut previous = 0;
    for at in &node.times {
        w.varint_i(at - previous);
        previous = *at;
    }
    for boot in &node.boots {
        w.opt_i64(*boot);
    }
    w.len(node.reboots.len());
    for (at, boot) in &node.reboots {
        w.i64(*at);
        w.i64(*boot);
    }
    w.opt_i64(node.last_boot);
    w.opt_i64(node.last_uptime.map(|u| u.0));
    w.opt_i64(node.last_uptime.map(|u| u.1));
    w.len(node.last_ok.len());
    for (source, at) in &node.last_ok {
        w.str(source);
        w.i64(*at);
    }
    // Entities sorted, so that the same window always gives the same bytes.
    let mut entities: Vec<(&String, &Vec<(&'static str, Series)>)> = node.series.iter().collect();
    entities.sort_by(|a, b| a.0.cmp(b.0));
    w.len(entities.len());
    for (entity, list) in entities {
        w.str(entity);
        w.len(list.len());
        for (metric, series) in list {
            w.str(metric);
            w.len(series.points.len());
            // Each point's capture, as the step from the previous point's index in `times`.
            let mut index = 0usize;
            let mut cursor = node.times.iter().enumerate();
            for point in &series.points {
                let found = cursor
                    .by_ref()
                    .find(|(_, t)| **t == point.at)
                    .map_or(node.times.len(), |(i, _)| i);
                w.varint((found - index) as u64 * 2 + u64::from(point.value.is_none()));
                index = found;
                if let Some(v) = point.value {
                    w.u64(v.to_bits());
                }
            }
        }
    }
}

/// Decodes a saved window: its stamp, and the window without full snapshots. A caller must
/// check the stamp against the archive and put the newest snapshots back
/// ([`Window::restore_recent`]) before pushing newer captures.
pub fn decode(bytes: &[u8]) -> Result<(Window, Stamp), String> {
    let payload = crate::binfmt::unpack(bytes, MAGIC, FORMAT_VERSION, "a saved patrol window")?;
    let mut r = Reader {
        bytes: &payload,
        at: 0,
    };
    let stamp = Stamp {
        span_s: r.u64()? as i64,
        identity: r.u64()?,
        at: r.i64()?,
        captures: r.u64()?,
        digest: r.u64()?,
    };
    let mut window = Window {
        span_s: r.u64()? as i64,
        nodes: BTreeMap::new(),
    };
    for _ in 0..r.len(1)? {
        let node = decode_node(&mut r)?;
        window.nodes.insert(node.node.clone(), node);
    }
    if r.at != payload.len() {
        return Err(format!(
            "{} bytes left after the last node",
            payload.len() - r.at
        ));
    }
    Ok((window, stamp))
}

fn decode_node(r: &mut Reader) -> Result<NodeHistory, String> {
    let mut node = NodeHistory {
        node: r.str()?,
        role: r.opt_str()?,
        ..NodeHistory::default()
    };
    let captures = r.len(1)?;
    let mut times = VecDeque::with_capacity(captures);
    let mut previous = 0i64;
    for _ in 0..captures {
        previous = previous
            .checked_add(r.varint_i()?)
            .ok_or("capture time out of range")?;
        if times.back().is_some_and(|t| *t >= previous) {
            return Err(format!("{}: capture times out of order", node.node));
        }
        times.push_back(previous);
    }
    node.times = times;
    for _ in 0..captures {
        node.boots.push_back(r.opt_i64()?);
    }
    for _ in 0..r.len(16)? {
        node.reboots.push((r.i64()?, r.i64()?));
    }
    node.last_boot = r.opt_i64()?;
    node.last_uptime = match (r.opt_i64()?, r.opt_i64()?) {
        (Some(at), Some(up)) => Some((at, up)),
        _ => None,
    };
    for _ in 0..r.len(9)? {
        let source = r.str()?;
        node.last_ok.insert(source, r.i64()?);
    }
    let entities = r.len(2)?;
    let mut series: HashMap<String, Vec<(&'static str, Series)>> = HashMap::with_capacity(entities);
    for _ in 0..entities {
        let entity = r.str()?;
        let mut list = Vec::new();
        for _ in 0..r.len(2)? {
            let name = r.str()?;
            let metric = KNOWN_METRICS
                .iter()
                .find(|m| **m == name)
                .copied()
                .ok_or_else(|| format!("unknown metric `{name}`"))?;
            let count = r.len(1)?;
            let mut points = Vec::with_capacity(count);
            let mut index = 0usize;
            for _ in 0..count {
                let step = r.varint()?;
                index = index
                    .checked_add(usize::try_from(step / 2).map_err(|_| "index out of range")?)
                    .ok_or("index out of range")?;
                let at = *node
                    .times
                    .get(index)
                    .ok_or_else(|| format!("{entity} {name}: a point after the last capture"))?;
                let value = if step % 2 == 1 {
                    None
                } else {
                    Some(f64::from_bits(r.u64()?))
                };
                points.push(Point { at, value });
            }
            list.push((metric, Series { points }));
        }
        series.insert(entity, list);
    }
    node.series = series;
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Gpu, Host, Snapshot, SourceStatus};
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    fn window() -> Window {
        let mut w = Window::new(chrono::Duration::hours(1));
        for (i, node) in ["vk01", "vk02"].iter().enumerate() {
            for m in 0..8i64 {
                let at = Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap()
                    + chrono::Duration::minutes(m * 15 + i as i64);
                let mut s = Snapshot::new("t", node, at);
                s.role = Some("processing".into());
                s.sources.push(SourceStatus::ok("host", 1));
                // A reboot at the fifth capture of vk02.
                let uptime = if i == 1 && m >= 4 {
                    60 + m as u64 * 900
                } else {
                    90_000 + m as u64 * 900
                };
                s.host = Some(Host {
                    uptime_s: Some(uptime),
                    ..Host::default()
                });
                s.gpus = Some(vec![Gpu {
                    index: 0,
                    name: "gpu".into(),
                    util_pct: Some(m as f64 * 0.1 + 1.0 / 3.0),
                    mem_used_pct: None,
                    mem_used_bytes: None,
                    mem_total_bytes: None,
                    temp_c: (m % 3 != 0).then_some(40.0 + m as f64),
                    fan_pct: None,
                    exporter: None,
                }]);
                w.push(s);
            }
        }
        w
    }

    fn stamp() -> Stamp {
        Stamp {
            span_s: 3600,
            identity: 7,
            at: 1_771_400_000,
            captures: 16,
            digest: 99,
        }
    }

    #[test]
    fn a_window_survives_saving_bit_for_bit() {
        let w = window();
        let bytes = encode(&w, &stamp()).unwrap();
        let (back, s) = decode(&bytes).unwrap();
        assert_eq!(s, stamp());
        assert_eq!(encode(&back, &s).unwrap(), bytes);
        let (a, b) = (w.node("vk02").unwrap(), back.node("vk02").unwrap());
        assert_eq!(a.reboots(), b.reboots());
        assert!(!a.reboots().is_empty());
        assert_eq!(a.series("gpu:0", "temp_c"), b.series("gpu:0", "temp_c"));
        assert_eq!(a.series("gpu:0", "util_pct"), b.series("gpu:0", "util_pct"));
        assert_eq!(a.last_ok(), b.last_ok());
        assert_eq!(a.role, b.role);
        // Full snapshots are not saved: they are read back from the archive.
        assert_eq!(b.recent().len(), 0);
    }

    #[test]
    fn another_format_version_is_refused_with_its_number() {
        let mut bytes = encode(&window(), &stamp()).unwrap();
        bytes[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&9u32.to_le_bytes());
        let e = decode(&bytes).err().unwrap();
        assert!(e.contains("format version 9"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn damaged_bytes_are_an_error_not_a_crash(
            cut in 0usize..4096,
            flips in proptest::collection::vec((0usize..4096, any::<u8>()), 0..8),
        ) {
            let mut bytes = encode(&window(), &stamp()).unwrap();
            for (at, b) in flips {
                let n = bytes.len();
                bytes[at % n] ^= b;
            }
            bytes.truncate(cut.min(bytes.len()));
            let _ = decode(&bytes);
        }

        #[test]
        fn a_damaged_payload_is_an_error_not_a_crash(
            flips in proptest::collection::vec((0usize..100_000, any::<u8>()), 1..8),
        ) {
            // Damage inside the compressed payload is caught by zstd; damage to the payload
            // itself reaches the reader: re-compress a damaged payload to test the reader.
            let bytes = encode(&window(), &stamp()).unwrap();
            let mut payload = zstd::bulk::decompress(&bytes[MAGIC.len() + 12..], 1 << 24).unwrap();
            for (at, b) in flips {
                let n = payload.len();
                payload[at % n] ^= b;
            }
            let mut damaged = bytes[..MAGIC.len() + 4].to_vec();
            damaged.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            damaged.extend_from_slice(&zstd::bulk::compress(&payload, 1).unwrap());
            let _ = decode(&damaged);
        }
    }
}
