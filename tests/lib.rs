//! Integration tests, compiled as one binary: the rule fixtures, the architecture's dependency
//! direction, the kind registry against its docs and files, the command line driven as a user
//! would, and the demo report.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod arithmetic;
mod blind;
mod botapi;
mod bounded;
mod catalogue;
mod cli;
mod config_paths;
mod contrib;
mod corpus;
mod coverage;
mod demo;
mod digest;
mod fakes;
mod fixtures;
mod grouping;
mod hostile;
mod install;
mod integrity;
mod lifecycle;
mod logs;
mod openlist;
mod overlay;
mod perms;
mod quiet;
mod registry;
mod resolution;
mod rollups;
mod scenario_kinds;
mod score;
mod secrets;
mod shared_archive;
mod site;
mod support;
mod testbed;
mod validation;
mod window;
mod wording;
