//! patrol: captures snapshots of a fleet of Docker hosts, archives them, diffs them with a
//! deterministic rule library and writes dated improvement reports.
//!
//! Data flows one way (see docs/architecture.md): sources → model → store → history → rules →
//! ledger → report, and weekly: store + ledger → digest → telegram. Only [`app`] wires the
//! layers together.

pub mod app;
pub mod binfmt;
pub mod chart;
pub mod cli;
pub mod compare;
pub mod config;
pub mod digest;
pub mod error;
pub mod fnv;
pub mod fsutil;
pub mod history;
pub mod ledger;
pub mod logtemplate;
pub mod markdown;
pub mod model;
pub mod report;
pub mod rules;
pub mod simulate;
pub mod sources;
pub mod store;
pub mod telegram;
pub mod tls;
pub mod tomlread;
pub mod units;
