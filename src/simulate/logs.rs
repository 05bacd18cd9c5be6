//! Log lines a scenario writes, turned into what a collector would have made of them: one
//! template per masked message and level, with counts, first and last times, pids and samples.

use std::collections::BTreeMap;

use super::scenario::LogSpec;
use super::trajectory::{Clock, ts};
use crate::logtemplate;
use crate::model::{LogStream, LogTemplate};

/// The templates a collector would have made of the lines written in `(from, to]`.
pub(super) fn log_stream(
    specs: &[LogSpec],
    source: &str,
    from: f64,
    to: f64,
    clock: &Clock,
    t0: f64,
) -> LogStream {
    let mut templates: BTreeMap<(String, String), LogTemplate> = BTreeMap::new();
    let mut total = 0u64;
    for spec in specs {
        let every = spec.every.0.max(0.001);
        let origin = spec.from.as_ref().map(|f| clock.at(f)).unwrap_or(t0);
        let until = spec
            .until
            .as_ref()
            .map(|u| clock.at(u))
            .unwrap_or(f64::INFINITY);
        let lo = from.max(origin);
        let hi = to.min(until - 1e-9);
        if hi < lo {
            continue;
        }
        // Emissions at origin + k*every, k >= 0, within (lo, hi].
        let k_first = ((lo - origin) / every).floor() as i64 + 1;
        let k_first = if lo == origin && from < origin {
            0
        } else {
            k_first.max(0)
        };
        let k_last = ((hi - origin) / every).floor() as i64;
        if k_last < k_first {
            continue;
        }
        let count = (k_last - k_first + 1) as u64;
        total += count;
        let mut message = spec.message.clone();
        for (k, v) in &spec.fields {
            message = message.replace(&format!("{{{k}}}"), v);
        }
        let offset = spec.ts_offset.map(|o| o.0).unwrap_or(0.0);
        let at = |k: i64| origin + k as f64 * every + offset;
        let level = spec.level.clone().unwrap_or_else(|| "INFO".into());
        let template = logtemplate::mask(&message);
        let entry = templates
            .entry((template.clone(), level.clone()))
            .or_insert_with(|| LogTemplate::new(template, Some(level.clone())));
        entry.count += count;
        let first = ts(at(k_first));
        let last = ts(at(k_last));
        entry.first_ts = Some(entry.first_ts.map_or(first, |f| f.min(first)));
        entry.last_ts = Some(entry.last_ts.map_or(last, |l| l.max(last)));
        entry.last_ts_raw = Some(last.format("%Y-%m-%d %H:%M:%S%.3f").to_string());
        if let Some(pid0) = spec.pid_start {
            let step = i64::from(spec.pid_step.unwrap_or(1));
            let pid = |k: i64| (i64::from(pid0) + k * step).rem_euclid(4_194_304) as u32;
            let mut ks: Vec<i64> = (k_first..=k_last.min(k_first + 2)).collect();
            ks.extend((k_last - 2).max(k_first + 3)..=k_last);
            entry.pids.extend(ks.into_iter().map(pid));
            entry.pids.sort_unstable();
            entry.pids.dedup();
        }
        for (field, value) in &spec.fields {
            *entry
                .fields
                .entry(field.clone())
                .or_default()
                .entry(value.clone())
                .or_default() += count;
        }
        for k in [k_first, k_last] {
            if entry.samples.len() < 3 {
                let line = format!(
                    "{} {} {}",
                    ts(at(k)).format("%Y-%m-%d %H:%M:%S%.3f"),
                    level,
                    message
                );
                if !entry.samples.contains(&line) {
                    entry.samples.push(line);
                }
            }
        }
    }
    LogStream {
        source: source.to_string(),
        window_start: ts(from),
        window_end: ts(to),
        lines_total: total,
        lines_dropped: 0,
        templates: templates.into_values().collect(),
        other: Default::default(),
        truncated: None,
    }
}
