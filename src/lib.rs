//! patrol: captures snapshots of a fleet of Docker hosts, archives them, diffs them with a
//! deterministic rule library and writes dated improvement reports.
//!
//! Data flows one way (see docs/architecture.md): sources → model → store → history → rules →
//! ledger → report. Only [`app`] wires the layers together.

pub mod error;
pub mod fsutil;
pub mod history;
pub mod markdown;
pub mod model;
pub mod rules;
pub mod store;
pub mod tomlread;
pub mod units;
