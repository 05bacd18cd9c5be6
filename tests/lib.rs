//! Integration tests, compiled as one binary: the rule fixtures, the architecture's dependency
//! direction, the command line driven as a user would, and the demo report.

mod architecture;
mod cli;
mod demo;
mod fixtures;
mod support;
