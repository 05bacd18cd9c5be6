//! The one error type. Each error's message is formed where it happens, naming the file, line or
//! endpoint it is about, so `patrol` can say exactly what to fix; `app::main` writes it to stderr
//! as `patrol: <message>` (with the time first when stderr is not a terminal) and exits 2,
//! whatever the variant. Warnings that do not stop a run are logged (tracing) where they arise.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    /// A file with several mistakes: every one is listed.
    #[error("{}", format_many(.path, .problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
    #[error(
        "{path}: snapshot schema version {found} is not supported (this build reads {supported}.x); upgrade patrol"
    )]
    UnsupportedSchema {
        path: PathBuf,
        found: String,
        supported: u32,
    },
    /// The command line or configuration asks for what cannot be: a bad or missing argument, a
    /// time that is not one, a capture or fixture that is not there.
    #[error("{0}")]
    Usage(String),
    /// The work failed while under way, through no fault of what was asked: another run holds
    /// the fleet, a signal handler or runtime would not start, a result could not be encoded.
    #[error("{0}")]
    Runtime(String),
    #[error("{endpoint}: {message}")]
    Source { endpoint: String, message: String },
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
}

/// One mistake in a file, located by line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn format_many(path: &std::path::Path, problems: &[Problem]) -> String {
    let mut out = format!(
        "{} has {} problem{}:",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str(&format!(
            "\n  {}:{}:{}: {}",
            path.display(),
            p.line,
            p.column,
            p.message
        ));
    }
    out
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn bad_file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A PostgreSQL error as a person needs it: the server's own words when it answered, else the
/// whole chain of causes (refused, timed out, authentication…).
pub fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => with_causes(e),
    }
}

/// An error and every cause under it, joined by ": ".
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// Closest candidate within a small edit distance, for "did you mean".
pub fn suggest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

pub fn did_you_mean(name: &str, candidates: &[&str]) -> String {
    match suggest(name, candidates) {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}
