//! The week's charts (SVG, drawn by `crate::chart`): memory of the top growers, and each node's
//! fullest disk with its trend carried a week ahead. Written beside the digest's markdown.

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use super::Digest;
use crate::chart::{Series, by_scale, line_chart_marked};
use crate::units::{fmt_bytes, fmt_number};

/// The week's charts as (file name, alt text, SVG).
pub fn charts(d: &Digest, tz: Tz, start: i64, end: i64) -> Vec<(String, String, String)> {
    let day = |t: i64| {
        Utc.timestamp_opt(t, 0)
            .single()
            .map(|x| x.with_timezone(&tz).format("%a %b %-d").to_string())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if !d.growers.is_empty() {
        out.extend(memory_charts(d, start, end, &day));
    }
    if !d.disk_series.is_empty() {
        out.push(disk_chart(d, start, end, &day));
    }
    out
}

/// The growers' memory, on as many charts as their sizes need ([`by_scale`]): the first is
/// `<week>-memory.svg`, the others `<week>-memory-2.svg`, ….
fn memory_charts(
    d: &Digest,
    start: i64,
    end: i64,
    day: &dyn Fn(i64) -> String,
) -> Vec<(String, String, String)> {
    let series: Vec<Series> = d
        .growers
        .iter()
        .map(|g| Series {
            label: format!("{} {}", g.node, g.container),
            points: &g.points,
            projection: None,
            nulls: &g.nulls,
        })
        .collect();
    let groups = by_scale(series);
    let count = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            // The reboots of the nodes on this chart ("vk01 is-sis-surface": the node first).
            let nodes: Vec<&str> = group
                .iter()
                .filter_map(|s| s.label.split(' ').next())
                .collect();
            let reboots = reboots_of(d, |n| nodes.contains(&n));
            let (file, part) = match i {
                0 => (format!("{}-memory.svg", d.week), String::new()),
                _ => (
                    format!("{}-memory-{}.svg", d.week, i + 1),
                    format!(" ({} of {count}, smaller)", i + 1),
                ),
            };
            (
                file,
                format!("Memory of the top growers over the week{part}"),
                line_chart_marked(
                    &format!("{} {}: memory of the top growers{part}", d.fleet, d.week),
                    &group,
                    (start, end),
                    &reboots,
                    &|v| fmt_bytes(v),
                    day,
                ),
            )
        })
        .collect()
}

/// The week's reboots of the nodes `wanted` picks, each with its node's name.
fn reboots_of(d: &Digest, wanted: impl Fn(&str) -> bool) -> Vec<(i64, String)> {
    d.nodes
        .iter()
        .filter(|n| wanted(&n.node))
        .flat_map(|n| n.reboot_times.iter().map(|t| (*t, n.node.clone())))
        .collect()
}

fn disk_chart(
    d: &Digest,
    start: i64,
    end: i64,
    day: &dyn Fn(i64) -> String,
) -> (String, String, String) {
    // Each disk's trend carried a week past the end, at the week's slope (capped at full).
    let horizon = end + 7 * 86400;
    let series: Vec<Series> = d
        .disk_series
        .iter()
        .map(|(n, p)| {
            let node = d.nodes.iter().find(|x| &x.node == n);
            let projection = node.and_then(|x| {
                let (used, days) = (x.disk_used_pct?, x.disk_full_in_days?);
                let (last_t, _) = *p.last()?;
                let per_s = (100.0 - used) / (days * 86400.0);
                let reach = ((100.0 - used) / per_s) as i64;
                let t = (last_t + reach).min(horizon);
                Some((t, (used + per_s * (t - last_t) as f64).min(100.0)))
            });
            Series {
                label: n.clone(),
                points: p,
                projection,
                nulls: &[],
            }
        })
        .collect();
    (
        format!("{}-disk.svg", d.week),
        "Fullest disk of each node over the week (% used), dashed: a week ahead at this rate"
            .to_string(),
        line_chart_marked(
            &format!(
                "{} {}: fullest disk, % used, and a week ahead",
                d.fleet, d.week
            ),
            &series,
            (start, horizon),
            &reboots_of(d, |_| true),
            &|v| format!("{}%", fmt_number(v, 0)),
            day,
        ),
    )
}
