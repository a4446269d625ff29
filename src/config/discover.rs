//! Finding `montage.toml`: `-f FILE`, else upward from `-C DIR` or the cwd.

use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "montage.toml";

/// The config file to load, or `None` when no directory up to `/` has one.
pub fn find(file: Option<&Path>, start: &Path) -> Option<PathBuf> {
    if let Some(file) = file {
        return Some(start.join(file));
    }
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}
