//! Helpers: the repository root, and running the real `patrol` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn patrol(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PATROL_LOG")
        .output()
        .expect("the patrol binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether expected files should be rewritten instead of compared.
pub fn blessing() -> bool {
    std::env::var_os("PATROL_BLESS").is_some()
}
