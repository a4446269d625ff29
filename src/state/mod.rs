//! What mtr remembers between runs, in `.mtr/` at the project root.

mod codec;
mod delta;
mod early_begin;
pub mod journal;
mod read;
mod stat_cache;
mod store;

use std::collections::HashMap;
use std::ops::{Deref, Range};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

pub use early_begin::EarlyBegin;
pub use stat_cache::StatCache;
pub use store::{Store, Update};

use crate::hashing::Digest;

/// Bumped whenever the layout of the state file changes; older files are
/// ignored (with a warning).
pub const STATE_VERSION: u32 = 6;

/// Everything stored: the last success of each task and the stat cache.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub tasks: HashMap<String, TaskRecord>,
    pub files: StatCache,
    /// The checksum of the file it was read from: while the file has it,
    /// a commit merges into this state instead of reading it again.
    pub(crate) checksum: Option<Digest>,
    /// What `.mtr/delta` changed in that file (already applied above).
    pub(crate) delta: delta::Delta,
    /// The size of that file.
    pub(crate) len: usize,
}

/// The last successful run of a task: its fingerprint and what went into
/// it, so `--explain` can name exactly what changed since.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub fingerprint: Digest,
    /// How the fingerprint was hashed, so that a change to a few input
    /// files hashes only their part of it again (see [`crate::fingerprint`]).
    pub tree: crate::fingerprint::Tree,
    /// Seconds since the epoch when the run finished.
    pub finished: u64,
    pub parts: LazyParts,
    /// Declared outputs and their content after the run.
    pub outputs: Vec<(String, Digest)>,
    /// The directories the walk that found the inputs read, when they
    /// alone decide what a walk finds (see [`crate::dir_stamps`]).
    pub listing: Option<Arc<crate::dir_stamps::Listing>>,
}

/// The parts of a fingerprint, each hashed, never in plain text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Parts {
    pub action: Digest,
    pub env: Vec<(String, Digest)>,
    pub vars: Vec<(String, Digest)>,
    pub dir: Digest,
    /// The declared outputs (patterns).
    pub outputs: Digest,
    pub deps: Vec<(String, Digest)>,
    /// Input files: path, content hash, executable bit.
    pub inputs: Vec<(String, Digest, bool)>,
}

/// A record's [`Parts`], whose input list is only decoded from the state
/// file when something looks at it. An up-to-date check compares the
/// fingerprint alone, so a no-op run never builds the 100,000 path strings
/// of a large task's inputs. Dereferences to [`Parts`].
pub struct LazyParts {
    parts: OnceLock<Parts>,
    encoded: Option<Encoded>,
}

struct Encoded {
    /// Everything but `inputs`.
    base: Parts,
    /// The cache the inputs refer to (and whose bytes hold them).
    table: StatCache,
    inputs: Range<usize>,
    /// Inputs whose content changed since `inputs` was encoded.
    changed: Vec<Changed>,
}

/// An input of an encoded record with another digest than its entry in
/// the stat cache has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Changed {
    /// Its position in the record's inputs.
    pub at: usize,
    /// Its entry in the stat cache.
    pub entry: usize,
    pub digest: Digest,
}

impl LazyParts {
    pub(crate) fn encoded(base: Parts, table: StatCache, inputs: Range<usize>) -> LazyParts {
        LazyParts {
            parts: OnceLock::new(),
            encoded: Some(Encoded {
                base,
                table,
                inputs,
                changed: Vec::new(),
            }),
        }
    }

    /// The parts `base` plus the inputs of `of`, still encoded, with the
    /// digests `changed` gives instead (the same files, some with new
    /// content): `None` unless `of` is encoded. A record so made is
    /// stored without encoding its inputs again (see [`delta`]).
    pub fn patched(base: Parts, of: &LazyParts, changed: Vec<Changed>) -> Option<LazyParts> {
        let (table, inputs) = of.raw()?;
        Some(LazyParts {
            parts: OnceLock::new(),
            encoded: Some(Encoded {
                base,
                table: table.clone(),
                inputs,
                changed,
            }),
        })
    }

    /// The encoded inputs, the cache they refer to and what changed since.
    pub(crate) fn patches(&self) -> Option<(&StatCache, Range<usize>, &[Changed])> {
        // Still true once decoded: the decoded parts are these.
        let e = self.encoded.as_ref()?;
        Some((&e.table, e.inputs.clone(), &e.changed))
    }

    /// The parts without needing the inputs decoded.
    pub(crate) fn base(&self) -> &Parts {
        match (&self.encoded, self.parts.get()) {
            (_, Some(p)) => p,
            (Some(e), None) => &e.base,
            (None, None) => self,
        }
    }

    /// How many input files the record has (decoding none of them).
    pub fn input_count(&self) -> usize {
        match self.raw() {
            Some((table, range)) => codec::input_count(&table.bytes()[range]).unwrap_or(0),
            None => self.inputs.len(),
        }
    }

    /// The paths of the input files, in path order; `None` if they cannot
    /// be decoded (a bug: the file passed its checksum).
    pub fn input_paths(&self) -> Option<Vec<Box<str>>> {
        match self.raw() {
            Some((table, range)) => codec::input_paths(&table.bytes()[range], table).ok(),
            None => Some(self.inputs.iter().map(|(p, _, _)| p.as_str().into()).collect()),
        }
    }

    /// The stat cache and, for each input in path order, its entry there
    /// and its executable bit: when every input refers to an entry (see
    /// [`crate::dir_stamps::check`]).
    pub fn cached_inputs(&self) -> Option<(&StatCache, Vec<(usize, bool)>)> {
        let (table, range) = self.raw()?;
        Some((table, codec::cached_inputs(&table.bytes()[range])?))
    }

    /// Calls `f` with each input file (path, digest, executable bit), in
    /// path order, decoding none of them into a [`Parts`].
    pub fn each_input(&self, f: &mut dyn FnMut(&str, &Digest, bool)) {
        match self.raw() {
            // The file passed its checksum: an error is a bug, and only
            // cuts an explanation short.
            Some((table, range)) => drop(codec::each_decoded_input(&table.bytes()[range], table, f)),
            None => self.inputs.iter().for_each(|(p, d, x)| f(p, d, *x)),
        }
    }

    /// The still-encoded inputs and the cache they refer to (whose hashes
    /// are their digests).
    pub(crate) fn raw(&self) -> Option<(&StatCache, Range<usize>)> {
        match self.patches() {
            Some((table, inputs, [])) => Some((table, inputs)),
            _ => None,
        }
    }
}

impl Deref for LazyParts {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        self.parts.get_or_init(|| match &self.encoded {
            Some(e) => {
                let raw = &e.table.bytes()[e.inputs.clone()];
                // The file passed its checksum, so this only fails on a bug;
                // no inputs then just means "its inputs changed".
                let mut inputs = codec::decode_inputs(raw, &e.table).unwrap_or_default();
                for c in &e.changed {
                    if let Some(input) = inputs.get_mut(c.at) {
                        input.1 = c.digest;
                    }
                }
                Parts {
                    inputs,
                    ..e.base.clone()
                }
            }
            None => Parts::default(),
        })
    }
}

impl From<Parts> for LazyParts {
    fn from(p: Parts) -> LazyParts {
        LazyParts {
            parts: OnceLock::from(p),
            encoded: None,
        }
    }
}

impl Default for LazyParts {
    fn default() -> LazyParts {
        Parts::default().into()
    }
}

impl Clone for LazyParts {
    fn clone(&self) -> LazyParts {
        match (&self.encoded, self.parts.get()) {
            (Some(e), parts) => LazyParts {
                parts: parts.cloned().map_or_else(OnceLock::new, OnceLock::from),
                encoded: Some(Encoded {
                    base: e.base.clone(),
                    table: e.table.clone(),
                    inputs: e.inputs.clone(),
                    changed: e.changed.clone(),
                }),
            },
            _ => (**self).clone().into(),
        }
    }
}

impl PartialEq for LazyParts {
    fn eq(&self, other: &LazyParts) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for LazyParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.raw() {
            Some((_, r)) => write!(f, "LazyParts({:?}, {} encoded bytes of inputs)", self.base(), r.len()),
            None => (**self).fmt(f),
        }
    }
}
