//! Content hashes of input and output files, reusing the stat cache.
//!
//! A file whose size, mtime, ctime, inode and mode match its cached entry is
//! not read again (as git's index does). An entry keeps the file's stat only
//! when its timestamps are safely older than the moment it was hashed, so an
//! edit in the same timestamp tick as the hash is never missed ("racy git");
//! a fresher one keeps a stat no file has, and is read again next time.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::inputs::{Entry, InputError, Stat};
use crate::state::StatCache;

pub type Digest = [u8; 32];

/// A cached content hash and the stat it was taken under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub stat: Stat,
    pub hash: Digest,
}

impl FileEntry {
    /// The entry of a hash too fresh to trust by its stat: it keeps a stat
    /// no file has, so records can still refer to it (and be checked
    /// without a walk) while the file is read again next time.
    pub fn untrusted(hash: Digest) -> FileEntry {
        FileEntry {
            stat: Stat::default(),
            hash,
        }
    }

    /// Whether its stat vouches for its hash (see [`FileEntry::untrusted`]).
    pub fn trusted(&self) -> bool {
        self.stat != Stat::default()
    }
}

/// Content hashes in the order of the entries, and new cache entries.
pub type Hashed = (Vec<Digest>, Vec<(String, FileEntry)>);

/// Timestamps within this window of the hash time are not trusted.
const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// Below this many files to read, hashing stays on one thread.
const PARALLEL_MIN: usize = 16;

/// Below this many bytes to read, hashing stays on one thread.
const PARALLEL_MIN_BYTES: u64 = 1 << 20;

/// From this many entries on, the stat comparison is split over threads.
const PARALLEL_CHECK: usize = 16 * 1024;

/// Read size: large enough for blake3's widest SIMD path.
const BUF: usize = 64 * 1024;

/// Hashes of `entries` (same order), and new cache entries to remember.
///
/// Entries in path order (as `inputs::resolve` returns them) are looked up
/// in the cache by one forward pass.
pub fn hash_entries(root: &Path, entries: &[Entry], cache: &StatCache) -> Result<Hashed, InputError> {
    hash_entries_found(root, entries, cache, &[])
}

/// Like [`hash_entries`], taking the entries `found` already hashed (by
/// [`hash_file`] during the walk: one per entry, else empty) as they are.
pub fn hash_entries_found(
    root: &Path,
    entries: &[Entry],
    cache: &StatCache,
    found: &[Option<FileEntry>],
) -> Result<Hashed, InputError> {
    let mut hashes = vec![[0u8; 32]; entries.len()];
    let mut results: Vec<(usize, Result<FileEntry, InputError>)> = Vec::new();
    if found.len() == entries.len() && !entries.is_empty() {
        let mut misses = Vec::new();
        for (i, (e, f)) in entries.iter().zip(found).enumerate() {
            match (&e.link, f) {
                (Some(link), _) => hashes[i] = link_hash(link),
                (None, Some(f)) => results.push((i, Ok(*f))),
                (None, None) => misses.push(i),
            }
        }
        results.extend(read_all(root, entries, &misses));
        return finish(entries, hashes, results);
    }
    // Comparing stats is cheap, but 100,000 of them are worth two threads.
    let size = crate::parallel::ranges(entries.len(), PARALLEL_CHECK / 2)[0]
        .len()
        .max(1);
    let parts: Vec<_> = hashes.chunks_mut(size).enumerate().collect();
    let misses = crate::parallel::map(parts, |(k, out)| {
        check(&entries[k * size..][..out.len()], cache, out, k * size)
    });
    let misses = misses.concat();
    let results = read_all(root, entries, &misses);
    finish(entries, hashes, results)
}

/// Reads and hashes `entries[i]` for each `i` of `misses`, on every core
/// when there is enough to read.
fn read_all(root: &Path, entries: &[Entry], misses: &[usize]) -> Vec<(usize, Result<FileEntry, InputError>)> {
    if misses.is_empty() {
        return Vec::new();
    }
    let bytes: u64 = misses.iter().map(|&i| entries[i].stat.size).sum();
    let root = crate::cwd::short_root(root);
    let threads = if misses.len() >= PARALLEL_MIN || bytes >= PARALLEL_MIN_BYTES {
        crate::walk::parallelism().min(misses.len())
    } else {
        1
    };
    if threads > 1 {
        // Files are handed out one at a time, so one big file does not
        // leave the other threads idle.
        let next = AtomicUsize::new(0);
        let work = || {
            let mut buf = vec![0u8; BUF];
            let mut done = Vec::new();
            loop {
                let k = next.fetch_add(1, AtomicOrdering::Relaxed);
                let Some(&i) = misses.get(k) else { break done };
                done.push((i, hash_one(root, &entries[i], &mut buf)));
            }
        };
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mut all = work();
            for h in helpers {
                match h.join() {
                    Ok(done) => all.extend(done),
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
            all
        })
    } else {
        let mut buf = vec![0u8; BUF];
        misses
            .iter()
            .map(|&i| (i, hash_one(root, &entries[i], &mut buf)))
            .collect()
    }
}

/// `hashes` completed with `results`, and the new cache entries; the
/// first failing file in path order is the error, whichever thread saw it.
fn finish(
    entries: &[Entry],
    mut hashes: Vec<Digest>,
    mut results: Vec<(usize, Result<FileEntry, InputError>)>,
) -> Result<Hashed, InputError> {
    results.sort_unstable_by_key(|(i, _)| *i);
    let now = now_ns();
    let mut fresh = Vec::new();
    for (i, r) in results {
        let entry = r?;
        hashes[i] = entry.hash;
        let entry = match cacheable(&entry.stat, now) {
            true => entry,
            false => FileEntry::untrusted(entry.hash),
        };
        fresh.push((entries[i].rel.to_string(), entry));
    }
    Ok((hashes, fresh))
}

/// Hashes the files the walk finds ([`crate::inputs::resolve_hashing`]),
/// opening each relative to its open directory, with a read buffer per
/// thread; `None` for a file that cannot be read (it is then read again,
/// and the error reported, by [`hash_entries_found`]).
pub fn file_hasher() -> impl Fn(&Entry, crate::walk::Opener) -> Option<FileEntry> + Sync {
    thread_local! {
        static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; BUF]);
    }
    move |e, open| READ_BUF.with_borrow_mut(|buf| hash_opened(open, e, buf).ok())
}

/// Fills `out` (for `entries`, which start at index `base`) from the cache;
/// returns the indexes to read.
fn check(entries: &[Entry], cache: &StatCache, out: &mut [Digest], base: usize) -> Vec<usize> {
    let mut misses = Vec::new();
    let mut cursor = cache.cursor();
    for (i, (e, out)) in entries.iter().zip(out).enumerate() {
        if let Some(link) = &e.link {
            *out = link_hash(link);
            continue;
        }
        match cursor.seek(e.rel.as_bytes()).and_then(|c| cache.record(c)) {
            Some(c) if c.stat == e.stat => *out = c.hash,
            _ => misses.push(base + i),
        }
    }
    misses
}

/// Whether a hash taken at `now` may be trusted for as long as the stat
/// stays the same: not when the file changed (content or inode, so mtime
/// or ctime) so recently that another change in the same timestamp tick
/// would leave the stat as it is ("racy git").
fn cacheable(stat: &Stat, now: i64) -> bool {
    stat.mtime_ns.max(stat.ctime_ns) + RACY_WINDOW_NS < now
}

/// Now, in nanoseconds since the epoch (as file timestamps are).
pub(crate) fn now_ns() -> i64 {
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
/// hash always matches the content under the stat it is stored with. Both
/// stats are taken on the open file: if the path is replaced meanwhile, the
/// pair still describes the file that was read (and the next walk sees
/// another inode).
fn hash_one(root: &Path, e: &Entry, buf: &mut [u8]) -> Result<FileEntry, InputError> {
    let path = root.join(crate::inputs::key_path(&e.rel));
    hash_opened(&|| std::fs::File::open(&path), e, buf).map_err(|source| InputError::Io {
        path: crate::inputs::display_key(&e.rel).into_owned(),
        source,
    })
}

/// Hashes the file `open` opens (again on each attempt) as the content of
/// `e`, and gives the stat it had throughout the read.
fn hash_opened(
    open: &dyn Fn() -> std::io::Result<std::fs::File>,
    e: &Entry,
    buf: &mut [u8],
) -> std::io::Result<FileEntry> {
    for attempt in 0..3 {
        let mut file = open()?;
        // First trust the stat the entry was found with (one `fstat` less
        // per file): the same stat after the read still proves the file
        // was not replaced or changed meanwhile. On a retry it is stale.
        let before = match attempt {
            0 => e.stat,
            _ => Stat::of(&file.metadata()?),
        };
        let mut h = blake3::Hasher::new();
        // Read as many bytes as the stat says, not until a read returns 0:
        // one `read` less per file. A file that grows or shrinks meanwhile
        // has another size (and ctime) afterwards and is read again.
        let mut left = before.size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match file.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            left -= n as u64;
        }
        let after = Stat::of(&file.metadata()?);
        if before == after && left == 0 {
            return Ok(FileEntry {
                stat: after,
                hash: *h.finalize().as_bytes(),
            });
        }
    }
    Err(std::io::Error::other("it kept changing while it was being hashed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::resolve;

    fn entries(root: &Path, patterns: &[&str]) -> Vec<Entry> {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        resolve(root, &patterns, false).unwrap().files
    }

    #[test]
    fn hashes_content_on_any_number_of_threads() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..200 {
            // Some empty, some bigger than the read buffer.
            let body = format!("file {i}\n").repeat(i * i);
            std::fs::write(dir.path().join(format!("f{i:03}")), body).unwrap();
        }
        let es = entries(dir.path(), &["*"]);
        let (hashes, fresh) = hash_entries(dir.path(), &es, &StatCache::default()).unwrap();
        for (e, h) in es.iter().zip(&hashes) {
            let want = blake3::hash(&std::fs::read(dir.path().join(&*e.rel)).unwrap());
            assert_eq!(h, want.as_bytes(), "{}", e.rel);
        }
        // Just written: inside the racy window, so cached with a stat that
        // matches no file.
        assert_eq!(fresh.len(), es.len());
        assert!(fresh.iter().all(|(_, e)| e.stat == Stat::default()));
    }

    #[test]
    fn a_cache_hit_is_not_read_and_a_changed_stat_is() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "one").unwrap();
        let es = entries(dir.path(), &["a"]);
        let cached = StatCache::from_entries([(
            "a".to_string(),
            FileEntry {
                stat: es[0].stat,
                hash: [9; 32],
            },
        )]);
        // Same stat: the cached hash, without reading the file.
        assert_eq!(hash_entries(dir.path(), &es, &cached).unwrap().0, [[9; 32]]);
        // Same size, mtime put back, new content: ctime (and the stat)
        // still differ, so it is read again.
        let old_mtime = std::fs::metadata(dir.path().join("a")).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("a"), "two").unwrap();
        let f = std::fs::File::options().write(true).open(dir.path().join("a")).unwrap();
        f.set_modified(old_mtime).unwrap();
        drop(f);
        let es2 = entries(dir.path(), &["a"]);
        assert_eq!(es2[0].stat.size, es[0].stat.size);
        assert_eq!(es2[0].stat.mtime_ns, es[0].stat.mtime_ns);
        let (hashes, _) = hash_entries(dir.path(), &es2, &cached).unwrap();
        assert_eq!(hashes[0], *blake3::hash(b"two").as_bytes());
    }

    /// The stat a file was found with stands in for the one before the
    /// read; when it is stale the file is read again with a fresh one,
    /// and the hash and stat given are the file's now.
    #[test]
    fn a_file_changed_since_it_was_found_is_hashed_as_it_is_now() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "one").unwrap();
        let es = entries(dir.path(), &["a"]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("a"), "three").unwrap();
        let mut buf = vec![0; 16];
        let got = hash_one(dir.path(), &es[0], &mut buf).unwrap();
        assert_eq!(got.hash, *blake3::hash(b"three").as_bytes());
        assert_eq!(got.stat, entries(dir.path(), &["a"])[0].stat);
        assert_ne!(got.stat, es[0].stat);
        // Unchanged since found: the same stat, the same content.
        let es = entries(dir.path(), &["a"]);
        let got = hash_one(dir.path(), &es[0], &mut buf).unwrap();
        assert_eq!((got.hash, got.stat), (*blake3::hash(b"three").as_bytes(), es[0].stat));
    }

    #[test]
    fn only_hashes_outside_the_racy_window_are_cached() {
        let s = |m: i64, c: i64| Stat {
            mtime_ns: m,
            ctime_ns: c,
            ..Stat::default()
        };
        let sec = 1_000_000_000;
        let now = 1_700_000_000 * sec;
        assert!(cacheable(&s(now - 10 * sec, now - 10 * sec), now));
        assert!(!cacheable(&s(now - sec, now - 10 * sec), now));
        // An mtime put back into the past does not hide a recent change.
        assert!(!cacheable(&s(now - 10 * sec, now - sec), now));
        assert!(!cacheable(&s(now, now), now));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_hash_their_target_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t1"), "same").unwrap();
        std::fs::write(dir.path().join("t2"), "same").unwrap();
        std::os::unix::fs::symlink("t1", dir.path().join("l1")).unwrap();
        std::os::unix::fs::symlink("t1", dir.path().join("l1b")).unwrap();
        std::os::unix::fs::symlink("t2", dir.path().join("l2")).unwrap();
        let es = entries(dir.path(), &["l*"]);
        let (h, _) = hash_entries(dir.path(), &es, &StatCache::default()).unwrap();
        assert_eq!(h[0], h[1]);
        assert_ne!(h[0], h[2]);
        assert_ne!(h[0], *blake3::hash(b"same").as_bytes());
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gone"), "x").unwrap();
        let es = entries(dir.path(), &["gone"]);
        std::fs::remove_file(dir.path().join("gone")).unwrap();
        let err = hash_entries(dir.path(), &es, &StatCache::default()).unwrap_err();
        assert!(err.to_string().contains("`gone`"), "{err}");
    }
}
