//! The directory walk behind [`crate::inputs::resolve`]: every directory
//! read once, on up to [`MAX_THREADS`] threads, files stat'ed relative to
//! their directory, and the result produced already in path order.
//!
//! Why it looks like this (profiled on a 100,000-file tree, see
//! `docs/benchmarks.md`): two thirds of a no-op run went into `lstat` of
//! full paths, where the kernel resolves every path component again.
//! `DirEntry::metadata` is `statx(dirfd, name)`, one component. The walk
//! starts on the calling thread and only brings in helpers once the tree
//! turns out to be big, so a small project pays no thread start-up.
//! Entries come out sorted without sorting all of them: each directory
//! sorts its own children (a subdirectory sorting as `name/`, which is where
//! its paths sort) and the directories are stitched together depth-first.

use std::cmp::Ordering;
use std::path::Path;
use std::sync::{Condvar, Mutex, OnceLock};

use globset::GlobSet;

use crate::dirents::{self, Kind};
use crate::hashing::FileEntry;
use crate::inputs::{Entry, InputError, Stat};

/// More threads than this do not make `statx` faster (the dentry cache is
/// shared).
const MAX_THREADS: usize = 8;

/// Entries seen on one thread before helpers are started.
pub(crate) const SPAWN_AFTER: usize = 1500;

/// How many walks brought in helper threads (tests check they ran).
#[cfg(test)]
pub(crate) static HELPERS_STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What decides whether a walked file is an input.
pub struct Rules<'a> {
    pub includes: &'a GlobSet,
    pub excludes: &'a GlobSet,
    /// Directories not entered at all (`!dir/**`).
    pub prune: &'a GlobSet,
    /// Directories whose every file is included (`dir/**`, a literal dir).
    pub all_under: &'a [String],
    /// Hashes each file (not symlink) as soon as it is found, on the
    /// walking thread: on a cold run the hashing then overlaps the walk.
    pub hash: Option<&'a HashFn<'a>>,
}

/// Hashes a file the walk found, opened with the [`Opener`] it is given
/// (`None`: it could not; see [`Rules::hash`]).
pub type HashFn<'a> = dyn Fn(&Entry, Opener) -> Option<FileEntry> + Sync + 'a;

/// Opens a file the walk found, relative to its open directory.
pub type Opener<'a> = &'a dyn Fn() -> std::io::Result<std::fs::File>;

/// The files found, in path order; with [`Rules::hash`] what it gave for
/// each (else empty); and the directories read, in path order.
pub type Found = (Vec<Entry>, Vec<Option<FileEntry>>, Vec<ReadDir>);

/// A directory the walk read: its path (as in [`Top::rel`]), its stat
/// taken just before its entries were read, and its device.
pub type ReadDir = (String, Stat, u64);

/// One directory to walk.
#[derive(Debug)]
pub struct Top {
    /// Relative to the root, `/`-separated, `""` for the root itself.
    pub rel: String,
    /// Every file below is included (only excludes apply).
    pub all: bool,
    /// The directory, if the caller opened it already.
    pub(crate) dir: Option<dirents::Dir>,
}

/// Walks `tops` (directories under `root`, sorted, none inside another)
/// and returns the files they hold that `rules` select, together with
/// `extra` (sorted files found otherwise), in path order when no extra
/// file lies inside a top.
pub fn walk(root: &Path, tops: Vec<Top>, rules: &Rules, extra: Vec<Entry>) -> Result<Found, InputError> {
    let n_tops = tops.len();
    let top_rels: Vec<String> = tops.iter().map(|t| t.rel.clone()).collect();
    let queue: Vec<Job> = tops
        .into_iter()
        .enumerate()
        .rev()
        .map(|(slot, t)| Job {
            rel: t.rel,
            all: t.all,
            slot,
            dir: t.dir,
        })
        .collect();
    let walker = Walker {
        root,
        rules,
        shared: Mutex::new(Shared {
            pending: queue.len(),
            queue,
            next_slot: n_tops,
            failed: None,
            waiting: 0,
        }),
        wake: Condvar::new(),
    };
    let pools: Vec<Pool> = std::thread::scope(|s| {
        let mut helpers = Vec::new();
        let mut mine = Pool::default();
        walker.work(&mut mine, &mut |seen, queued| {
            // Asked only now: finding out the CPU count reads cgroup files.
            // Hashing makes every file worth sharing out.
            let spawn_after = if rules.hash.is_some() { 16 } else { SPAWN_AFTER };
            if helpers.is_empty() && seen >= spawn_after && queued > 0 && parallelism() > 1 {
                #[cfg(test)]
                HELPERS_STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                for _ in 1..parallelism().min(MAX_THREADS) {
                    helpers.push(s.spawn(|| {
                        let mut theirs = Pool::default();
                        walker.work(&mut theirs, &mut |_, _| {});
                        theirs
                    }));
                }
            }
        });
        let mut pools = vec![mine];
        for h in helpers {
            // A helper that panicked lost its directories: treat it as an
            // internal error rather than returning fewer files.
            match h.join() {
                Ok(theirs) => pools.push(theirs),
                Err(_) => walker.fail(InputError::Io {
                    path: ".".into(),
                    source: std::io::Error::other("the directory walk failed"),
                }),
            }
        }
        pools
    });
    let shared = walker.shared.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = shared.failed {
        return Err(e);
    }
    // Stitch the directories together, depth first, moving each entry
    // out of its thread's pool once.
    let total: usize = pools.iter().map(|p| p.entries.len()).sum();
    let mut by_slot: Vec<Option<(usize, Dir)>> = Vec::new();
    by_slot.resize_with(shared.next_slot, || None);
    let hashing = rules.hash.is_some();
    let mut entries = Vec::with_capacity(pools.len());
    let mut hashes = Vec::with_capacity(pools.len());
    let mut read = Vec::new();
    for (k, mut pool) in pools.into_iter().enumerate() {
        for (slot, d) in pool.dirs {
            by_slot[slot] = Some((k, d));
        }
        entries.push(pool.entries);
        hashes.push(pool.hashes);
        read.append(&mut pool.read);
    }
    read.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = Stitched {
        entries: Vec::with_capacity(total + extra.len()),
        hashes: Vec::with_capacity(if hashing { total + extra.len() } else { 0 }),
        hashing,
    };
    let mut extra = extra.into_iter().peekable();
    for (slot, top) in top_rels.iter().enumerate() {
        while let Some(f) = extra.next_if(|f| top.is_empty() || cmp_file_dir(&f.rel, top) == Ordering::Less) {
            out.push(f, None);
        }
        stitch(&mut by_slot, &mut entries, &mut hashes, slot, &mut out);
    }
    for f in extra {
        out.push(f, None);
    }
    Ok((out.entries, out.hashes, read))
}

/// The walk's result as it is put together.
struct Stitched {
    entries: Vec<Entry>,
    hashes: Vec<Option<FileEntry>>,
    hashing: bool,
}

impl Stitched {
    fn push(&mut self, e: Entry, hash: Option<FileEntry>) {
        self.entries.push(e);
        if self.hashing {
            self.hashes.push(hash);
        }
    }
}

/// The number of CPUs to use, looked up once: `available_parallelism`
/// reads cgroup files on every call (40% of a no-op over 1,000 tasks
/// when each task asked again).
pub(crate) fn parallelism() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

fn stitch(
    dirs: &mut [Option<(usize, Dir)>],
    pools: &mut [Vec<Entry>],
    hashes: &mut [Vec<Option<FileEntry>>],
    slot: usize,
    out: &mut Stitched,
) {
    let Some((k, d)) = dirs[slot].take() else { return };
    let mut next = d.start;
    let end = d.start + d.len;
    let hash = |hashes: &mut [Vec<Option<FileEntry>>], i: usize| hashes[k].get_mut(i).and_then(Option::take);
    for (rel, sub) in &d.dirs {
        while next < end && cmp_file_dir(&pools[k][next].rel, rel) == Ordering::Less {
            let h = hash(hashes, next);
            out.push(take(&mut pools[k][next]), h);
            next += 1;
        }
        stitch(dirs, pools, hashes, *sub, out);
    }
    for (i, e) in pools[k][next..end].iter_mut().enumerate() {
        let h = hash(hashes, next + i);
        out.push(take(e), h);
    }
}

/// Moves an entry out of a pool, leaving one that owns no memory.
fn take(e: &mut Entry) -> Entry {
    std::mem::replace(
        e,
        Entry {
            rel: Box::default(),
            stat: Stat::default(),
            link: None,
        },
    )
}

/// Orders file `a` against everything under directory `d` (as `d/`).
fn cmp_file_dir(a: &str, d: &str) -> Ordering {
    a.bytes().cmp(d.bytes().chain(std::iter::once(b'/')))
}

struct Job {
    rel: String,
    all: bool,
    slot: usize,
    /// Already open (a top its caller opened).
    dir: Option<dirents::Dir>,
}

/// What one thread found: every file it stat'ed, in one vector (a small
/// vector per directory would leave ~9 MB of freed heap behind at 100,000
/// files), and per directory where its files are and its subdirectories.
#[derive(Default)]
struct Pool {
    entries: Vec<Entry>,
    /// With [`Rules::hash`], one per entry.
    hashes: Vec<Option<FileEntry>>,
    dirs: Vec<(usize, Dir)>,
    read: Vec<ReadDir>,
}

/// One directory: its files are `entries[start..start + len]` of its
/// thread's pool, sorted; its subdirectories (by slot) sorted.
struct Dir {
    start: usize,
    len: usize,
    dirs: Vec<(String, usize)>,
}

struct Shared {
    queue: Vec<Job>,
    /// Directories queued or being read.
    pending: usize,
    next_slot: usize,
    failed: Option<InputError>,
    /// Threads asleep on `wake`: with none, finishing a directory makes no
    /// `futex` call (one per directory otherwise).
    waiting: usize,
}

struct Walker<'a> {
    root: &'a Path,
    rules: &'a Rules<'a>,
    shared: Mutex<Shared>,
    wake: Condvar,
}

impl Walker<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, e: InputError) {
        let mut s = self.lock();
        if s.failed.is_none() {
            s.failed = Some(e);
        }
        s.pending -= s.queue.len();
        s.queue.clear();
        self.wake.notify_all();
    }

    /// Takes directories off the queue until none are left anywhere;
    /// `progress(entries seen, directories queued)` runs after each one.
    fn work(&self, out: &mut Pool, progress: &mut dyn FnMut(usize, usize)) {
        let mut seen = 0;
        let mut subdirs: Vec<(String, bool)> = Vec::new();
        loop {
            let job = {
                let mut s = self.lock();
                loop {
                    if let Some(job) = s.queue.pop() {
                        break Some(job);
                    }
                    if s.pending == 0 {
                        break None;
                    }
                    s.waiting += 1;
                    s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
                    s.waiting -= 1;
                }
            };
            let Some(mut job) = job else { return };
            subdirs.clear();
            let start = out.entries.len();
            let result = self.read(&mut job, &mut out.entries, &mut subdirs, &mut out.read);
            if let (Some(hash), Ok(dir)) = (self.rules.hash, &result) {
                let new = &out.entries[start..];
                out.hashes.extend(new.iter().map(|e| {
                    let path = crate::inputs::key_path(&e.rel);
                    let name = path.file_name().unwrap_or_default();
                    e.link.is_none().then(|| hash(e, &|| dir.open_file(name))).flatten()
                }));
            }
            let result = result.map(drop);
            seen += out.entries.len() - start + subdirs.len();
            let mut dir = Dir {
                start,
                len: out.entries.len() - start,
                dirs: Vec::with_capacity(subdirs.len()),
            };
            let queued = {
                let mut s = self.lock();
                match result {
                    Ok(()) if s.failed.is_none() => {
                        for (rel, all) in subdirs.drain(..).rev() {
                            let slot = s.next_slot;
                            s.next_slot += 1;
                            dir.dirs.push((rel.clone(), slot));
                            s.queue.push(Job {
                                rel,
                                all,
                                slot,
                                dir: None,
                            });
                            s.pending += 1;
                        }
                        dir.dirs.reverse();
                    }
                    Ok(()) => {}
                    Err(e) => {
                        if s.failed.is_none() {
                            s.failed = Some(e);
                        }
                        s.pending -= s.queue.len();
                        s.queue.clear();
                    }
                }
                s.pending -= 1;
                if s.waiting > 0 {
                    self.wake.notify_all();
                }
                s.queue.len()
            };
            out.dirs.push((job.slot, dir));
            progress(seen, queued);
        }
    }

    /// Reads one directory: files appended to `files` (sorted among
    /// themselves), directories to enter into `subdirs` (sorted), the
    /// directory itself to `read`; gives the directory, still open.
    fn read(
        &self,
        job: &mut Job,
        files: &mut Vec<Entry>,
        subdirs: &mut Vec<(String, bool)>,
        read: &mut Vec<ReadDir>,
    ) -> Result<dirents::Dir, InputError> {
        let start = files.len();
        let rules = self.rules;
        let path = crate::inputs::path_of(self.root, &job.rel);
        let io = |p: &Path, e| crate::inputs::io_err(self.root, p, e);
        let dir = match job.dir.take() {
            Some(dir) => dir,
            None => dirents::Dir::open(&path).map_err(|e| io(&path, e))?,
        };
        // Before the entries: a change after this shows in a later stat.
        let (stat, dev) = dir.stat().map_err(|e| io(&path, e))?;
        read.push((job.rel.clone(), stat, dev));
        let no_excludes = rules.excludes.is_empty();
        // Relative to the open directory: no full path lookup. `None`: it
        // was deleted since the directory was read, so it is not there.
        let lstat = |name: &std::ffi::OsStr| match dir.lstat(name) {
            Ok(found) => Ok(Some(found)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path.join(name), e)),
        };
        dir.each(
            |name, listed| {
                if name == ".git" || (job.rel.is_empty() && name == ".mtr") {
                    return Ok(());
                }
                // The listing's kind, or lstat's when it does not say.
                let mut stat = None;
                let kind = match listed {
                    Some(kind) => kind,
                    None => {
                        let Some((s, kind)) = lstat(name)? else { return Ok(()) };
                        stat = Some(s);
                        kind
                    }
                };
                let key = crate::inputs::name_key(name);
                let sep = usize::from(!job.rel.is_empty());
                let mut rel = String::with_capacity(job.rel.len() + sep + key.len());
                if sep == 1 {
                    rel.push_str(&job.rel);
                    rel.push('/');
                }
                rel.push_str(&key);
                if kind == Kind::Dir {
                    if rules.prune.is_empty() || !rules.prune.is_match(rel.as_str()) {
                        let all = job.all || rules.all_under.contains(&rel);
                        subdirs.push((rel, all));
                    }
                    return Ok(());
                }
                let included = job.all || rules.includes.is_match(rel.as_str());
                if !included || (!no_excludes && rules.excludes.is_match(rel.as_str())) {
                    return Ok(());
                }
                let (stat, kind) = match stat {
                    Some(s) => (s, kind),
                    None => match lstat(name)? {
                        Some(found) => found,
                        None => return Ok(()),
                    },
                };
                let link = match kind {
                    Kind::Symlink => Some(dir.read_link(name).map_err(|e| io(&path.join(name), e))?.into()),
                    _ => None,
                };
                files.push(Entry {
                    // Sized exactly above: no reallocation.
                    rel: rel.into_boxed_str(),
                    stat,
                    link,
                });
                Ok(())
            },
            |e| io(&path, e),
        )?;
        files[start..].sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
        subdirs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_sort_where_their_paths_do() {
        assert_eq!(cmp_file_dir("a.txt", "a"), Ordering::Less);
        assert_eq!(cmp_file_dir("a0", "a"), Ordering::Greater);
        assert_eq!(cmp_file_dir("a", "a"), Ordering::Less);
        assert!("a.txt" < "a/b" && "a/b" < "a0");
    }
}
