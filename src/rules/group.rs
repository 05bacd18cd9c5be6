//! One problem, one finding. The kinds judge one subject on one node at a time, so a fleet of a
//! hundred nodes with one leaking container gets a hundred findings, and one subject with a leak,
//! a creep, a projection and no memory limit gets four. This step, declared by the rule files and
//! deterministic, turns them into what a reader needs:
//!
//! - **across nodes**: the same rule about the same subject on several nodes of a role is one
//!   finding naming the worst few nodes and counting the rest, with every node's numbers kept as
//!   its members (`--format json`); a node whose numbers depart from its peers' (a leak several
//!   times faster) is still named on its own;
//! - **peer baseline**: a rule with `across_nodes = "baseline"` says nothing when nearly every
//!   node of the role shows it alike (the same sawtooth on every Prometheus): only the nodes that
//!   depart from it are news;
//! - **across rules**: findings of one `family` about one subject fold into the most severe, and a
//!   rule's findings fold into those of the rules it names in `folds_into` (what a reboot
//!   released becomes the reboot's evidence); the folded ones are kept as facets.
//!
//! What was grouped or folded away is not lost to the ledger: [`Finding::says`] tells it that an
//! open finding lives on in another one, so it is neither resolved nor repeated.

mod events;

use std::collections::BTreeMap;

use super::{Library, kinds};
use crate::history::Window;
use crate::history::metrics::entity_label;
use crate::model::{EvidenceValue, Facet, Finding, Member};

/// What the same finding on several nodes of a role becomes (`across_nodes` in a rule file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AcrossNodes {
    /// One finding for all of them (the default): a fleet-wide condition is itself worth saying.
    #[default]
    Group,
    /// Shown alike by nearly every node of the role, it is the role's baseline and not news:
    /// only nodes that depart from it are reported.
    Baseline,
    /// Every node's finding stands alone.
    Each,
}

impl AcrossNodes {
    pub const CHOICES: &'static str = "`group`, `baseline` or `each`";

    pub fn parse(text: &str) -> Option<AcrossNodes> {
        match text {
            "group" => Some(AcrossNodes::Group),
            "baseline" => Some(AcrossNodes::Baseline),
            "each" => Some(AcrossNodes::Each),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AcrossNodes::Group => "group",
            AcrossNodes::Baseline => "baseline",
            AcrossNodes::Each => "each",
        }
    }
}

/// A node departs from its peers when its headline value is this many times their median, or
/// this many times smaller.
pub const DEPARTS: f64 = 2.0;
/// "Nearly every" node of a role: the share of its nodes a baseline needs.
pub const NEARLY_EVERY: f64 = 0.8;
/// A baseline needs at least this many nodes in the role: two nodes alike are a coincidence.
pub const BASELINE_MIN_NODES: usize = 3;
/// Nodes named in a grouped finding's evidence; the rest are counted.
const NAMED: usize = 5;

/// What grouping made of an evaluation's findings.
#[derive(Debug, Default)]
pub struct Grouped {
    pub findings: Vec<Finding>,
    /// Grouped findings that are their role's baseline: not reported, but they still say what
    /// their members said before (the ledger neither resolves nor repeats those).
    pub baseline: Vec<Finding>,
}

/// Groups across nodes, sets the baselines aside, folds across rules, and orders the result:
/// severity, then causes before effects, then how many nodes it is about.
pub fn group(library: &Library, window: &Window, mut findings: Vec<Finding>) -> Grouped {
    // An event is news only from a capture of this round: a node missing from it still shows,
    // at its newest capture, the reboot told a round ago (alone or in a group).
    let round = window.latest_at().map(|t| t.timestamp());
    findings.retain(|f| !f.event || f.nodes.iter().all(|n| events::in_round(window, n, round)));
    let (across, baseline) = across_nodes(library, window, findings);
    // One subject's findings fold first, so that several subjects told together never take
    // in another subject's facets.
    let mut findings = across_subjects(library, across_rules(library, across));
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| is_cause(b).cmp(&is_cause(a)))
            .then_with(|| b.nodes.len().cmp(&a.nodes.len()))
            .then_with(|| a.nodes.cmp(&b.nodes))
            .then_with(|| a.rule_id.cmp(&b.rule_id))
            .then_with(|| a.entity.cmp(&b.entity))
    });
    Grouped { findings, baseline }
}

/// A finding that explains others (a node patrol cannot see, a reboot): read first.
fn is_cause(f: &Finding) -> bool {
    f.lifecycle.blinds || !f.facets.is_empty() && f.event
}

/// The value a finding is measured by (its kind's first headline value), as a magnitude.
fn magnitude(f: &Finding) -> Option<f64> {
    headline_value(f).and_then(|v| v.value).map(f64::abs)
}

fn headline_value(f: &Finding) -> Option<&EvidenceValue> {
    f.lifecycle
        .headline
        .iter()
        .find_map(|h| f.values.get(h).filter(|v| v.value.is_some()))
}

/// A title without the node name it starts with ("vk01 `x` memory …" → "`x` memory …").
pub fn without_node(title: &str, node: &str) -> String {
    match title.strip_prefix(node) {
        Some(rest) if rest.starts_with([' ', ':', ',']) => {
            rest.trim_start_matches([':', ',']).trim_start().to_string()
        }
        _ => title.to_string(),
    }
}

fn across_nodes(
    library: &Library,
    window: &Window,
    findings: Vec<Finding>,
) -> (Vec<Finding>, Vec<Finding>) {
    let mut out = Vec::new();
    let mut baseline = Vec::new();
    let mut buckets: BTreeMap<(String, String, String, String), Vec<Finding>> = BTreeMap::new();
    for f in findings {
        let rule = library.get(&f.rule_id);
        let groupable = rule.is_some_and(|r| r.across_nodes != AcrossNodes::Each)
            && f.scope.is_none()
            && f.nodes.len() == 1;
        if !groupable {
            out.push(f);
            continue;
        }
        let role = role_of(window, &f.nodes[0]);
        // Only findings that say the same thing in other numbers group: a clock hours behind
        // on one node and lines days ahead on another are two problems.
        let said = format!(
            "{}|{}|{}",
            f.entity,
            f.metric,
            skeleton(&without_node(&f.title, &f.nodes[0]))
        );
        let key = (f.rule_id.clone(), said, role.clone(), role);
        buckets.entry(key).or_default().push(f);
    }
    let buckets = buckets.into_iter().flat_map(|(key, members)| {
        events::together(members)
            .into_iter()
            .map(move |cluster| (key.clone(), cluster))
    });
    for ((rule_id, _, _, role), members) in buckets {
        let Some(rule) = library.get(&rule_id) else {
            out.extend(members);
            continue;
        };
        if members.len() < 2 {
            out.extend(members);
            continue;
        }
        let peers: Vec<String> = kinds::peer_groups(rule, window, false)
            .remove(&role)
            .unwrap_or_default()
            .into_iter()
            .map(|n| n.node.clone())
            .collect();
        let (alike, departing) = split_departing(members);
        let apart: Vec<String> = departing.iter().map(|d| d.nodes[0].clone()).collect();
        for d in departing {
            out.push(departs(d, &alike, &role));
        }
        if alike.len() < 2 {
            out.extend(alike);
            continue;
        }
        let in_role = peers.len().max(alike.len());
        // An event is never a baseline: every node of a site rebooting at once is news.
        let is_baseline = rule.across_nodes == AcrossNodes::Baseline
            && !alike.iter().any(|f| f.event)
            && in_role >= BASELINE_MIN_NODES
            && (alike.len() + apart.len()) as f64 >= NEARLY_EVERY * in_role as f64;
        let g = grouped(&role, &peers, &apart, alike);
        if is_baseline {
            baseline.push(g);
        } else {
            out.push(g);
        }
    }
    (out, baseline)
}

/// A title with its numbers masked, units attached to them included ("1.3GB", "+20MB/h"): what
/// it says, whatever it measured.
fn skeleton(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let mut in_number = false;
    for c in title.chars() {
        let continues = in_number && (c == '.' || c.is_ascii_alphabetic() || "%°/".contains(c));
        if c.is_ascii_digit() || continues {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

fn role_of(window: &Window, node: &str) -> String {
    window
        .node(node)
        .and_then(|n| n.role.clone())
        .unwrap_or_else(|| "fleet".to_string())
}

/// The members whose headline value departs from the median of all of them (at least three,
/// each with a headline value), and those that do not.
fn split_departing(members: Vec<Finding>) -> (Vec<Finding>, Vec<Finding>) {
    let mags: Option<Vec<f64>> = members.iter().map(magnitude).collect();
    let Some(mut mags) = mags.filter(|m| m.len() >= 3) else {
        return (members, Vec::new());
    };
    mags.sort_by(f64::total_cmp);
    let median = if mags.len() % 2 == 1 {
        mags[mags.len() / 2]
    } else {
        (mags[mags.len() / 2 - 1] + mags[mags.len() / 2]) / 2.0
    };
    if median <= 0.0 || !median.is_finite() {
        return (members, Vec::new());
    }
    members
        .into_iter()
        .partition(|f| magnitude(f).is_none_or(|m| m < DEPARTS * median && m > median / DEPARTS))
}

/// A node named on its own because its numbers depart from its peers': the evidence says so.
fn departs(mut f: Finding, peers: &[Finding], role: &str) -> Finding {
    if let Some((low, high)) = range(peers) {
        let group = role_phrase(role);
        f.evidence = format!(
            "{} {} other {group} show the same at {}; this one departs from them.",
            f.evidence.trim_end(),
            peers.len(),
            span_text(&low, &high)
        );
    }
    f
}

/// "`processing` nodes", or "nodes" for a fleet without roles.
fn role_phrase(role: &str) -> String {
    if role == "fleet" {
        "nodes".to_string()
    } else {
        format!("`{role}` nodes")
    }
}

/// The lowest and highest headline value of some findings, as printed.
fn range(findings: &[Finding]) -> Option<(String, String)> {
    let mut values: Vec<(f64, &str)> = findings
        .iter()
        .filter_map(|f| {
            let v = headline_value(f)?;
            Some((v.value?, v.text.as_str()))
        })
        .collect();
    if values.len() != findings.len() || values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some((
        values[0].1.to_string(),
        values[values.len() - 1].1.to_string(),
    ))
}

/// "+19.8…+20.2MB/h": a range of two printed values, their shared unit said once.
pub fn span_text(low: &str, high: &str) -> String {
    if low == high {
        return low.to_string();
    }
    let unit_len = |t: &str| t.len() - t.trim_end_matches(|c: char| !c.is_ascii_digit()).len();
    let (ul, uh) = (unit_len(low), unit_len(high));
    if ul > 0 && ul == uh && low[low.len() - ul..] == high[high.len() - uh..] {
        format!("{}…{high}", &low[..low.len() - ul])
    } else {
        format!("{low}…{high}")
    }
}

/// One finding for the same rule and subject on several nodes of a role: the worst node's
/// numbers, the range over all of them, the worst few named and the rest counted.
fn grouped(role: &str, peers: &[String], apart: &[String], mut members: Vec<Finding>) -> Finding {
    members.sort_by(|a, b| {
        magnitude(b)
            .unwrap_or(0.0)
            .total_cmp(&magnitude(a).unwrap_or(0.0))
            .then_with(|| a.nodes.cmp(&b.nodes))
    });
    let mut g = members[0].clone();
    let worst = g.nodes[0].clone();
    let in_role = peers.len().max(members.len());
    let stripped: Vec<String> = members
        .iter()
        .map(|m| without_node(&m.title, &m.nodes[0]))
        .collect();
    let on = format!("{} of {in_role} {}", members.len(), role_phrase(role));
    let spread = range(&members).filter(|(low, high)| low != high);
    g.title = match &spread {
        _ if stripped.iter().all(|t| *t == stripped[0]) => format!("{} on {on}", stripped[0]),
        Some((low, high)) => format!(
            "{} on {on} ({}; worst {worst})",
            stripped[0],
            span_text(low, high)
        ),
        None => format!("{} on {on} (as on {worst})", stripped[0]),
    };
    let named: Vec<String> = members
        .iter()
        .take(NAMED)
        .map(|m| match headline_value(m) {
            Some(v) if spread.is_some() => format!("{} ({})", m.nodes[0], v.text),
            _ => m.nodes[0].clone(),
        })
        .collect();
    let more = members.len().saturating_sub(NAMED);
    let mut nodes: Vec<String> = members.iter().map(|m| m.nodes[0].clone()).collect();
    nodes.sort();
    let absent: Vec<&String> = peers
        .iter()
        .filter(|p| !nodes.contains(p) && !apart.contains(p))
        .collect();
    let mut not_on = match absent.len() {
        0 => String::new(),
        1..=3 => format!(
            " Not on {}.",
            absent
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        n => format!(" Not on the other {n}."),
    };
    if !apart.is_empty() {
        not_on.push_str(&format!(
            " {} departs from them and is reported on its own.",
            apart.join(", ")
        ));
    }
    // Said alike of every node, the evidence needs no node to be attributed to.
    let alike = members.iter().all(|m| m.evidence == g.evidence);
    let about_worst = if alike || g.evidence.starts_with(&format!("On {worst}")) {
        String::new()
    } else {
        format!("On {worst}: ")
    };
    g.evidence = format!(
        "On {}{}.{not_on} {about_worst}{}",
        named.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
        g.evidence
    );
    g.values.insert(
        "nodes_affected".into(),
        EvidenceValue {
            value: Some(members.len() as f64),
            text: members.len().to_string(),
        },
    );
    g.values.insert(
        "nodes_in_role".into(),
        EvidenceValue {
            value: Some(in_role as f64),
            text: in_role.to_string(),
        },
    );
    g.scope = Some(format!("role:{role}"));
    g.severity = members
        .iter()
        .map(|m| m.severity)
        .max()
        .unwrap_or(g.severity);
    g.observed_at = members
        .iter()
        .map(|m| m.observed_at)
        .max()
        .unwrap_or(g.observed_at);
    g.context = members.iter().flat_map(|m| m.context.clone()).collect();
    g.raised_in_steady_rest = members
        .iter()
        .flat_map(|m| m.raised_in_steady_rest.clone())
        .collect();
    g.members = members
        .into_iter()
        .map(|m| Member {
            node: m.nodes[0].clone(),
            title: m.title,
            values: m.values,
        })
        .collect();
    g.nodes = nodes;
    g
}

/// Findings of one rule about several subjects of the same nodes that say the same thing in
/// other numbers ("Redis `keydb/db0` holds no keys", "… `keydb/db1` …") are one finding: the
/// first subject by name keeps its title (so the finding keeps its identity while it holds), the
/// others are named after it and folded in as facets.
fn across_subjects(library: &Library, findings: Vec<Finding>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut buckets: BTreeMap<(String, String, String, String), Vec<Finding>> = BTreeMap::new();
    for f in findings {
        let label = entity_label(&f.entity);
        let groupable = library
            .get(&f.rule_id)
            .is_some_and(|r| r.across_nodes != AcrossNodes::Each)
            && !f.event
            && f.title.contains(&label);
        if !groupable {
            out.push(f);
            continue;
        }
        let said = skeleton(&f.title.replacen(&label, "§", 1));
        let key = (f.rule_id.clone(), who(&f), f.metric.clone(), said);
        buckets.entry(key).or_default().push(f);
    }
    for (_, bucket) in buckets {
        // Subjects whose numbers differ by the departure factor are separate problems (two
        // containers leaking, one twice as fast as the other).
        let (mut alike, apart) = alike_in_magnitude(bucket);
        out.extend(apart);
        if alike.len() < 2 {
            out.extend(alike);
            continue;
        }
        alike.sort_by(|a, b| a.entity.cmp(&b.entity));
        let mut first = alike.remove(0);
        let others: Vec<String> = alike
            .iter()
            .map(|o| match headline_value(o) {
                Some(v) => format!("{} ({})", entity_label(&o.entity), v.text),
                None => entity_label(&o.entity),
            })
            .collect();
        let title = format!("{}; also {}", first.title, and_list(&others));
        for o in alike {
            fold(&mut first, o);
        }
        first.title = title;
        out.push(first);
    }
    out
}

/// The findings whose headline values are alike, and those that depart: of two, both depart when
/// one is [`DEPARTS`] times the other; of more, those departing from the median.
fn alike_in_magnitude(findings: Vec<Finding>) -> (Vec<Finding>, Vec<Finding>) {
    if let [a, b] = findings.as_slice()
        && let (Some(x), Some(y)) = (magnitude(a), magnitude(b))
        && x.max(y) >= DEPARTS * x.min(y)
    {
        return (Vec::new(), findings);
    }
    split_departing(findings)
}

/// "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Who a finding is about, for folding: its group, or its nodes.
fn who(f: &Finding) -> String {
    f.scope.clone().unwrap_or_else(|| f.nodes.join(","))
}

/// An entity that stands for the whole node: what a rule about it says covers every subject.
fn whole_node(entity: &str) -> bool {
    matches!(entity, "host" | "node") || entity == kinds::WHOLE_NODE
}

fn across_rules(library: &Library, findings: Vec<Finding>) -> Vec<Finding> {
    let order = |id: &str| library.rules.iter().position(|r| r.id == id);
    let mut slots: Vec<Option<Finding>> = findings.into_iter().map(Some).collect();
    // Families: the most severe of one family about one subject takes the others in.
    let mut families: BTreeMap<(String, String, String), Vec<usize>> = BTreeMap::new();
    for (i, f) in slots.iter().enumerate() {
        let Some(f) = f else { continue };
        if let Some(family) = library.get(&f.rule_id).and_then(|r| r.family.clone()) {
            families
                .entry((family, who(f), f.entity.clone()))
                .or_default()
                .push(i);
        }
    }
    for mut at in families.into_values().filter(|v| v.len() > 1) {
        at.sort_by_key(|&i| {
            let f = slots[i].as_ref();
            (
                std::cmp::Reverse(f.map(|f| f.severity)),
                f.and_then(|f| order(&f.rule_id)),
            )
        });
        let (head, rest) = at.split_first().unwrap_or((&0, &[]));
        for &i in rest {
            if let Some(folded) = slots[i].take()
                && let Some(h) = slots[*head].as_mut()
            {
                fold(h, folded);
            }
        }
    }
    // `folds_into`: a finding joins one of the named rules' about the same node and subject (or
    // about the whole node).
    for i in 0..slots.len() {
        let Some(f) = slots[i].as_ref() else { continue };
        let Some(rule) = library.get(&f.rule_id) else {
            continue;
        };
        if rule.folds_into.is_empty() {
            continue;
        }
        let target = slots.iter().enumerate().position(|(j, t)| {
            j != i
                && t.as_ref().is_some_and(|t| {
                    rule.folds_into.contains(&t.rule_id)
                        && (t.entity == f.entity || whole_node(&t.entity))
                        && f.all_nodes().all(|n| t.all_nodes().any(|m| m == n))
                })
        });
        if let Some(j) = target
            && let Some(folded) = slots[i].take()
            && let Some(t) = slots[j].as_mut()
        {
            fold(t, folded);
        }
    }
    slots.into_iter().flatten().collect()
}

/// Findings of this round that belong to a family whose head is still open but was not raised
/// this round (held: its rule could not decide, or its condition holds past its trend) fold into
/// that head, as they did while it was raised: one problem is told once, not split into its
/// parts whenever its main finding pauses. `open` are the ledger's open findings; `held` says
/// whether one of them is held this round rather than gone. Returns the findings to report,
/// with each such head raised again (unchanged but for its facets).
pub fn hold_families<'a>(
    library: &Library,
    open: impl Iterator<Item = &'a Finding>,
    findings: Vec<Finding>,
    mut held: impl FnMut(&Finding) -> bool,
) -> Vec<Finding> {
    let order = |id: &str| library.rules.iter().position(|r| r.id == id);
    let family = |f: &Finding| library.get(&f.rule_id).and_then(|r| r.family.clone());
    let raised: std::collections::BTreeSet<String> = findings.iter().map(Finding::key).collect();
    let heads: Vec<&Finding> = open
        .filter(|e| !e.event && !raised.contains(&e.key()) && family(e).is_some())
        .collect();
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    let mut revived: BTreeMap<String, Finding> = BTreeMap::new();
    let mut verdicts: BTreeMap<String, bool> = BTreeMap::new();
    for f in findings {
        let fam = family(&f);
        let head = fam.as_ref().filter(|_| !f.event).and_then(|fam| {
            heads.iter().find(|e| {
                family(e).as_ref() == Some(fam)
                    && who(e) == who(&f)
                    && e.entity == f.entity
                    && (std::cmp::Reverse(e.severity), order(&e.rule_id))
                        < (std::cmp::Reverse(f.severity), order(&f.rule_id))
            })
        });
        match head {
            Some(e) if *verdicts.entry(e.key()).or_insert_with(|| held(e)) => {
                let h = revived.entry(e.key()).or_insert_with(|| (*e).clone());
                // What it said of this member before is replaced by what the member says now.
                h.facets
                    .retain(|x| !(x.rule_id == f.rule_id && x.entity == f.entity));
                fold(h, f);
            }
            _ => out.push(f),
        }
    }
    out.extend(revived.into_values());
    out
}

/// Folds `other` into `into` as a facet: its title (without the node names `into` already
/// says) becomes an "also" line of the evidence.
fn fold(into: &mut Finding, other: Finding) {
    let mut text = other.title.clone();
    for n in &other.nodes {
        text = without_node(&text, n);
    }
    into.severity = into.severity.max(other.severity);
    into.context.extend(other.context.clone());
    into.facets.extend(other.facets.iter().cloned());
    into.facets.push(Facet {
        rule_id: other.rule_id,
        severity: other.severity,
        nodes: other.nodes,
        entity: other.entity,
        metric: other.metric,
        text,
        evidence: other.evidence,
        values: other.values,
    });
    let also: Vec<&str> = into.facets.iter().map(|f| f.text.as_str()).collect();
    let base = match into.evidence.find(" Also: ") {
        Some(at) => into.evidence[..at].to_string(),
        None => into.evidence.trim_end().to_string(),
    };
    into.evidence = format!("{base} Also: {}.", also.join("; "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_says_its_unit_once() {
        assert_eq!(span_text("+19.8MB/h", "+20.2MB/h"), "+19.8…+20.2MB/h");
        assert_eq!(span_text("172.6MB", "1.2GB"), "172.6MB…1.2GB");
        assert_eq!(span_text("3", "5"), "3…5");
        assert_eq!(span_text("5%", "5%"), "5%");
    }

    #[test]
    fn numbers_are_masked_words_are_not() {
        assert_eq!(
            skeleton("`db` has no memory limit (1.3GB in use)"),
            skeleton("`db` has no memory limit (5.97GB in use)")
        );
        assert_ne!(
            skeleton("clock 9 min behind"),
            skeleton("lines 3 days ahead")
        );
    }

    #[test]
    fn a_title_loses_the_node_it_starts_with_only() {
        assert_eq!(without_node("vk01 `x` memory", "vk01"), "`x` memory");
        assert_eq!(without_node("vk01: a, b hold 50%", "vk01"), "a, b hold 50%");
        assert_eq!(without_node("vk011 `x`", "vk01"), "vk011 `x`");
        assert_eq!(
            without_node("Drift across vk01", "vk01"),
            "Drift across vk01"
        );
    }
}
