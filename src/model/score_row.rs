//! One node's line of the score card, as the newest analysis left it: what the reports' web
//! page shows, kept in the ledger between runs (the digest rewrites the page without a window).

use serde::{Deserialize, Serialize};

/// One node's line of the score card on the index, as of the newest analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    pub node: String,
    /// Out of 100; `None` when the node could not be scored.
    pub score: Option<u32>,
    /// The dimension that lost the most points, or why there is no score.
    pub note: String,
}
