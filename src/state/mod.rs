//! What mtr remembers between runs, in `.mtr/` at the project root.

mod store;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use store::{Store, Update};

use crate::hashing::{Digest, FileEntry};

/// Bumped whenever the layout of [`State`] changes; older files are ignored.
pub const STATE_VERSION: u32 = 1;

/// Everything stored: the last success of each task and the stat cache.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    pub tasks: HashMap<String, TaskRecord>,
    pub files: HashMap<String, FileEntry>,
}

/// The last successful run of a task: its fingerprint and what went into
/// it, so `--explain` can name exactly what changed since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub fingerprint: Digest,
    /// Seconds since the epoch when the run finished.
    pub finished: u64,
    pub parts: Parts,
    /// Declared outputs and their content after the run.
    pub outputs: Vec<(String, Digest)>,
}

/// The parts of a fingerprint, each hashed, never in plain text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Parts {
    pub action: Digest,
    pub env: Vec<(String, Digest)>,
    pub vars: Vec<(String, Digest)>,
    pub dir: Digest,
    pub deps: Vec<(String, Digest)>,
    /// Input files: path, content hash, executable bit.
    pub inputs: Vec<(String, Digest, bool)>,
}
