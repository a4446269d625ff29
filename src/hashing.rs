//! Content hashes of input and output files, reusing the stat cache.
//!
//! A file whose size, mtime, ctime, inode and mode match its cached entry is
//! not read again (as git's index does). An entry is only cached when the
//! file's timestamps are safely older than the moment it was hashed, so an
//! edit in the same timestamp tick as the hash is never missed ("racy git").

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::inputs::{Entry, InputError, Stat};

pub type Digest = [u8; 32];

/// A cached content hash and the stat it was taken under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub stat: Stat,
    pub hash: Digest,
}

/// Timestamps within this window of the hash time are not trusted.
const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// Below this many files to read, hashing stays on one thread.
const PARALLEL_MIN: usize = 64;

/// Hashes of `entries` (same order), and new cache entries to remember.
pub fn hash_entries(
    root: &Path,
    entries: &[Entry],
    cache: &HashMap<String, FileEntry>,
) -> Result<(Vec<Digest>, Vec<(String, FileEntry)>), InputError> {
    let mut hashes = vec![[0u8; 32]; entries.len()];
    let mut misses: Vec<usize> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(link) = &e.link {
            hashes[i] = link_hash(link);
        } else {
            match cache.get(&e.rel) {
                Some(c) if c.stat == e.stat => hashes[i] = c.hash,
                _ => misses.push(i),
            }
        }
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let results: Vec<Result<(usize, FileEntry), InputError>> = if misses.len() >= PARALLEL_MIN && threads > 1 {
        let chunk = misses.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = misses
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|&i| hash_one(root, &entries[i]).map(|f| (i, f)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        })
    } else {
        misses
            .iter()
            .map(|&i| hash_one(root, &entries[i]).map(|f| (i, f)))
            .collect()
    };
    let now = now_ns();
    let mut fresh = Vec::new();
    for r in results {
        let (i, entry) = r?;
        hashes[i] = entry.hash;
        if entry.stat.mtime_ns.max(entry.stat.ctime_ns) + RACY_WINDOW_NS < now {
            fresh.push((entries[i].rel.clone(), entry));
        }
    }
    Ok((hashes, fresh))
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn link_hash(target: &Path) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(b"symlink\0");
    h.update(target.as_os_str().as_encoded_bytes());
    *h.finalize().as_bytes()
}

/// Reads and hashes one file; retries if it changes while being read, so a
/// hash always matches the content under the stat it is stored with.
fn hash_one(root: &Path, e: &Entry) -> Result<FileEntry, InputError> {
    let path = root.join(&e.rel);
    let io = |source| InputError::Io {
        path: e.rel.clone(),
        source,
    };
    for _ in 0..3 {
        let mut file = std::fs::File::open(&path).map_err(io)?;
        let before = Stat::of(&file.metadata().map_err(io)?);
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let after = Stat::of(&std::fs::symlink_metadata(&path).map_err(io)?);
        if before == after {
            return Ok(FileEntry {
                stat: after,
                hash: *h.finalize().as_bytes(),
            });
        }
    }
    Err(InputError::Io {
        path: e.rel.clone(),
        source: std::io::Error::other("it kept changing while it was being hashed"),
    })
}
