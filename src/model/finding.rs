//! A finding: what one rule concluded about one subject at one capture, with the numbers behind
//! it. The report renders findings; the ledger remembers them by [`Finding::key`].

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Suggestion,
    Info,
    Warning,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Warning => "WARNING",
            Severity::Info => "INFO",
            Severity::Suggestion => "SUGGESTION",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_lowercase().as_str() {
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            "suggestion" => Some(Severity::Suggestion),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One named number or text a rule measured, with the exact value and the way it is printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule_id: String,
    pub kind: String,
    pub severity: Severity,
    /// The nodes it is about; more than one for fleet-scope rules (drift).
    pub nodes: Vec<String>,
    /// For fleet-scope rules, what the finding is about instead of its nodes (a peer group), so
    /// it keeps its identity when the set of nodes involved changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The entity it is about, e.g. "container:visionking-visualizer", "gpu:0", "host".
    pub entity: String,
    /// The metric or attribute it is about.
    pub metric: String,
    pub observed_at: DateTime<Utc>,
    pub title: String,
    /// What was measured, with numbers, units and window.
    pub evidence: String,
    pub recommendation: String,
    /// The numbers behind the text, for machine output and for tests that check the arithmetic.
    pub values: BTreeMap<String, EvidenceValue>,
    /// A one-off event (a drop, a reboot) is reported once; a condition stays open until the
    /// evidence shows it gone.
    #[serde(default)]
    pub event: bool,
    /// What tells two events of the same rule and subject apart (e.g. the boot time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// How the ledger follows it up (from the rule): which values are its headline, when it
    /// counts as sustained, which rule verifies its recommendation.
    #[serde(default, skip_serializing_if = "Lifecycle::is_default")]
    pub lifecycle: Lifecycle,
    /// The derived states of its nodes when it was last seen ("vk01/line" → "production"):
    /// while they differ, its absence proves nothing and it cannot resolve.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
    /// The `context` entries ("vk01/line") whose node had been at its state's `rest` value for
    /// the two hours before the finding was raised: the condition arose at rest, not with the
    /// work stopping, so a rule whose condition work only makes likelier may see it healthy
    /// under work as well (`worse_under_work`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub raised_in_steady_rest: std::collections::BTreeSet<String>,
    /// For one finding about the same subject on several nodes of a role: each node's own
    /// title and numbers (the finding's `nodes` are theirs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// Findings of other rules about the same subject, folded into this one as evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facets: Vec<Facet>,
}

/// One node's share of a finding grouped across nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub node: String,
    pub title: String,
    pub values: BTreeMap<String, EvidenceValue>,
}

/// A finding of another rule folded into this one ("also: no memory limit").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facet {
    pub rule_id: String,
    pub severity: Severity,
    pub nodes: Vec<String>,
    pub entity: String,
    pub metric: String,
    /// Its own title, without the node names the finding it is folded into already says.
    pub text: String,
    /// Its own evidence, for `--format json`: the report prints `text` as an "also" line.
    #[serde(default)]
    pub evidence: String,
    pub values: BTreeMap<String, EvidenceValue>,
}

/// What the ledger needs to know about a finding's rule to report it over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Values whose material change is worth a new report ("rate", "ratio", "interval").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headline: Vec<String>,
    /// Captures in a row after which the finding is reported again as sustained (escalated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_after: Option<u32>,
    /// A rule whose finding on the same subject means the recommendation is not deployed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
    /// Captures in a row it must be seen healthy, on fresh readings, before it resolves
    /// (absent: [`Lifecycle::DEFAULT_RESOLVE_AFTER`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_after: Option<u32>,
    /// Its finding leaves patrol blind to a node (unreachable, no containers): the report says
    /// how many open findings it leaves unchecked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blinds: bool,
    /// Work only makes its condition likelier (a listener gone, a crash loop, connections
    /// used up): raised at rest, it counts as healthy when seen so under work as well. The
    /// other way round, and for any other rule, a finding is judged only in the states it was
    /// raised in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub worse_under_work: bool,
    /// What it costs if nobody acts (absent in ledgers written before 1.x: the kind's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<super::Impact>,
    /// Its kind counts something over a window that slides (a counter's advance): the ledger
    /// keeps the total over the episode instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative: Option<Cumulative>,
}

/// The values of a cumulative count: its total, the counter's reading it was taken from, and
/// when the total starts (a value whose number is a Unix time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cumulative {
    pub total: String,
    pub reading: String,
    pub from: String,
}

impl Lifecycle {
    /// One healthy capture could be the gap between two bad ones.
    pub const DEFAULT_RESOLVE_AFTER: u32 = 2;

    pub fn resolve_after(&self) -> u32 {
        self.resolve_after
            .unwrap_or(Lifecycle::DEFAULT_RESOLVE_AFTER)
            .max(1)
    }

    pub fn is_default(&self) -> bool {
        self == &Lifecycle::default()
    }
}

impl Finding {
    /// The nodes it speaks about, its members' included.
    pub fn all_nodes(&self) -> impl Iterator<Item = &String> {
        self.nodes
            .iter()
            .chain(self.members.iter().map(|m| &m.node))
    }

    /// Whether this finding says what `other` said: the same rule about the same subject on a
    /// node they share (one grouped across nodes and one of its nodes alone, either way round),
    /// or `other` folded into it as a facet. An open finding said by another one is not
    /// resolved when it stops being raised on its own: it lives on in the one that says it.
    pub fn says(&self, other: &Finding) -> bool {
        if other.event || self.event {
            return false;
        }
        let shares = |nodes: &[String]| nodes.iter().any(|n| self.all_nodes().any(|m| m == n));
        let other_nodes: Vec<String> = other.all_nodes().cloned().collect();
        let same_subject = self.rule_id == other.rule_id
            && self.entity == other.entity
            && self.metric == other.metric;
        if same_subject && (!self.members.is_empty() || !other.members.is_empty()) {
            return shares(&other_nodes);
        }
        if same_subject {
            return false;
        }
        // Folded in: only when every node it was about is in the facet, so nothing it said
        // about another node is dropped.
        self.facets.iter().any(|facet| {
            facet.rule_id == other.rule_id
                && facet.entity == other.entity
                && facet.metric == other.metric
                && other_nodes.iter().all(|n| facet.nodes.contains(n))
        })
    }

    /// What it says about one of its nodes alone: the same rule and subject on `node`, without
    /// group or members, for rechecking that node and finding what its rule said of it.
    pub fn on_node(&self, node: &str) -> Finding {
        Finding {
            nodes: vec![node.to_string()],
            scope: None,
            members: Vec::new(),
            ..self.clone()
        }
    }

    /// The subjects it speaks about for its own rule: its entity and those of the same rule
    /// told with it (several alike subjects of a node are one finding).
    pub fn subjects(&self) -> std::collections::BTreeSet<&str> {
        std::iter::once(self.entity.as_str())
            .chain(
                self.facets
                    .iter()
                    .filter(|f| f.rule_id == self.rule_id)
                    .map(|f| f.entity.as_str()),
            )
            .collect()
    }

    /// Whether this finding carries on what `other` said for the same rule: a subject and a
    /// node in common (a group and one of its nodes either way round, several subjects told
    /// together and one of them). It takes over `other`'s episode.
    pub fn continues(&self, other: &Finding) -> bool {
        let mine = self.subjects();
        self.rule_id == other.rule_id
            && self.metric == other.metric
            && !self.event
            && !other.event
            && other.subjects().iter().any(|s| mine.contains(s))
            && other.all_nodes().any(|n| self.all_nodes().any(|m| m == n))
    }

    /// The identity a finding keeps across runs: same rule, same nodes, same subject.
    pub fn key(&self) -> String {
        let who = match &self.scope {
            Some(scope) => format!("[{scope}]"),
            None => self.nodes.join(","),
        };
        let mut key = format!("{}|{}|{}|{}", self.rule_id, who, self.entity, self.metric);
        if let Some(id) = &self.event_id {
            key.push('@');
            key.push_str(id);
        }
        key
    }
}
