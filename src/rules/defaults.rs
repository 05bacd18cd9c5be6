//! The default rule library, built into the binary so `patrol` works from any directory. The
//! same files live in `rules/`, where a `rules/` directory next to the working directory
//! overrides them; a test keeps the two lists in step.

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
