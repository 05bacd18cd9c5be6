//! Plain data shared by every layer: snapshots going in, findings coming out. Serde types only,
//! no I/O and no behaviour beyond small accessors.

pub mod finding;
pub mod impact;
pub mod score_row;
pub mod snapshot;

pub use finding::{Cumulative, EvidenceValue, Facet, Finding, Lifecycle, Member, Severity};
pub use impact::Impact;
pub use score_row::ScoreRow;
pub use snapshot::*;
