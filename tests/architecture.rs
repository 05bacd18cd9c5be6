//! The dependency direction of docs/architecture.md, enforced: each module may use only the
//! modules listed for it. A new `use crate::x` that breaks the table fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::root;

const ALLOWED: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("units", &[]),
    ("fnv", &[]),
    ("binfmt", &[]),
    ("markdown", &[]),
    ("logtemplate", &[]),
    ("model", &[]),
    ("fsutil", &["error"]),
    ("tomlread", &["error"]),
    ("tls", &[]),
    ("chart", &["markdown"]),
    ("store", &["error", "fnv", "fsutil", "model", "tls"]),
    ("history", &["binfmt", "model", "units", "markdown"]),
    (
        "rules",
        &[
            "error", "fsutil", "history", "ledger", "markdown", "model", "tomlread", "units",
        ],
    ),
    ("ledger", &["error", "fsutil", "model", "tomlread", "units"]),
    (
        "report",
        &[
            "error", "fnv", "fsutil", "ledger", "markdown", "model", "units",
        ],
    ),
    (
        "simulate",
        &[
            "error",
            "fnv",
            "fsutil",
            "logtemplate",
            "model",
            "tomlread",
            "units",
        ],
    ),
    (
        "sources",
        &[
            "config",
            "error",
            "fsutil",
            "logtemplate",
            "model",
            "tls",
            "units",
        ],
    ),
    (
        "config",
        &[
            "error", "fsutil", "model", "store", "tls", "tomlread", "units",
        ],
    ),
    (
        "digest",
        &[
            "binfmt", "chart", "error", "fnv", "fsutil", "history", "ledger", "markdown", "model",
            "rules", "store", "telegram", "units",
        ],
    ),
    ("telegram", &["error", "fsutil", "tls"]),
    ("compare", &["markdown", "model", "units"]),
    ("cli", &["units"]),
    ("app", &["*"]),
];

fn module_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            module_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_only_use_what_the_architecture_allows() {
    let src = root().join("src");
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    let mut files = Vec::new();
    module_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(ok) = allowed.get(module.as_str()) else {
            violations.push(format!(
                "{}: module `{module}` is not in the table",
                rel.display()
            ));
            continue;
        };
        if ok.contains("*") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(pos) = rest.find("crate::") {
                let after = &rest[pos + 7..];
                let names: Vec<String> = match after.strip_prefix('{') {
                    // `use crate::{a, b::c}`: every top-level name in the braces.
                    Some(group) => group
                        .split(['}', ','])
                        .map(|n| n.trim().split("::").next().unwrap_or("").to_string())
                        .filter(|n| !n.is_empty())
                        .collect(),
                    None => vec![
                        after
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect(),
                    ],
                };
                for used in names {
                    if !used.is_empty() && used != module && !ok.contains(used.as_str()) {
                        violations.push(format!(
                            "{}:{}: `{module}` uses `{used}`",
                            rel.display(),
                            i + 1
                        ));
                    }
                }
                rest = after;
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependency direction broken:\n{}",
        violations.join("\n")
    );
}

/// reqwest built with its own defaults needs a process-wide crypto provider (without one it
/// panics) and trusts other roots than patrol's: every client goes through `tls::http_client`.
#[test]
fn every_http_client_is_built_by_the_tls_module() {
    let mut files = Vec::new();
    module_files(&root().join("src"), &mut files);
    let mut offenders = Vec::new();
    for file in files {
        if file.ends_with("src/tls.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.contains("Client::new()")
                || (line.contains(".build()") && line.contains("reqwest"))
                || line.contains("ClientBuilder::new()")
            {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}
