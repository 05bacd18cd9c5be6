//! What a finding costs if nobody acts, in classes a reader ranks without thinking: a node
//! patrol cannot see and work or data being lost come before a memory leak heading for its
//! kill, which comes before a service down, a resource filling up, a service running degraded,
//! and configuration hygiene. Severity says how sure and how urgent a rule is; the impact says
//! what is at stake. The weekly digest ranks its top action by both, so an admin page being
//! down does not outrank a week of lost inspection data. A rule declares it (`impact = "data-loss"`); a rule that does not gets its kind's
//! default ([`Impact::of_kind`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Impact {
    Hygiene,
    Degraded,
    Capacity,
    Outage,
    Oom,
    DataLoss,
    NodeDark,
}

impl Impact {
    pub const ALL: [Impact; 7] = [
        Impact::NodeDark,
        Impact::DataLoss,
        Impact::Oom,
        Impact::Outage,
        Impact::Capacity,
        Impact::Degraded,
        Impact::Hygiene,
    ];

    /// The name rules write (`impact = "data-loss"`).
    pub fn name(self) -> &'static str {
        match self {
            Impact::NodeDark => "node-dark",
            Impact::DataLoss => "data-loss",
            Impact::Oom => "oom",
            Impact::Outage => "outage",
            Impact::Capacity => "capacity",
            Impact::Degraded => "degraded",
            Impact::Hygiene => "hygiene",
        }
    }

    pub fn parse(text: &str) -> Option<Impact> {
        Impact::ALL.into_iter().find(|i| i.name() == text)
    }

    /// What is at stake, in words a reason can quote.
    pub fn label(self) -> &'static str {
        match self {
            Impact::NodeDark => "a node patrol cannot see",
            Impact::DataLoss => "work or data being lost",
            Impact::Oom => "memory heading for a kill",
            Impact::Outage => "a service down",
            Impact::Capacity => "a resource filling up",
            Impact::Degraded => "a service running degraded",
            Impact::Hygiene => "configuration or hygiene",
        }
    }

    /// Its weight in the importance score: blind and lossy 5, a leak 4, down or filling 3,
    /// degraded 2, hygiene 1.
    pub fn weight(self) -> u32 {
        match self {
            Impact::NodeDark | Impact::DataLoss => 5,
            Impact::Oom => 4,
            Impact::Outage | Impact::Capacity => 3,
            Impact::Degraded => 2,
            Impact::Hygiene => 1,
        }
    }

    /// The default of a rule kind (`blinds`: the finding leaves patrol blind to its node).
    pub fn of_kind(kind: &str, blinds: bool) -> Impact {
        if blinds {
            return Impact::NodeDark;
        }
        match kind {
            "unreachable" => Impact::NodeDark,
            "silence" | "stall" | "counter-jump" | "sentinel-value" | "missing-key" => {
                Impact::DataLoss
            }
            "growth-rate" => Impact::Oom,
            "projection" | "headroom" => Impact::Capacity,
            "config-missing" | "drift-across-nodes" | "asymmetry" | "cross-node-ratio"
            | "idle-resource" | "score-card" => Impact::Hygiene,
            _ => Impact::Degraded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serde_writes_the_same_names() {
        for i in Impact::ALL {
            assert_eq!(Impact::parse(i.name()), Some(i));
            assert_eq!(
                serde_json::to_string(&i).unwrap(),
                format!("\"{}\"", i.name())
            );
        }
        assert_eq!(Impact::parse("dataloss"), None);
    }

    #[test]
    fn a_blinding_finding_is_a_dark_node_whatever_its_kind() {
        assert_eq!(Impact::of_kind("threshold", true), Impact::NodeDark);
        assert_eq!(Impact::of_kind("threshold", false), Impact::Degraded);
        assert_eq!(Impact::of_kind("sentinel-value", false), Impact::DataLoss);
    }
}
