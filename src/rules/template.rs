//! Title and recommendation templates of rule instances (minijinja), checked when the library
//! loads so that a typo in a variable name is a load error with a line, not a broken report.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};

use crate::markdown;

pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("code", |s: String| markdown::code_span(&s));
    env.add_filter("md", |s: String| markdown::escape_inline(&s));
    env
}

/// Variables every finding offers, whatever its kind.
pub const COMMON_VARIABLES: &[&str] = &[
    "rule",
    "node",
    "nodes",
    "entity",
    "name",
    "subject",
    "metric",
    "metric_label",
    "severity",
];

pub fn render(
    env: &Environment<'static>,
    source: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, String> {
    env.render_str(source, vars)
        .map(|s| s.trim().to_string())
        .map_err(|e| describe(&e))
}

fn describe(e: &minijinja::Error) -> String {
    crate::error::with_causes(e)
}

/// Renders `source` with placeholder values for every variable the kind promises, so undefined
/// names and syntax errors surface at load time.
pub fn check(
    env: &Environment<'static>,
    source: &str,
    kind_variables: &[&str],
) -> Result<(), String> {
    let vars: BTreeMap<String, String> = COMMON_VARIABLES
        .iter()
        .chain(crate::rules::advice::FACT_VARIABLES.iter())
        .chain(kind_variables.iter())
        .map(|v| (v.to_string(), format!("<{v}>")))
        .collect();
    render(env, source, &vars).map(|_| ())
}
