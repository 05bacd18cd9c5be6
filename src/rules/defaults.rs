//! The default rule library, built into the binary so `patrol` works from any directory. The
//! same files live in `rules/`; a fleet's own rules are an overlay on these (see `load.rs`); a
//! test keeps the two lists in step.

use std::path::PathBuf;

/// How a built-in file is named in messages and `rules list` (`(built-in) rules/host.toml`).
pub const PREFIX: &str = "(built-in) ";

/// The built-in files as (path, text), in the order they are loaded.
pub fn sources() -> Vec<(PathBuf, String)> {
    FILES
        .iter()
        .map(|(name, text)| {
            (
                PathBuf::from(format!("{PREFIX}rules/{name}")),
                text.to_string(),
            )
        })
        .collect()
}

pub const FILES: &[(&str, &str)] = &[
    (
        "containers.toml",
        include_str!("../../rules/containers.toml"),
    ),
    ("fleet.toml", include_str!("../../rules/fleet.toml")),
    ("gpu.toml", include_str!("../../rules/gpu.toml")),
    ("host.toml", include_str!("../../rules/host.toml")),
    ("logs.toml", include_str!("../../rules/logs.toml")),
    ("memory.toml", include_str!("../../rules/memory.toml")),
    (
        "site-visionking.toml",
        include_str!("../../rules/site-visionking.toml"),
    ),
    ("states.toml", include_str!("../../rules/states.toml")),
];
