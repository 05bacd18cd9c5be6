#![doc = include_str!("score_card.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target};
use crate::model::{Health, Snapshot};
use crate::rules::{Library, Rule};
use crate::rules::select::glob_match;
use crate::tomlread::Ctx;
use crate::units::{fmt_bytes, fmt_number};

pub const SPEC: KindSpec = KindSpec {
    name: "score-card",
    doc: include_str!("score_card.md"),
    target: Target::Node,
    event: false,
    variables: &["score", "breakdown", "weakest"],
    headline: &["score"],
    parse,
};

/// The cleanup job a score card looks for when its rule does not name one.
pub const DEFAULT_CLEANUP_JOB: &str = "*cleanup*";

#[derive(Debug, Clone)]
pub struct Params {
    pub below: f64,
    pub cleanup_job: String,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    Some(Kind::ScoreCard(Params {
        below: super::number(p, ctx, "below").unwrap_or(70.0),
        cleanup_job: p
            .fields
            .string(ctx, "cleanup_job", false)
            .map(|s| s.into_inner())
            .unwrap_or_else(|| DEFAULT_CLEANUP_JOB.into()),
    }))
}

/// The cleanup job (a glob) of the library's first score-card rule, else the kind's default:
/// the weekly digest scores nodes with the card the fleet's rule describes.
pub fn cleanup_job(library: &Library) -> String {
    library
        .rules
        .iter()
        .find_map(|r| match &r.kind {
            Kind::ScoreCard(p) => Some(p.cleanup_job.clone()),
            _ => None,
        })
        .unwrap_or_else(|| DEFAULT_CLEANUP_JOB.to_string())
}

/// One dimension of the card: its name, points earned, points possible, and why. A dimension
/// patrol could not read (no cleanup job on the node) is not checked: it neither earns nor
/// loses points, and the total is scaled over the dimensions that were.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    pub name: &'static str,
    pub points: u32,
    pub max: u32,
    pub reading: String,
    pub checked: bool,
}

impl Dimension {
    /// "Disk health 10/15 (48.3% used)", or "Maintenance hygiene could not check (…)".
    pub fn text(&self) -> String {
        if self.checked {
            format!("{} {}/{} ({})", self.name, self.points, self.max, self.reading)
        } else {
            format!("{} could not check ({})", self.name, self.reading)
        }
    }
}

/// The card's total out of 100, scaled over the dimensions that were checked (85 of 100
/// checked and 56 earned is 66), and the points those dimensions are worth.
pub fn total(card: &[Dimension]) -> (u32, u32) {
    let (earned, possible) = card
        .iter()
        .filter(|d| d.checked)
        .fold((0, 0), |(e, p), d| (e + d.points, p + d.max));
    if possible == 0 {
        return (0, 0);
    }
    let scaled = (f64::from(earned) * 100.0 / f64::from(possible)).round() as u32;
    (scaled, possible)
}

/// The dimension that lost the most points, among those checked; `None` when none lost any.
pub fn weakest(card: &[Dimension]) -> Option<&Dimension> {
    card.iter()
        .filter(|d| d.checked && d.points < d.max)
        .max_by_key(|d| (d.max - d.points, std::cmp::Reverse(d.name)))
}

const GB: f64 = 1e9;

/// The node size the seed's memory bands (6, 3 and 1 GB available) are for.
const MEMORY_BANDS_NODE_BYTES: f64 = 16.0 * GB;

fn band(bands: &[(bool, u32)], floor: u32) -> u32 {
    bands
        .iter()
        .find(|(passes, _)| *passes)
        .map(|(_, points)| *points)
        .unwrap_or(floor)
}

/// Memory pressure from available memory. The seed's bands were drawn for nodes of 16 GB; a
/// smaller node (a 4 GB gateway) is held to the same shares of its own memory, not to gigabytes
/// it does not have.
fn memory_pressure(total: Option<f64>, available: f64) -> Dimension {
    let scale = total.map_or(1.0, |t| (t / MEMORY_BANDS_NODE_BYTES).min(1.0));
    let points = band(
        &[
            (available > 6.0 * GB * scale, 20),
            (available > 3.0 * GB * scale, 15),
            (available > GB * scale, 5),
        ],
        0,
    );
    let reading = match total {
        Some(t) if t < MEMORY_BANDS_NODE_BYTES => {
            format!("{} available of {}", fmt_bytes(available), fmt_bytes(t))
        }
        _ => format!("{} available", fmt_bytes(available)),
    };
    Dimension {
        name: "Memory pressure",
        points,
        max: 20,
        reading,
        checked: true,
    }
}

/// What keeps a snapshot from being scored ([`score`] is `None`): the first reading it lacks.
pub fn unscored_why(s: &Snapshot) -> Option<&'static str> {
    let Some(host) = s.host.as_ref() else {
        return Some("no host readings");
    };
    if host.cpu_steal_pct.is_none() {
        return Some("no CPU steal reading");
    }
    if host.mem_available_bytes.is_none() {
        return Some("no memory reading");
    }
    if !host.disks.iter().any(|d| d.used_pct.is_some()) {
        return Some("no disk reading");
    }
    if s.containers.is_none() {
        return Some("no container list");
    }
    None
}

/// "Disk 0/15": a dimension's first word and its points, for a line read on a phone.
pub fn short(d: &Dimension) -> String {
    let word = d.name.split_whitespace().next().unwrap_or(d.name);
    if d.checked {
        format!("{word} {}/{}", d.points, d.max)
    } else {
        format!("{word} could not check")
    }
}

/// The seed 002 §3.1 score card of one snapshot, band for band; `None` when a reading it needs
/// is missing. Shared with the weekly digest.
pub fn score(s: &Snapshot, cleanup_job: &str) -> Option<Vec<Dimension>> {
    let host = s.host.as_ref()?;
    let readings = Readings {
        steal: host.cpu_steal_pct?,
        available: host.mem_available_bytes? as f64,
        free: host.mem_free_bytes.unwrap_or(host.mem_available_bytes?) as f64,
        total: host.mem_total_bytes.map(|t| t as f64),
        disk: host
            .disks
            .iter()
            .filter_map(|d| d.used_pct)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))?,
        unhealthy: s
            .containers
            .as_ref()?
            .iter()
            .filter(|c| c.health == Health::Unhealthy)
            .count(),
    };
    Some(card(&readings, hygiene(s, cleanup_job)))
}

/// The readings a card is drawn from, but for the cleanup job.
struct Readings {
    steal: f64,
    available: f64,
    free: f64,
    total: Option<f64>,
    disk: f64,
    unhealthy: usize,
}

/// The card of `r`, with the hygiene dimension already judged.
fn card(r: &Readings, hygiene: Dimension) -> Vec<Dimension> {
    let Readings {
        steal,
        available,
        free,
        total,
        disk,
        unhealthy,
    } = *r;
    // Each band: (the reading passes, points), tried in order; then the floor.
    let cpu = band(
        &[(steal < 2.0, 20), (steal < 5.0, 15), (steal < 10.0, 10)],
        5,
    );
    let disk_points = band(&[(disk < 40.0, 15), (disk < 55.0, 10), (disk < 70.0, 5)], 0);
    let service = band(
        &[
            (unhealthy == 0, 20),
            (unhealthy <= 2, 15),
            (unhealthy <= 5, 8),
        ],
        2,
    );
    let llm = band(
        &[
            (free > 8.0 * GB, 10),
            (free > 4.0 * GB, 7),
            (free > 2.0 * GB, 4),
        ],
        1,
    );
    vec![
        Dimension {
            name: "CPU efficiency",
            points: cpu,
            max: 20,
            reading: format!("steal {}%", fmt_number(steal, 1)),
            checked: true,
        },
        memory_pressure(total, available),
        Dimension {
            name: "Disk health",
            points: disk_points,
            max: 15,
            reading: format!("{}% used", fmt_number(disk, 1)),
            checked: true,
        },
        Dimension {
            name: "Service health",
            points: service,
            max: 20,
            reading: format!("{unhealthy} unhealthy"),
            checked: true,
        },
        hygiene,
        Dimension {
            name: "LLM readiness",
            points: llm,
            max: 10,
            reading: format!("{} free", fmt_bytes(free)),
            checked: true,
        },
    ]
}

/// The maintenance hygiene of a snapshot: its cleanup job's last run and what it freed; could
/// not check without a job matching `cleanup_job`.
fn hygiene(s: &Snapshot, cleanup_job: &str) -> Dimension {
    let cleanup = s
        .cron_jobs
        .iter()
        .find(|j| glob_match(cleanup_job, &j.name));
    let checked = cleanup.is_some();
    let (hygiene, hygiene_reading) = match cleanup.and_then(|j| j.last_run.map(|t| (j, t))) {
        _ if cleanup.is_none() => (0, format!("no cleanup job `{cleanup_job}` on the node")),
        Some((job, last)) => {
            let days = (s.captured_at - last).num_seconds() as f64 / 86400.0;
            let freed = job.outcome.get("freed_mb").copied().unwrap_or(0.0);
            let points = if days < 7.0 && freed > 0.0 {
                15
            } else if days < 30.0 {
                8
            } else {
                0
            };
            (
                points,
                format!(
                    "last cleanup {} days ago, freed {}MB",
                    fmt_number(days, 1),
                    fmt_number(freed, 0)
                ),
            )
        }
        None => (0, "its cleanup job has no run recorded".to_string()),
    };
    Dimension {
        name: "Maintenance hygiene",
        points: hygiene,
        max: 15,
        reading: hygiene_reading,
        checked,
    }
}

/// The card a node's readings in the window give at its capture taken at `at`, hygiene left
/// unchecked (the window keeps no cleanup runs): what a node scored a day ago, and now, alike.
fn card_at(node: &crate::history::NodeHistory, at: i64) -> Option<Vec<Dimension>> {
    let read = |entity: &str, metric: &str| -> Option<f64> {
        let points = &node.series(entity, metric)?.points;
        let i = points.partition_point(|p| p.at < at);
        points.get(i).filter(|p| p.at == at)?.value
    };
    let at_capture = |metric: &str, prefix: &str| -> Vec<f64> {
        node.series_of(metric)
            .into_iter()
            .filter(|(entity, _)| entity.starts_with(prefix))
            .filter_map(|(entity, _)| read(entity, metric))
            .collect()
    };
    let available = read("host", "mem_available_bytes")?;
    let readings = Readings {
        steal: read("host", "cpu_steal_pct")?,
        available,
        free: read("host", "mem_free_bytes").unwrap_or(available),
        total: read("host", "mem_total_bytes"),
        disk: at_capture("used_pct", "disk:").into_iter().reduce(f64::max)?,
        unhealthy: at_capture("healthy", "container:")
            .into_iter()
            .filter(|h| *h == 0.0)
            .count(),
    };
    let hygiene = Dimension {
        name: "Maintenance hygiene",
        points: 0,
        max: 15,
        reading: "not kept in the window".into(),
        checked: false,
    };
    Some(card(&readings, hygiene))
}

/// How far under its role's median a low score must be to be news: a role whose nodes all
/// score alike (a fleet of small gateways) is not a fleet of findings.
const ROLE_MARGIN: u32 = 10;

/// A score that fell by this much since the window's oldest capture is news whatever its role
/// scores.
const FALL_MARGIN: u32 = 10;

/// The oldest capture must be at least this much older than the newest for a fall to be read.
const FALL_SPAN_S: i64 = 3600;

/// (then, now): the node's score at its oldest capture in the window and at its newest, both
/// from the window's readings (hygiene aside), when it fell by [`FALL_MARGIN`] or more.
fn fell(node: &crate::history::NodeHistory) -> Option<(u32, u32)> {
    let latest = node.latest_at()?;
    let first = node.capture_times().next()?;
    if latest - first < FALL_SPAN_S {
        return None;
    }
    let then = total(&card_at(node, first)?).0;
    let now = total(&card_at(node, latest)?).0;
    (then >= now + FALL_MARGIN).then_some((then, now))
}

/// Roles of at least this many scored nodes have a median to compare with.
const ROLE_MIN_NODES: usize = 3;

/// What a role says about a low score: nothing (no role, or fewer than [`ROLE_MIN_NODES`]
/// nodes in it), its median, or that too few of its nodes were scored now to tell.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RoleView {
    None,
    Median(u32),
    TooFewScored,
}

/// Each declared role's view: the lower median of its nodes scored now, when at least
/// [`ROLE_MIN_NODES`] were; a role of that many nodes in the window with fewer scored now (one
/// dark) cannot tell. Nodes without a role are no role: unrelated machines are not compared.
fn role_views<'a>(
    in_window: impl Iterator<Item = Option<&'a str>>,
    scored: impl Iterator<Item = (Option<&'a str>, u32)>,
) -> std::collections::BTreeMap<&'a str, RoleView> {
    let mut size: std::collections::BTreeMap<&str, usize> = Default::default();
    for role in in_window.flatten() {
        *size.entry(role).or_default() += 1;
    }
    let mut by_role: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
    for (role, total) in scored {
        if let Some(role) = role {
            by_role.entry(role).or_default().push(total);
        }
    }
    size.into_iter()
        .filter(|(_, n)| *n >= ROLE_MIN_NODES)
        .map(|(role, _)| {
            let view = match by_role.remove(role) {
                Some(mut v) if v.len() >= ROLE_MIN_NODES => {
                    v.sort_unstable();
                    // The lower of two middles: half a role scoring low is not under itself.
                    RoleView::Median(v[(v.len() - 1) / 2])
                }
                _ => RoleView::TooFewScored,
            };
            (role, view)
        })
        .collect()
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    let mut cards = Vec::new();
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        let at = snap.captured_at.timestamp();
        let Some(card) = score(snap, &p.cleanup_job) else {
            out.push(Candidate::undecided(node, "host", "score", at));
            continue;
        };
        let (total, possible) = total(&card);
        if possible > 0 {
            cards.push((node, at, card, total, possible));
        }
    }
    let views = role_views(
        ctx.window
            .nodes()
            .filter(|n| rule.select.node_matches(n))
            .map(|n| n.role.as_deref()),
        cards.iter().map(|c| (c.0.role.as_deref(), c.3)),
    );
    for (node, at, card, total, possible) in cards {
        if f64::from(total) >= p.below {
            continue;
        }
        let view = node
            .role
            .as_deref()
            .and_then(|r| views.get(r).copied())
            .unwrap_or(RoleView::None);
        let fall = fell(node);
        if view == RoleView::TooFewScored && fall.is_none() {
            // A peer dark or unscored: the role cannot say whether this is news.
            out.push(Candidate::undecided(node, "host", "score", at));
            continue;
        }
        let median = match view {
            RoleView::Median(m) => Some(m),
            _ => None,
        };
        if median.is_some_and(|m| total + ROLE_MARGIN > m) && fall.is_none() {
            // Low, but like the rest of its role and not falling: what lowers it is the role's
            // (and the findings about that dimension say it), not this node's news.
            out.push(Candidate::holding(node, "host", "score", at));
            continue;
        }
        let breakdown: Vec<String> = card.iter().map(Dimension::text).collect();
        let weakest = weakest(&card)
            .map(|d| format!("{} ({}/{}, {})", d.name, d.points, d.max, d.reading))
            .unwrap_or_default();
        let scaled = if possible < 100 {
            format!(", scaled from the {possible} points that could be checked")
        } else {
            String::new()
        };
        let mut c = Candidate::new(node, "host", "score", at);
        c.value("score", Some(f64::from(total)), total.to_string());
        c.value("breakdown", None, breakdown.join("; "));
        c.value("weakest", None, weakest.clone());
        let mut role = median
            .map(|m| format!(" Its role's nodes score {m} (median)."))
            .unwrap_or_default();
        if let Some((then, now)) = fall {
            role.push_str(&format!(
                " It is falling: its readings alone (hygiene aside, which the window does not keep) gave {then} at the window's oldest capture and give {now} now."
            ));
        }
        c.evidence = format!(
            "{} scores {total}/100 (below {}{scaled}): {}. The most points are lost on {weakest}.{role}",
            node.node,
            fmt_number(p.below, 0),
            breakdown.join("; ")
        );
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(total_gb: f64, available_gb: f64) -> Snapshot {
        let gb = |x: f64| (x * GB) as u64;
        serde_json::from_value(serde_json::json!({
            "schema_version": "1.1",
            "fleet": "f",
            "node": "n",
            "captured_at": "2026-02-18T00:00:00Z",
            "host": {
                "mem_total_bytes": gb(total_gb),
                "mem_available_bytes": gb(available_gb),
                "mem_free_bytes": gb(available_gb),
                "cpu_steal_pct": 0.0,
                "disks": [{ "mount": "/", "size_bytes": gb(32.0), "used_bytes": gb(8.0), "used_pct": 25.0 }]
            },
            "containers": []
        }))
        .unwrap()
    }

    fn memory(s: &Snapshot) -> Dimension {
        score(s, DEFAULT_CLEANUP_JOB).unwrap().remove(1)
    }

    #[test]
    fn memory_bands_are_shares_of_a_node_smaller_than_the_seeds() {
        // 2.5 GB available: plenty for a 4 GB gateway, little for a 32 GB inference node.
        let small = memory(&node(4.0, 2.5));
        assert_eq!((small.points, small.reading.as_str()), (20, "2.5GB available of 4GB"));
        assert_eq!(memory(&node(32.0, 2.5)).points, 5);
        // Under a quarter of the gateway's memory available is pressure for it too.
        assert_eq!(memory(&node(4.0, 0.9)).points, 15);
        assert_eq!(memory(&node(4.0, 0.2)).points, 0);
        // At 16 GB and above the seed's gigabytes hold as they are.
        assert_eq!(memory(&node(16.0, 5.0)).points, 15);
        assert_eq!(memory(&node(64.0, 5.0)).points, 15);
    }
}
