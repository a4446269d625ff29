//! Skipping the directory reads of an up-to-date check.
//!
//! Which files a task's globs match depends on its patterns and on the
//! entries of the directories the walk reads, nothing else. A record keeps
//! the stat of every directory its walk read (a [`Listing`]). Creating,
//! deleting or renaming an entry changes its directory's mtime and ctime,
//! so when the patterns are the same and every one of those directories
//! still has its stat, a walk would find the same files again: the check
//! takes them from the record and only stats each file, as git does for
//! the files in its index. Git's untracked cache and Mercurial's
//! dirstate-v2 skip unchanged directories the same way.
//!
//! Directory timestamps are trusted only where they are kept reliably: on
//! local file systems of known kinds (not NFS, SMB, FUSE, overlayfs or
//! Docker Desktop's file sharing, which then always walk), with every
//! directory read on the root's device, and only for directories that had
//! not changed for [`SETTLED_NS`] when they were read, so that a change in
//! the same timestamp tick cannot leave the stat as it was.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::dirents::{Dir, Kind};
use crate::hashing::Digest;
use crate::inputs::{Entry, Stat, key_path, path_of};
use crate::open_dirs::OpenDirs;
use crate::parallel;
use crate::state::StatCache;
use crate::walk::ReadDir;

/// How long a directory must have been unchanged when it is read for its
/// stat to be trusted (the stat cache's racy window too).
const SETTLED_NS: i64 = 2_000_000_000;

/// From this many files on, they are stat'ed on every CPU.
const PARALLEL_MIN: usize = 4096;

/// The directories a walk read, for the next check to skip reading them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The patterns the walk resolved, hashed.
    pub patterns: Digest,
    /// Each directory read (relative to the root, `""` for the root), in
    /// path order, with its stat just before it was read.
    pub dirs: Vec<(String, Stat)>,
}

fn patterns_digest(patterns: &[String]) -> Digest {
    let mut h = blake3::Hasher::new();
    for p in patterns {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// The listing to record for a walk of `patterns` begun at `began` (ns
/// since the epoch) that read `read`; `None` when those directories' stats
/// could not be trusted to show a change.
pub fn settle(root: &Path, patterns: &[String], read: Option<Vec<ReadDir>>, began: i64) -> Option<Listing> {
    let read = read?;
    let dev = trusted_device(root)?;
    let settled = |s: &Stat| s.mtime_ns.max(s.ctime_ns) + SETTLED_NS < began;
    if read.iter().any(|(_, s, d)| *d != dev || !settled(s)) {
        return None;
    }
    Some(Listing {
        patterns: patterns_digest(patterns),
        dirs: read.into_iter().map(|(rel, s, _)| (rel, s)).collect(),
    })
}

/// The files at `paths` (what the walk recorded with `listing` found, in
/// path order), each stat'ed now, when the patterns and every directory
/// read are as they were then; `None` when anything differs or is gone, or
/// `paths` gives none (the caller walks then).
pub fn files(
    root: &Path,
    patterns: &[String],
    listing: &Listing,
    paths: impl FnOnce() -> Option<Vec<Box<str>>>,
) -> Option<Vec<Entry>> {
    let dev = holds(root, patterns, listing)?;
    let paths = paths()?;
    let root = crate::cwd::short_root(root);
    let check = |part: Vec<Box<str>>| {
        let mut c = Checker::new(root, listing, dev);
        let entries: Option<Vec<Entry>> = part.into_iter().map(|rel| c.entry(rel)).collect();
        entries.map(|e| (e, c.seen))
    };
    let mut paths = paths.into_iter();
    let parts: Vec<Vec<Box<str>>> = parallel::ranges(paths.len(), PARALLEL_MIN / 2)
        .into_iter()
        .map(|r| paths.by_ref().take(r.len()).collect())
        .collect();
    let parts: Vec<(Vec<Entry>, Vec<bool>)> = parallel::map(parts, check).into_iter().collect::<Option<_>>()?;
    let mut entries = Vec::with_capacity(parts.iter().map(|(e, _)| e.len()).sum());
    let mut seen = Vec::new();
    for (part, s) in parts {
        entries.extend(part);
        seen.push(s);
    }
    unseen_unchanged(root, listing, dev, seen).then_some(entries)
}

/// What [`check`] found of a record's input files.
#[derive(Debug)]
pub enum Checked {
    /// Just as the record saw them: its input parts are the ones a full
    /// check would compute.
    Unchanged,
    /// The same files, some with another stat.
    Restated(Restated),
    /// Maybe other files (the listing does not hold): walk.
    Walk,
}

/// A record's input files, some with another stat than their entries.
#[derive(Debug)]
pub struct Restated {
    /// Each input's entry in the stat cache (whose hash is its digest)
    /// and the executable bit the record has for it.
    pub inputs: Vec<(usize, bool)>,
    /// The inputs whose stat or executable bit changed, as they are now.
    pub changed: Vec<(Restat, Entry)>,
}

/// An input of a record whose stat or executable bit changed.
#[derive(Debug, Clone, Copy)]
pub struct Restat {
    /// Its index in the record's inputs.
    pub at: usize,
    /// Its entry in the stat cache.
    pub entry: usize,
    /// The executable bit the record has for it.
    pub exec: bool,
}

/// Checks a record's input files without decoding their paths unless one
/// changed: the listing must hold, and each input (`inputs`: its entry in
/// `table`, which its recorded digest is the hash of, and its executable
/// bit) is unchanged while it has that entry's stat and that bit.
/// `on_change` hears of each input found changed (its entry, its stat
/// now) as soon as it is, from whichever thread found it.
pub fn check(
    root: &Path,
    patterns: &[String],
    listing: &Listing,
    table: &StatCache,
    inputs: Vec<(usize, bool)>,
    on_change: &(dyn Fn(usize, &Stat) + Sync),
) -> Checked {
    let Some(dev) = holds(root, patterns, listing) else {
        return Checked::Walk;
    };
    let root = crate::cwd::short_root(root);
    // The directories each part opened, and the inputs it found changed
    // (index into `inputs`, stat now).
    let check = |first: usize, part: &[(usize, bool)]| {
        let mut c = Checker::new(root, listing, dev);
        let mut cur = table.cursor();
        let mut changed = Vec::new();
        for (k, &(i, exec)) in part.iter().enumerate() {
            let cached = table.record(i)?.stat;
            let (stat, kind) = c.lstat(cur.key(i)?)?;
            if kind == Kind::Dir {
                return None;
            }
            if stat != cached || exec != (kind == Kind::Other && stat.executable()) {
                on_change(i, &stat);
                changed.push((first + k, stat));
            }
        }
        Some((c.seen, changed))
    };
    let parts = parallel::map(parallel::ranges(inputs.len(), PARALLEL_MIN / 2), |r| {
        check(r.start, &inputs[r])
    });
    let parts: Option<Vec<_>> = parts.into_iter().collect();
    let Some((seen, changed)): Option<(Vec<_>, Vec<_>)> = parts.map(|p| p.into_iter().unzip()) else {
        return Checked::Walk;
    };
    if !unseen_unchanged(root, listing, dev, seen) {
        return Checked::Walk;
    }
    let changed: Vec<(usize, Stat)> = changed.into_iter().flatten().collect();
    if changed.is_empty() {
        return Checked::Unchanged;
    }
    restated(root, table, inputs, &changed).map_or(Checked::Walk, Checked::Restated)
}

/// The record's inputs with the entries of those in `changed` (index
/// into `inputs`, stat now).
fn restated(root: &Path, table: &StatCache, inputs: Vec<(usize, bool)>, changed: &[(usize, Stat)]) -> Option<Restated> {
    let mut cur = table.cursor();
    let mut now = Vec::with_capacity(changed.len());
    for &(at, stat) in changed {
        let (entry, exec) = inputs[at];
        let rel: Box<str> = cur.key(entry)?.into();
        now.push((Restat { at, entry, exec }, entry_of(root, rel, stat)?));
    }
    Some(Restated { inputs, changed: now })
}

/// The input at `rel` with `stat`, its target read if it is a symlink.
fn entry_of(root: &Path, rel: Box<str>, stat: Stat) -> Option<Entry> {
    let link = match Kind::of_mode(stat.mode) {
        Kind::Symlink => Some(std::fs::read_link(path_of(root, &rel)).ok()?.into_boxed_path()),
        _ => None,
    };
    Some(Entry { rel, stat, link })
}

impl Restated {
    /// Every input as it is now: the changed ones as found, the others
    /// with their cached stat (`None` if one cannot be read back).
    pub fn entries(&self, root: &Path, table: &StatCache) -> Option<Vec<Entry>> {
        let root = crate::cwd::short_root(root);
        let mut changed = self.changed.iter().peekable();
        let mut cur = table.cursor();
        let mut out = Vec::with_capacity(self.inputs.len());
        for (k, &(i, _)) in self.inputs.iter().enumerate() {
            match changed.next_if(|(c, _)| c.at == k) {
                Some((_, e)) => out.push(e.clone()),
                None => out.push(entry_of(root, cur.key(i)?.into(), table.record(i)?.stat)?),
            }
        }
        Some(out)
    }
}

/// The root's device if `listing` was made for `patterns` and directory
/// stats can be trusted there.
fn holds(root: &Path, patterns: &[String], listing: &Listing) -> Option<u64> {
    (listing.patterns == patterns_digest(patterns)).then(|| trusted_device(root))?
}

/// Whether the listed directories no checker opened (they hold no input,
/// only subdirectories or nothing), `seen` being what each one opened,
/// are unchanged too.
fn unseen_unchanged(root: &Path, listing: &Listing, dev: u64, seen: Vec<Vec<bool>>) -> bool {
    let mut all = vec![false; listing.dirs.len()];
    for s in seen {
        all.iter_mut().zip(s).for_each(|(a, b)| *a |= b);
    }
    listing
        .dirs
        .iter()
        .zip(all)
        .filter(|(_, s)| !s)
        .all(|((rel, stat), _)| open_unchanged(root, rel, stat, dev).is_some())
}

/// The listed directory `rel`, opened, if it still has its stat `was` and
/// is on the device `dev`.
fn open_unchanged(root: &Path, rel: &str, was: &Stat, dev: u64) -> Option<Dir> {
    let dir = Dir::open(&path_of(root, rel)).ok()?;
    (dir.stat().ok()? == (*was, dev)).then_some(dir)
}

/// Stats the files of one run of paths, checking each listed directory
/// it opens on the way.
struct Checker<'a> {
    root: &'a Path,
    dirs: &'a [(String, Stat)],
    dev: u64,
    /// Which of `dirs` were opened and found unchanged.
    seen: Vec<bool>,
    /// The directories of the files, each open if it is one the walk read.
    open: OpenDirs<Option<Dir>>,
}

impl<'a> Checker<'a> {
    fn new(root: &'a Path, listing: &'a Listing, dev: u64) -> Checker<'a> {
        Checker {
            root,
            dirs: &listing.dirs,
            dev,
            seen: vec![false; listing.dirs.len()],
            open: OpenDirs::new(),
        }
    }

    fn entry(&mut self, rel: Box<str>) -> Option<Entry> {
        let (stat, link) = match self.lstat(&rel)? {
            (_, Kind::Dir) => return None,
            (stat, Kind::Symlink) => (stat, Some(std::fs::read_link(path_of(self.root, &rel)).ok()?)),
            (stat, Kind::Other) => (stat, None),
        };
        Some(Entry {
            rel,
            stat,
            link: link.map(PathBuf::into_boxed_path),
        })
    }

    /// The stat and kind of the file at `rel`, relative to its directory
    /// (opened only if the walk read it, and then only if unchanged);
    /// `None` if it is gone or its directory changed.
    fn lstat(&mut self, rel: &str) -> Option<(Stat, Kind)> {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let (root, dirs, dev, seen) = (self.root, self.dirs, self.dev, &mut self.seen);
        let dir = self.open.enter(parent, || {
            match dirs.binary_search_by(|(d, _)| d.as_str().cmp(parent)) {
                Ok(i) => {
                    let dir = open_unchanged(root, parent, &dirs[i].1, dev)?;
                    seen[i] = true;
                    Some(Some(dir))
                }
                // A literal input outside every directory read.
                Err(_) => Some(None),
            }
        })?;
        match dir {
            Some(dir) => dir.lstat(key_path(name).as_os_str()).ok(),
            None => {
                let m = std::fs::symlink_metadata(path_of(root, rel)).ok()?;
                let kind = match m.file_type() {
                    t if t.is_dir() => Kind::Dir,
                    t if t.is_symlink() => Kind::Symlink,
                    _ => Kind::Other,
                };
                Some((Stat::of(&m), kind))
            }
        }
    }
}

/// The device of `root` if directory timestamps there can be trusted,
/// looked up once per process.
fn trusted_device(root: &Path) -> Option<u64> {
    static FIRST: OnceLock<(PathBuf, Option<u64>)> = OnceLock::new();
    let (path, dev) = FIRST.get_or_init(|| (root.to_path_buf(), device_if_trusted(root)));
    if path == root { *dev } else { device_if_trusted(root) }
}

/// Local file systems that update a directory's mtime and ctime whenever
/// an entry is created, removed or renamed: ext2/3/4, xfs, btrfs, tmpfs,
/// f2fs, zfs (`statfs` magic numbers).
#[cfg(any(target_os = "linux", target_os = "android"))]
const LOCAL: [u64; 6] = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0xF2F5_2010, 0x2FC1_2FC1];

#[cfg(any(target_os = "linux", target_os = "android"))]
// The magic's type differs between C libraries.
#[allow(clippy::unnecessary_cast)]
fn device_if_trusted(root: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let kind = nix::sys::statfs::statfs(root).ok()?.filesystem_type().0 as u64 & 0xFFFF_FFFF;
    if !LOCAL.contains(&kind) {
        return None;
    }
    std::fs::metadata(root).ok().map(|m| m.dev())
}

/// APFS and HFS+, the Mac's own disks (not SMB, NFS or FUSE mounts).
#[cfg(target_os = "macos")]
fn device_if_trusted(root: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let fs = nix::sys::statfs::statfs(root).ok()?;
    if !["apfs", "hfs"].contains(&fs.filesystem_type_name()) {
        return None;
    }
    std::fs::metadata(root).ok().map(|m| m.dev())
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
fn device_if_trusted(_root: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::resolve;

    const PATTERNS: [&str; 3] = ["src/**", "*.cfg", "!src/skip/**"];

    fn patterns() -> Vec<String> {
        PATTERNS.map(String::from).to_vec()
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn project() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for rel in [
            "main.cfg",
            "src/a.txt",
            "src/sub/b.txt",
            "src/skip/s.txt",
            "src/deep/er/c.txt",
        ] {
            write(t.path(), rel, rel);
        }
        std::fs::create_dir(t.path().join("src/empty")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("a.txt", t.path().join("src/link")).unwrap();
        t
    }

    /// A walk of `pats`, and its listing as if it had begun `later` ns
    /// from now.
    fn walk(root: &Path, pats: &[String], later: i64) -> (Vec<Entry>, Option<Listing>) {
        let mut res = resolve(root, pats, false).unwrap();
        let listing = settle(root, pats, res.read.take(), crate::hashing::now_ns() + later);
        (res.files, listing)
    }

    /// A walk whose directories count as settled, and its listing; `None`
    /// (checked) where directory stats are not trusted.
    fn settled(root: &Path, pats: &[String]) -> Option<(Vec<Entry>, Listing)> {
        match walk(root, pats, 3 * SETTLED_NS) {
            (found, Some(listing)) => Some((found, listing)),
            (_, None) => {
                assert!(trusted_device(root).is_none());
                None
            }
        }
    }

    fn paths(found: &[Entry]) -> Option<Vec<Box<str>>> {
        Some(found.iter().map(|e| e.rel.clone()).collect())
    }

    fn again(root: &Path, pats: &[String], listing: &Listing, found: &[Entry]) -> Option<Vec<Entry>> {
        files(root, pats, listing, || paths(found))
    }

    fn same(a: &[Entry], b: &[Entry]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(a, b)| (&a.rel, a.stat, &a.link) == (&b.rel, b.stat, &b.link))
    }

    #[test]
    fn an_unchanged_walk_is_taken_from_its_listing() {
        let t = project();
        let Some((found, listing)) = settled(t.path(), &patterns()) else {
            return;
        };
        let read: Vec<&str> = listing.dirs.iter().map(|(d, _)| d.as_str()).collect();
        // The root (for `*.cfg`) and `src` with every directory below it
        // but the excluded one.
        assert_eq!(read, ["", "src", "src/deep", "src/deep/er", "src/empty", "src/sub"]);
        let taken = again(t.path(), &patterns(), &listing, &found).expect("taken from the listing");
        assert!(same(&taken, &found), "{taken:?}\n{found:?}");
        // An edit changes no directory: the file's new stat is there.
        write(t.path(), "src/sub/b.txt", "edited, longer");
        let edited = again(t.path(), &patterns(), &listing, &found).expect("taken from the listing");
        let b = edited.iter().find(|e| &*e.rel == "src/sub/b.txt").unwrap();
        assert_eq!(b.stat.size, 14);
    }

    #[test]
    fn any_change_to_a_directory_read_is_seen() {
        type Change = fn(&Path);
        let changes: [(&str, Change); 8] = [
            ("file added", |r| write(r, "src/sub/new.txt", "")),
            ("file added at the root", |r| write(r, "new.cfg", "")),
            ("file deleted", |r| {
                std::fs::remove_file(r.join("src/deep/er/c.txt")).unwrap()
            }),
            ("file renamed", |r| {
                std::fs::rename(r.join("src/a.txt"), r.join("src/z.txt")).unwrap()
            }),
            ("directory added", |r| {
                std::fs::create_dir(r.join("src/empty/d")).unwrap()
            }),
            ("empty directory removed", |r| {
                std::fs::remove_dir(r.join("src/empty")).unwrap()
            }),
            ("file replaced by a directory", |r| {
                std::fs::remove_file(r.join("src/a.txt")).unwrap();
                std::fs::create_dir(r.join("src/a.txt")).unwrap();
            }),
            ("directory's mode changed", |r| {
                #[cfg(unix)]
                set_mode(&r.join("src/deep"), 0o700);
                #[cfg(not(unix))]
                write(r, "src/deep/new.txt", "");
            }),
        ];
        for (what, change) in changes {
            let t = project();
            let Some((found, listing)) = settled(t.path(), &patterns()) else {
                return;
            };
            change(t.path());
            assert!(
                again(t.path(), &patterns(), &listing, &found).is_none(),
                "{what}: not seen"
            );
        }
    }

    #[test]
    fn a_change_inside_excluded_or_unread_directories_does_not_matter() {
        let t = project();
        let Some((found, listing)) = settled(t.path(), &patterns()) else {
            return;
        };
        write(t.path(), "src/skip/more.txt", "");
        let taken = again(t.path(), &patterns(), &listing, &found).expect("taken from the listing");
        assert!(same(&taken, &found));
    }

    #[test]
    fn other_patterns_a_missing_file_or_no_paths_walk_again() {
        let t = project();
        let Some((found, listing)) = settled(t.path(), &patterns()) else {
            return;
        };
        assert!(again(t.path(), &["src/**".to_string()], &listing, &found).is_none());
        let mut more = paths(&found).unwrap();
        more.push("src/sub/gone.txt".into());
        assert!(files(t.path(), &patterns(), &listing, || Some(more)).is_none());
        assert!(files(t.path(), &patterns(), &listing, || None).is_none());
    }

    #[test]
    fn recently_changed_directories_or_a_missing_base_give_no_listing() {
        let t = project();
        // Just created: a change in the same tick could hide.
        assert_eq!(walk(t.path(), &patterns(), 0).1, None);
        let missing_base = ["gen/**".to_string()];
        let res = resolve(t.path(), &missing_base, false).unwrap();
        assert!(res.read.is_none(), "the root decides whether `gen` appears");
        assert_eq!(walk(t.path(), &missing_base, 3 * SETTLED_NS).1, None);
    }

    #[test]
    fn many_files_are_checked_on_every_cpu_in_path_order() {
        let t = tempfile::tempdir().unwrap();
        for d in 0..20 {
            for f in 0..(PARALLEL_MIN / 20 + 5) {
                write(t.path(), &format!("src/d{d:02}/f{f:04}"), "");
            }
        }
        let pats = vec!["src/**".to_string()];
        let Some((found, listing)) = settled(t.path(), &pats) else {
            return;
        };
        assert!(found.len() >= PARALLEL_MIN);
        let taken = again(t.path(), &pats, &listing, &found).unwrap();
        assert!(same(&taken, &found));
        let (table, inputs) = cached(&found);
        let checked = check(t.path(), &pats, &listing, &table, inputs.clone(), &|_, _| {});
        assert!(matches!(checked, Checked::Unchanged), "{checked:?}");
        // The last file, on the last thread, edited in place: heard of
        // as it is found.
        write(t.path(), &found.last().unwrap().rel, "edited");
        let heard = std::sync::Mutex::new(Vec::new());
        let checked = check(t.path(), &pats, &listing, &table, inputs.clone(), &|entry, stat| {
            heard.lock().unwrap().push((entry, stat.size))
        });
        assert_eq!(heard.into_inner().unwrap(), [(inputs.last().unwrap().0, 6)]);
        restated_as_walked(t.path(), &pats, &table, checked);
        write(t.path(), "src/d19/late", "");
        assert!(again(t.path(), &pats, &listing, &found).is_none());
    }

    /// The stat cache and cached inputs of a record of `found`.
    fn cached(found: &[Entry]) -> (StatCache, Vec<(usize, bool)>) {
        let entry = |e: &Entry| crate::hashing::FileEntry {
            stat: e.stat,
            hash: [0; 32],
        };
        let table = StatCache::from_entries(found.iter().map(|e| (e.rel.to_string(), entry(e))));
        let exec = |e: &Entry| e.link.is_none() && e.stat.executable();
        (table, found.iter().map(exec).enumerate().collect())
    }

    /// `checked` is the files a walk finds now, with their stats.
    fn restated_as_walked(root: &Path, pats: &[String], table: &StatCache, checked: Checked) {
        let Checked::Restated(r) = checked else {
            panic!("not restated: {checked:?}");
        };
        let entries = r.entries(root, table).unwrap();
        let walked = resolve(root, pats, false).unwrap().files;
        assert!(same(&entries, &walked), "{entries:?}\n{walked:?}");
    }

    #[test]
    fn a_record_is_unchanged_only_while_every_input_has_its_cached_stat() {
        let pats = patterns();
        let t = project();
        let Some((found, listing)) = settled(t.path(), &pats) else {
            return;
        };
        let (table, inputs) = cached(&found);
        let checked = check(t.path(), &pats, &listing, &table, inputs.clone(), &|_, _| {});
        assert!(matches!(checked, Checked::Unchanged), "{checked:?}");
        let mut flipped = inputs.clone();
        flipped[0].1 = !flipped[0].1;
        restated_as_walked(
            t.path(),
            &pats,
            &table,
            check(t.path(), &pats, &listing, &table, flipped.clone(), &|_, _| {}),
        );
        let other = check(
            t.path(),
            &["src/**".into()],
            &listing,
            &table,
            inputs.clone(),
            &|_, _| {},
        );
        assert!(matches!(other, Checked::Walk), "other patterns: {other:?}");
        type Change = fn(&Path);
        let restated: [(&str, Change); 3] = [
            ("edited", |r| write(r, "src/sub/b.txt", "edited")),
            ("touched", |r| {
                let f = std::fs::File::options().write(true).open(r.join("src/a.txt")).unwrap();
                f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
            }),
            ("made executable", |r| {
                #[cfg(unix)]
                set_mode(&r.join("main.cfg"), 0o755);
                #[cfg(not(unix))]
                write(r, "main.cfg", "edited");
            }),
        ];
        let walk: [(&str, Change); 2] = [
            ("a file added", |r| write(r, "src/deep/new.txt", "")),
            ("an empty directory removed", |r| {
                std::fs::remove_dir(r.join("src/empty")).unwrap()
            }),
        ];
        for (n, (what, change)) in restated.iter().chain(&walk).enumerate() {
            let t = project();
            let (found, listing) = settled(t.path(), &pats).unwrap();
            let (table, inputs) = cached(&found);
            change(t.path());
            let checked = check(t.path(), &pats, &listing, &table, inputs.clone(), &|_, _| {});
            if n < restated.len() {
                restated_as_walked(t.path(), &pats, &table, checked);
            } else {
                assert!(matches!(checked, Checked::Walk), "{what}: {checked:?}");
            }
        }
    }
}
