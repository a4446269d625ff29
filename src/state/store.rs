//! The `.mtr/state` file: atomic writes, a lock around read-modify-write,
//! and a corrupt or foreign file treated as empty (with a warning).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::delta::{self, Delta, Inputs, Rec};
use super::journal::{self, Journal};
use super::stat_cache::TableWriter;
use super::{StatCache, State, TaskRecord, codec, read};
use crate::atomic_file;
use crate::dir_stamps::Listing;
use crate::hashing::{Digest, FileEntry};
use crate::inputs::Stat;

/// Changes one run makes to the state, merged into whatever is on disk.
#[derive(Debug, Default, Clone)]
pub struct Update {
    pub set: HashMap<String, TaskRecord>,
    pub remove: HashSet<String>,
    /// New stat-cache entries; for a path listed twice the last wins.
    pub files: Vec<(String, FileEntry)>,
    /// New listings for records kept as they are, each only for the
    /// record with the fingerprint given.
    pub listings: HashMap<String, (Digest, Arc<Listing>)>,
}

impl Update {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty() && self.files.is_empty() && self.listings.is_empty()
    }
}

/// The `.mtr/` directory of one project.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    /// The tasks this process started and has not recorded yet.
    journal: Arc<Journal>,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        let dir = root.join(".mtr");
        Store {
            journal: Arc::new(Journal::new(dir.clone())),
            dir,
        }
    }

    /// Notes that `task` is about to run, before it can change anything:
    /// if this process dies before its commit, the task's old record is
    /// dropped, so it runs again (see [`super::journal`]). Best effort: a
    /// `.mtr/` that cannot be written is reported by the commit.
    pub fn begin(&self, task: &str) {
        // `.mtr/` usually exists (the state was read from it): made only
        // when the journal cannot be created for want of it.
        let begun = self.journal.begin(task);
        if begun.is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) && self.ensure_dir().is_ok() {
            let _ = self.journal.begin(task);
        }
    }

    /// Takes back [`begin`](Self::begin) for a task that did not start.
    pub fn withdraw(&self, task: &str) {
        self.journal.withdraw(task);
    }

    /// Announces tasks that will run whatever their records say (`-B`):
    /// they are journaled together with the first task that begins, not
    /// with one sync each (see [`Journal::expect`]).
    pub fn expect(&self, tasks: impl IntoIterator<Item = String>) {
        self.journal.expect(tasks);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The size of the state file in bytes (0 when there is none).
    pub fn size(&self) -> u64 {
        std::fs::metadata(self.path()).map_or(0, |m| m.len())
    }

    /// Loads the state; a missing file is empty, a bad one is empty plus a
    /// warning to show. Only the task records' heads are decoded here; the
    /// stat cache is read in place and inputs lists when first used.
    pub fn load(&self) -> (State, Option<String>) {
        let (bytes, body) = match read::read_hashed(&self.path(), codec::HEADER) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (State::default(), None),
            Err(e) => {
                return (
                    State::default(),
                    Some(format!("cannot read `.mtr/state` ({e}); every task will run")),
                );
            }
        };
        let delta = match self.read_delta(&bytes) {
            Ok(delta) => delta,
            Err(why) => {
                return (
                    State::default(),
                    Some(format!(
                        "`.mtr/delta` {why}; ignoring the state, so every task will run"
                    )),
                );
            }
        };
        match codec::decode(bytes, &body, delta) {
            Ok(mut state) => {
                // Tasks a dead process started and never recorded.
                for dead in journal::dead(&self.dir, &self.names()) {
                    for task in &dead.tasks {
                        state.tasks.remove(task);
                    }
                }
                (state, None)
            }
            Err(why) => (
                State::default(),
                Some(format!("`.mtr/state` {why}; ignoring it, so every task will run")),
            ),
        }
    }

    /// When the state was last committed, in ns since the epoch: the
    /// newest mtime of `state` and `delta` (`i64::MAX` when neither is
    /// there). A file changed after that changed after its hash was
    /// recorded.
    pub fn committed_ns(&self) -> i64 {
        [self.path(), self.delta_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| Stat::of(&m).mtime_ns)
            .max()
            .unwrap_or(i64::MAX)
    }

    fn delta_path(&self) -> PathBuf {
        self.dir.join("delta")
    }

    /// The delta made for the state file whose bytes are `state`: empty
    /// when there is none, or one made for another state (stale).
    fn read_delta(&self, state: &[u8]) -> Result<Delta, String> {
        let bytes = self.delta_bytes().map_err(|e| format!("cannot be read ({e})"))?;
        let ours = state
            .get(..codec::HEADER)
            .and_then(|h| h.try_into().ok())
            .map(codec::checksum);
        Ok(match Delta::last(&bytes)? {
            Some((base, delta, _)) if Some(base) == ours => delta,
            _ => Delta::default(),
        })
    }

    /// The delta log as it is: the checksum of its last whole frame, where
    /// that frame ends and how long the file is; `None` if it is not a
    /// delta log.
    fn delta_log(&self) -> Option<(Option<Digest>, usize, usize)> {
        let bytes = self.delta_bytes().ok()?;
        Some(match delta::Frame::last(&bytes).ok()? {
            Some(frame) => (Some(frame.checksum), frame.end, bytes.len()),
            None => (None, 0, bytes.len()),
        })
    }

    /// The delta log's bytes (none when there is no log).
    fn delta_bytes(&self) -> std::io::Result<Vec<u8>> {
        match std::fs::read(self.delta_path()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            read => read,
        }
    }

    /// Appends `frame` to the delta log whose whole frames end at `valid`
    /// (a torn one after them is cut off), or replaces the log with it
    /// once the log is long.
    fn append_delta(&self, frame: &[u8], valid: usize, len: usize) -> std::io::Result<()> {
        if valid + frame.len() > delta::MAX_LOG {
            return atomic_file::write(&self.delta_path(), &[frame]);
        }
        let mut log = OpenOptions::new().append(true).create(true).open(self.delta_path())?;
        if len != valid {
            log.set_len(valid as u64)?;
        }
        log.write_all(frame)
    }

    /// Merges `update` into the state on disk under an exclusive lock, so
    /// concurrent `mtr` processes never lose each other's records.
    ///
    /// A task this process began (see [`begin`](Self::begin)) that the
    /// update does not record as a success loses its old record too.
    /// `loaded` is the state this process read: merged into unless the
    /// file changed since (it is then read again).
    pub fn commit(&self, loaded: &State, mut update: Update) -> std::io::Result<()> {
        let unrecorded: Vec<String> = self
            .journal
            .begun()
            .into_iter()
            .filter(|t| !update.set.contains_key(t) && !update.remove.contains(t))
            .collect();
        update.remove.extend(unrecorded);
        // Entries the cache already has as they are (a file read again
        // while still too fresh to trust by its stat) change nothing.
        if update.files.len() <= MAX_PATCHES {
            update.files.retain(|(path, e)| loaded.files.get(path) != Some(*e));
        }
        if update.is_empty() {
            self.journal.clear();
            return Ok(());
        }
        let open_lock = || {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.dir.join("lock"))
        };
        let lock = match open_lock() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.ensure_dir()?;
                open_lock()?
            }
            lock => lock?,
        };
        lock.lock()?;
        let names = self.names();
        let dead = journal::dead(&self.dir, &names);
        self.remove_stale_temp_files(&names);
        let on_disk = self.checksum();
        let log = self.delta_log();
        let as_loaded = on_disk.is_some()
            && on_disk == loaded.checksum
            && log.is_some_and(|(checksum, _, _)| checksum == loaded.delta.checksum);
        let gone: HashSet<&String> = dead.iter().flat_map(|d| &d.tasks).collect();
        if let (true, Some((_, valid, len))) = (as_loaded, log)
            && let Some(frame) = as_delta(loaded, &update, &gone)
        {
            let result = self.append_delta(&frame, valid, len);
            self.committed(&result, dead);
            let _ = lock.unlock();
            return result;
        }
        let state = match as_loaded {
            true => {
                // Tasks of a process that died since it was read go too.
                let kept = |name: &&String| {
                    !update.set.contains_key(*name) && !update.remove.contains(*name) && !gone.contains(name)
                };
                State {
                    // Records the update replaces are not copied.
                    tasks: loaded
                        .tasks
                        .iter()
                        .filter(|(n, _)| kept(n))
                        .map(|(n, r)| (n.clone(), r.clone()))
                        .collect(),
                    files: loaded.files.clone(),
                    ..State::default()
                }
            }
            false => self.load().0,
        };
        let encoded = merge(state, update);
        // Puts back a `.gitignore` someone removed.
        self.ensure_dir()?;
        let result = self.write_atomic(&[&encoded.head, &encoded.tasks]);
        if result.is_ok() {
            // Folded into the state just written (and stale now anyway).
            let _ = std::fs::remove_file(self.delta_path());
        }
        self.committed(&result, dead);
        let _ = lock.unlock();
        result
    }

    /// After a commit: once it is written, the journals of dead processes
    /// (their tasks' records are gone from it) and this process's own.
    fn committed(&self, result: &std::io::Result<()>, dead: Vec<journal::Dead>) {
        if result.is_ok() {
            for d in dead {
                let _ = std::fs::remove_file(d.path);
            }
            self.journal.clear();
        }
    }

    /// The checksum in the state file's header, read alone.
    fn checksum(&self) -> Option<Digest> {
        let mut head = [0u8; codec::HEADER];
        File::open(self.path()).ok()?.read_exact(&mut head).ok()?;
        Some(codec::checksum(&head))
    }

    /// Temporary state files of processes killed while writing one (only
    /// the holder of the lock writes one, so none is in use now).
    fn remove_stale_temp_files(&self, names: &[String]) {
        let temp = |n: &&String| {
            ["state", "delta", "config"]
                .iter()
                .any(|of| atomic_file::is_temp_of(n, of))
        };
        for name in names.iter().filter(temp) {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }

    /// The names in `.mtr/` (those that are UTF-8: mtr's own are).
    fn names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    fn ensure_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let ignore = self.dir.join(".gitignore");
        if !ignore.exists() {
            // Written whole or not at all: a `.gitignore` cut short by a
            // crash would stay, without its `*`.
            atomic_file::write(
                &ignore,
                &[b"# written by mtr: its state is local to this checkout\n*\n"],
            )?;
        }
        Ok(())
    }

    fn write_atomic(&self, parts: &[&[u8]]) -> std::io::Result<()> {
        // No fsync: a state torn by a power cut fails its checksum and
        // reads as empty (every task runs again). It never claims more
        // than what ran; an fsync of a 10 MB state costs 0.2-0.5 s here,
        // more than the rest of a one-file change.
        atomic_file::write(&self.path(), parts)
    }
}

/// The frame of `loaded`'s delta plus `update` and the records of `gone`
/// tasks removed, when that is cheap to write: `None` when a record of the update has
/// inputs to encode again (not the same files as its last record), a stat
/// cache entry is for a file the cache does not have, an entry gets
/// another hash while a record the update does not set refers to it, or
/// the delta would grow past a quarter of the state.
fn as_delta(loaded: &State, update: &Update, gone: &HashSet<&String>) -> Option<Vec<u8>> {
    let base = loaded.checksum?;
    let table = &loaded.files;
    if update.files.len() > MAX_PATCHES {
        return None;
    }
    let mut delta = loaded.delta.clone();
    for name in update.remove.iter().chain(gone.iter().copied()) {
        delta.remove(name);
    }
    let mut set: Vec<(&String, TaskRecord)> = update.set.iter().map(|(n, r)| (n, r.clone())).collect();
    for (name, (fingerprint, listing)) in &update.listings {
        match set.iter_mut().find(|(n, _)| *n == name) {
            Some((_, rec)) if rec.fingerprint == *fingerprint => rec.listing = Some(listing.clone()),
            Some(_) => {}
            None => {
                if let Some(rec) = loaded.tasks.get(name).filter(|r| r.fingerprint == *fingerprint)
                    && !delta.removed.contains(name)
                {
                    set.push((
                        name,
                        TaskRecord {
                            listing: Some(listing.clone()),
                            ..rec.clone()
                        },
                    ));
                }
            }
        }
    }
    let mut patches: BTreeMap<usize, FileEntry> = BTreeMap::new();
    for (path, e) in &update.files {
        patches.insert(table.cursor().seek(path.as_bytes())?, *e);
    }
    for (name, rec) in &set {
        let (t, range, changed) = rec.parts.patches()?;
        if !Arc::ptr_eq(t.bytes(), table.bytes()) {
            return None;
        }
        for c in changed {
            match patches.get(&c.entry) {
                Some(e) if e.hash == c.digest => {}
                Some(_) => return None,
                None if table.hash(c.entry) == Some(c.digest) => {}
                // Its content was hashed too soon after it changed to be
                // trusted by its stat: it is read again next time.
                None => _ = patches.insert(c.entry, FileEntry::untrusted(c.digest)),
            }
        }
        let inputs = match range.end <= loaded.len {
            true => Inputs::Base(range),
            false => Inputs::Own(t.bytes()[range].to_vec()),
        };
        // The listing the state's record has, if this one is the same.
        let base_listing = match loaded.delta.records.get(*name) {
            Some(r) => r.base_listing,
            None => loaded.tasks.contains_key(*name),
        } && loaded.tasks.get(*name).is_some_and(|r| r.listing == rec.listing);
        let head = codec::encode_head(rec, !base_listing);
        delta.set(
            name,
            Rec {
                head,
                base_listing,
                inputs,
            },
        );
    }
    // Entries whose hash changes: no record may refer to one but those set
    // here for its new content.
    let moved: Vec<usize> = patches
        .iter()
        .filter(|(i, e)| table.hash(**i) != Some(e.hash))
        .map(|(i, _)| *i)
        .collect();
    if !moved.is_empty() {
        let mut hit = vec![false; table.len()];
        moved.iter().for_each(|&i| hit[i] = true);
        let others = loaded
            .tasks
            .iter()
            .filter(|(n, _)| !delta.removed.contains(*n) && !set.iter().any(|(s, _)| s == n))
            .map(|(_, r)| (r, &[][..]));
        let ours = set.iter().map(|(_, r)| (r, r.parts.patches().map_or(&[][..], |p| p.2)));
        for (rec, own) in others.chain(ours) {
            // A record set here refers to the entries it changed, for the
            // content they now have.
            let foreign = |i: &usize| !own.iter().any(|c| c.entry == *i && patches[i].hash == c.digest);
            if !moved.iter().any(foreign) {
                continue;
            }
            let (t, range, _) = rec.parts.patches()?;
            let stale = codec::refers_to(&t.bytes()[range], &|i| hit.get(i) == Some(&true) && foreign(&i));
            if stale != Some(false) {
                return None;
            }
        }
    }
    delta.patches.extend(patches);
    let frame = delta.encode(&base);
    (frame.len() <= (loaded.len / 4).max(MIN_DELTA)).then_some(frame)
}

/// A delta may always grow to this many bytes (else to a quarter of the
/// state).
const MIN_DELTA: usize = 64 << 10;

/// Above this many new stat cache entries, the state is written whole.
const MAX_PATCHES: usize = 1024;

/// The state after `update`: records set and removed, and a stat cache
/// holding the update's entries plus the old ones some task still reads or
/// writes.
fn merge(state: State, update: Update) -> codec::Encoded {
    let State {
        mut tasks, files: old, ..
    } = state;
    for name in &update.remove {
        tasks.remove(name);
    }
    tasks.extend(update.set);
    for (name, (fingerprint, listing)) in update.listings {
        if let Some(rec) = tasks.get_mut(&name).filter(|r| r.fingerprint == fingerprint) {
            rec.listing = Some(listing);
        }
    }
    let mut live = vec![false; old.len()];
    for rec in tasks.values() {
        match rec.parts.raw() {
            Some((table, raw)) if Arc::ptr_eq(table.bytes(), old.bytes()) => {
                // Checked when loaded; a bad list only loses cache entries.
                let _ = codec::mark_inputs(&table.bytes()[raw], &old, &mut live);
            }
            _ => mark(&old, rec.parts.inputs.iter().map(|(p, _, _)| p.as_str()), &mut live),
        }
        mark(&old, rec.outputs.iter().map(|(p, _)| p.as_str()), &mut live);
    }
    // In path order, one entry per path: the last one given.
    let mut fresh = update.files;
    fresh.reverse();
    fresh.sort_by(|a, b| a.0.cmp(&b.0));
    fresh.dedup_by(|later, kept| later.0 == kept.0);
    let fresh: Vec<(&str, &FileEntry)> = fresh.iter().map(|(k, v)| (k.as_str(), v)).collect();
    // Merge the old table (live entries) with the fresh ones, in path order.
    let mut map = vec![u32::MAX; old.len()];
    let mut table = TableWriter::with_capacity(fresh.len() + live.iter().filter(|l| **l).count());
    let mut cur = old.cursor();
    let mut more = cur.step();
    let mut fresh = fresh.into_iter().peekable();
    loop {
        let order = match (more, fresh.peek()) {
            (false, None) => break,
            (true, None) => Ordering::Less,
            (false, Some(_)) => Ordering::Greater,
            (true, Some((p, _))) => cur.path().cmp(p.as_bytes()),
        };
        if order != Ordering::Greater {
            let i = cur.index();
            if order == Ordering::Equal {
                map[i] = table.len() as u32;
            } else if live[i]
                && let Some(e) = old.record(i)
            {
                map[i] = table.len() as u32;
                table.push(cur.path(), &e);
            }
            more = cur.step();
        }
        if order != Ordering::Less
            && let Some((p, e)) = fresh.next()
        {
            table.push(p.as_bytes(), e);
        }
    }
    let mut names: Vec<(&str, &TaskRecord)> = tasks.iter().map(|(k, v)| (k.as_str(), v)).collect();
    names.sort_unstable_by(|a, b| a.0.cmp(b.0));
    codec::encode(table, &names, Some((&old, &map)))
}

/// Marks the entries of `table` at `paths`.
fn mark<'a>(table: &StatCache, paths: impl Iterator<Item = &'a str>, live: &mut [bool]) {
    let mut cur = table.cursor();
    for p in paths {
        if let Some(i) = cur.seek(p.as_bytes()) {
            live[i] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{Group, Tree};
    use crate::hashing::Digest;
    use crate::inputs::Stat;
    use crate::state::{Changed, LazyParts, Parts, STATE_VERSION};

    fn fe(n: u64) -> FileEntry {
        FileEntry {
            stat: Stat {
                size: n,
                mtime_ns: 1_600_000_000_000_000_000 + n as i64,
                ctime_ns: 1_600_000_000_000_000_000 + 2 * n as i64,
                ino: 1000 + n,
                mode: 0o100644,
            },
            hash: digest(n),
        }
    }

    fn digest(n: u64) -> Digest {
        *blake3::hash(&n.to_le_bytes()).as_bytes()
    }

    fn path(i: usize) -> String {
        format!("src/pkg_{}/sub_{}/module_{i}.py", i % 37, i % 5)
    }

    /// A record over `inputs` (path, digest, exec), sorted as
    /// `fingerprint::compute` sorts them.
    fn record(fp: u8, mut inputs: Vec<(String, Digest, bool)>) -> TaskRecord {
        inputs.sort_by(|a, b| a.0.cmp(&b.0));
        TaskRecord {
            fingerprint: [fp; 32],
            // Kept as it is given: a record's tree is stored with it.
            tree: Tree {
                len: 3 * 65536 + 5,
                groups: (0..4)
                    .map(|g| Group {
                        cv: [fp + g as u8; 32],
                        item: g * 40,
                        skip: g,
                    })
                    .collect(),
            },
            finished: 1_700_000_000,
            parts: Parts {
                action: [1; 32],
                env: vec![("A".into(), [2; 32])],
                vars: vec![("v".into(), [3; 32])],
                dir: [4; 32],
                outputs: [7; 32],
                deps: vec![("dep".into(), [5; 32])],
                inputs,
            }
            .into(),
            outputs: vec![("out/x".into(), [6; 32])],
            listing: None,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        (dir, store)
    }

    fn load(store: &Store) -> State {
        let (state, warning) = store.load();
        assert_eq!(warning, None);
        state
    }

    #[test]
    fn expected_tasks_that_never_began_keep_their_records() {
        let (_dir, store) = store();
        let mut update = Update::default();
        for t in ["a", "b", "c"] {
            update.set.insert(t.into(), record(1, Vec::new()));
        }
        store.commit(&State::default(), update).unwrap();
        // `-B a b c`: `a` begins and ends unrecorded (say its job failed
        // before an outcome), the run stops before `b` and `c` start.
        store.expect(["a", "b", "c"].map(String::from));
        store.begin("a");
        store.commit(&State::default(), Update::default()).unwrap();
        let state = load(&store);
        let mut kept: Vec<&String> = state.tasks.keys().collect();
        kept.sort();
        assert_eq!(kept, ["b", "c"]);
        let live = |n: &str| n.starts_with("journal-") && !n.ends_with(".done");
        assert!(!store.names().iter().any(|n| live(n)), "the commit retires the journal");
    }

    #[test]
    fn a_new_listing_is_kept_only_by_the_record_it_was_made_for() {
        let (_dir, store) = store();
        let listing = |n: u64| {
            Arc::new(Listing {
                patterns: [7; 32],
                dirs: vec![(
                    "src".into(),
                    Stat {
                        ino: n,
                        ..Stat::default()
                    },
                )],
            })
        };
        let mut first = Update::default();
        first
            .set
            .insert("a".into(), record(1, vec![(path(1), digest(1), false)]));
        first.set.insert(
            "b".into(),
            TaskRecord {
                listing: Some(listing(1)),
                ..record(2, Vec::new())
            },
        );
        store.commit(&State::default(), first).unwrap();
        assert_eq!(load(&store).tasks["b"].listing, Some(listing(1)));
        let mut second = Update::default();
        second.listings.insert("a".into(), ([1; 32], listing(2)));
        // Judged against a record another process has replaced since.
        second.listings.insert("b".into(), ([9; 32], listing(3)));
        store.commit(&State::default(), second).unwrap();
        let state = load(&store);
        assert_eq!(state.tasks["a"].listing, Some(listing(2)));
        assert_eq!(state.tasks["a"].parts.inputs, vec![(path(1), digest(1), false)]);
        assert_eq!(state.tasks["b"].listing, Some(listing(1)));
    }

    #[test]
    fn a_commit_merges_into_the_state_read_unless_the_file_changed_since() {
        let (_dir, store) = store();
        let update = |name: &str, fp: u8| {
            let mut u = Update::default();
            u.set.insert(name.into(), record(fp, Vec::new()));
            u
        };
        store.commit(&State::default(), update("a", 1)).unwrap();
        let read = load(&store);
        // Another process records `b` after this one read the file.
        store.commit(&load(&store), update("b", 2)).unwrap();
        store.commit(&read, update("c", 3)).unwrap();
        let mut names: Vec<String> = load(&store).tasks.into_keys().collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
        // Unchanged since: what was read is not read again.
        let mut read = load(&store);
        read.tasks.insert("only read".into(), record(4, Vec::new()));
        store.commit(&read, update("d", 5)).unwrap();
        assert!(load(&store).tasks.contains_key("only read"));
    }

    #[test]
    fn a_record_read_from_the_state_explains_its_input_changes_without_being_decoded() {
        use crate::explain::Reason;
        let (_dir, store) = store();
        let inputs: Vec<_> = (0..20).map(|i| (path(i), digest(i as u64), false)).collect();
        let mut update = Update::default();
        update.set.insert("t".into(), record(1, inputs.clone()));
        // Half of them cached (encoded as references), half inline.
        update.files = (0..20).step_by(2).map(|i| (path(i), fe(i as u64))).collect();
        store.commit(&State::default(), update).unwrap();
        let state = load(&store);
        let rec = &state.tasks["t"];
        let mut now = (*record(1, inputs).parts).clone();
        now.inputs.retain(|(p, _, _)| *p != path(3));
        now.inputs
            .iter_mut()
            .filter(|(p, _, _)| *p == path(4))
            .for_each(|i| i.1 = digest(99));
        now.inputs
            .iter_mut()
            .filter(|(p, _, _)| *p == path(5))
            .for_each(|i| i.2 = true);
        now.inputs.push(("zzz".into(), digest(7), false));
        let want = Reason::Inputs {
            added: vec!["zzz".into()],
            removed: vec![path(3)],
            modified: vec![path(4), path(5)],
        };
        assert_eq!(crate::explain::diff(&rec.parts, &now), want);
        assert!(rec.parts.raw().is_some(), "its inputs were decoded");
    }

    #[test]
    fn cached_inputs_name_their_entries_unless_one_is_inline() {
        let (_dir, store) = store();
        let inputs: Vec<_> = (0..50).map(|i| (path(i), digest(i as u64), i % 3 == 0)).collect();
        let mut update = Update::default();
        update.set.insert("all".into(), record(1, inputs[8..].to_vec()));
        update.set.insert("one changed".into(), record(2, inputs.clone()));
        update.files = (0..50).map(|i| (path(i), fe(i as u64))).collect();
        store.commit(&State::default(), update).unwrap();
        // Another hash for a file only `one changed` reads: its input goes
        // inline, as it no longer is what the cache holds.
        let mut again = Update::default();
        again.files.push((path(7), fe(777)));
        store.commit(&State::default(), again).unwrap();
        let state = load(&store);
        assert!(state.tasks["one changed"].parts.cached_inputs().is_none());
        // Its content back, cached once more: the input refers to it again.
        let mut back = Update::default();
        back.files.push((path(7), fe(7)));
        store.commit(&State::default(), back).unwrap();
        let back = load(&store);
        let (_, cached) = back.tasks["one changed"]
            .parts
            .cached_inputs()
            .expect("no input inline");
        assert_eq!(cached.len(), 50);
        assert_eq!(back.tasks["one changed"], state.tasks["one changed"]);
        let (table, cached) = state.tasks["all"].parts.cached_inputs().unwrap();
        let mut want = inputs[8..].to_vec();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(cached.len(), want.len());
        let mut cur = table.cursor();
        for ((i, exec), (path, digest, x)) in cached.into_iter().zip(&want) {
            assert!(cur.goto(i));
            let found = (cur.path(), table.hash(i), exec);
            assert_eq!(found, (path.as_bytes(), Some(*digest), *x), "entry {i}");
        }
    }

    #[test]
    fn round_trips_records_and_cache() {
        let (_dir, store) = store();
        let inputs: Vec<_> = (0..300).map(|i| (path(i), digest(i as u64), i % 3 == 0)).collect();
        let mut update = Update::default();
        update.set.insert("t".into(), record(9, inputs.clone()));
        // Every other input is in the cache; one cached hash differs from
        // the recorded one (the file changed after the run).
        for i in (0..300).step_by(2) {
            update.files.push((path(i), fe(i as u64)));
        }
        update.files.push((path(4), fe(99_999)));
        store.commit(&State::default(), update.clone()).unwrap();
        let state = load(&store);
        let rec = &state.tasks["t"];
        assert_eq!(rec, &update.set["t"]);
        assert_eq!(rec.parts.inputs.len(), 300);
        assert_eq!(state.files.len(), 150);
        assert_eq!(state.files.get(&path(4)), Some(fe(99_999)));
        assert_eq!(state.files.get(&path(6)), Some(fe(6)));
        assert_eq!(state.files.get(&path(7)), None);
    }

    #[test]
    fn recommits_keep_what_each_record_saw() {
        let (_dir, store) = store();
        let a: Vec<_> = (0..100).map(|i| (path(i), digest(i as u64), false)).collect();
        let mut first = Update::default();
        first.set.insert("a".into(), record(1, a));
        first.files = (0..100).map(|i| (path(i), fe(i as u64))).collect();
        store.commit(&State::default(), first.clone()).unwrap();
        // Task b ran after files 10..20 changed: new cache entries; a's
        // record (still lazy, referring to the old cache) must keep the
        // hashes it was recorded with.
        let b: Vec<_> = (10..20).map(|i| (path(i), digest(1000 + i as u64), true)).collect();
        let mut second = Update::default();
        second.set.insert("b".into(), record(2, b));
        second.files = (10..20).map(|i| (path(i), fe(1000 + i as u64))).collect();
        store.commit(&State::default(), second.clone()).unwrap();
        let state = load(&store);
        assert_eq!(state.tasks["a"], first.set["a"]);
        assert_eq!(state.tasks["b"], second.set["b"]);
        assert_eq!(state.files.get(&path(15)), Some(fe(1015)));
        assert_eq!(state.files.get(&path(25)), Some(fe(25)));
        // And once more, with nothing about `a` touched.
        let mut third = Update::default();
        third.remove.insert("b".into());
        store.commit(&State::default(), third.clone()).unwrap();
        let state = load(&store);
        assert_eq!(state.tasks["a"], first.set["a"]);
        assert!(!state.tasks.contains_key("b"));
        assert_eq!(state.files.get(&path(15)), Some(fe(1015)));
    }

    /// A state with records `a` (inputs 0..200) and `b` (inputs `b`),
    /// every input in the cache.
    fn two_records(store: &Store, b: &[usize]) -> (Update, State) {
        let mut first = Update::default();
        first.set.insert(
            "a".into(),
            record(1, (0..200).map(|i| (path(i), digest(i as u64), false)).collect()),
        );
        let b_inputs = b.iter().map(|&i| (path(i), digest(i as u64), false)).collect();
        first.set.insert("b".into(), record(2, b_inputs));
        first.files = (0..200)
            .chain(b.iter().copied())
            .map(|i| (path(i), fe(i as u64)))
            .collect();
        store.commit(&State::default(), first.clone()).unwrap();
        (first, load(store))
    }

    /// `a`'s record after a run in which inputs `changed` had new content
    /// (digest `1000 + i`), as a run finds it without listing its inputs.
    fn a_ran(loaded: &State, changed: &[usize]) -> TaskRecord {
        let old = &loaded.tasks["a"];
        let paths = old.parts.input_paths().unwrap();
        let changed = changed
            .iter()
            .map(|&i| Changed {
                at: paths.iter().position(|p| **p == path(i)).unwrap(),
                entry: loaded.files.cursor().seek(path(i).as_bytes()).unwrap(),
                digest: digest(1000 + i as u64),
            })
            .collect();
        TaskRecord {
            fingerprint: [3; 32],
            parts: LazyParts::patched(old.parts.base().clone(), &old.parts, changed).unwrap(),
            ..old.clone()
        }
    }

    fn a_inputs_after(changed: &[usize]) -> Vec<(String, Digest, bool)> {
        let mut inputs: Vec<_> = (0..200)
            .map(|i| {
                let n = if changed.contains(&i) { 1000 + i } else { i };
                (path(i), digest(n as u64), false)
            })
            .collect();
        inputs.sort_by(|a, b| a.0.cmp(&b.0));
        inputs
    }

    #[test]
    fn a_record_of_the_same_files_is_committed_as_a_delta_and_loads_as_if_whole() {
        let (_dir, store) = store();
        let (first, loaded) = two_records(&store, &[500]);
        let whole = std::fs::read(store.dir().join("state")).unwrap();
        // File 5 was hashed long after its change, 150 just after it.
        let mut update = Update::default();
        update.set.insert("a".into(), a_ran(&loaded, &[5, 150]));
        update.files.push((path(5), fe(1005)));
        store.commit(&loaded, update).unwrap();
        assert_eq!(
            std::fs::read(store.dir().join("state")).unwrap(),
            whole,
            "not rewritten"
        );
        assert!(store.dir().join("delta").exists());
        let state = load(&store);
        let want = a_inputs_after(&[5, 150]);
        assert_eq!(state.tasks["a"].fingerprint, [3; 32]);
        assert_eq!(state.tasks["a"].parts.inputs, want);
        assert!(
            state.tasks["a"].parts.cached_inputs().is_some(),
            "still checked without a walk"
        );
        assert_eq!(state.tasks["b"], first.set["b"]);
        assert_eq!(state.files.get(&path(5)), Some(fe(1005)));
        let fresh = state.files.get(&path(150)).unwrap();
        assert_eq!((fresh.stat, fresh.hash), (Stat::default(), digest(1150)));
        assert_eq!(state.files.get(&path(6)), Some(fe(6)));
        // Another such run replaces the delta's record.
        let mut again = Update::default();
        again.set.insert("a".into(), a_ran(&state, &[5, 150, 7]));
        store.commit(&state, again).unwrap();
        let state = load(&store);
        assert_eq!(state.tasks["a"].parts.inputs, a_inputs_after(&[5, 150, 7]));
        // A commit that cannot be a delta writes the state whole, with it.
        let mut other = Update::default();
        other.remove.insert("b".into());
        other.files.push(("new/file".into(), fe(7)));
        store.commit(&state, other).unwrap();
        assert!(!store.dir().join("delta").exists());
        let state = load(&store);
        assert_eq!(state.tasks["a"].parts.inputs, a_inputs_after(&[5, 150, 7]));
        assert!(!state.tasks.contains_key("b"));
        assert_eq!(state.files.get(&path(5)), Some(fe(1005)));
        assert_eq!(state.files.get("new/file"), Some(fe(7)));
    }

    #[test]
    fn an_entry_another_record_refers_to_keeps_its_hash_for_that_record() {
        let (_dir, store) = store();
        // `b` reads file 1 too; `a` ran with new content in it.
        let (first, loaded) = two_records(&store, &[1, 300]);
        let mut update = Update::default();
        update.set.insert("a".into(), a_ran(&loaded, &[1]));
        update.files.push((path(1), fe(1001)));
        store.commit(&loaded, update).unwrap();
        assert!(!store.dir().join("delta").exists(), "written whole");
        let state = load(&store);
        assert_eq!(state.tasks["b"], first.set["b"]);
        assert_eq!(state.tasks["a"].parts.inputs, a_inputs_after(&[1]));
        // A listing for `b` alone is a delta again; its digests stay.
        let listing = Arc::new(Listing {
            patterns: [7; 32],
            dirs: Vec::new(),
        });
        let mut update = Update::default();
        update.listings.insert("b".into(), ([2; 32], listing.clone()));
        store.commit(&state, update).unwrap();
        assert!(store.dir().join("delta").exists());
        let state = load(&store);
        assert_eq!(state.tasks["b"].listing, Some(listing));
        assert_eq!(state.tasks["b"].parts.inputs, first.set["b"].parts.inputs);
    }

    #[test]
    fn a_delta_made_since_the_state_was_read_is_merged_not_lost() {
        let (_dir, store) = store();
        let (_, loaded) = two_records(&store, &[500]);
        let mut one = Update::default();
        one.set.insert("a".into(), a_ran(&loaded, &[5]));
        store.commit(&loaded, one).unwrap();
        // Another process read the state before that commit.
        let mut two = Update::default();
        two.set.insert("c".into(), record(4, vec![(path(9), digest(9), false)]));
        store.commit(&loaded, two).unwrap();
        let state = load(&store);
        assert_eq!(state.tasks["a"].parts.inputs, a_inputs_after(&[5]));
        assert!(state.tasks.contains_key("b") && state.tasks.contains_key("c"));
    }

    #[test]
    fn a_stale_delta_is_ignored_and_a_corrupt_one_empties_the_state() {
        let (_dir, store) = store();
        let (_, loaded) = two_records(&store, &[500]);
        let mut update = Update::default();
        update.set.insert("a".into(), a_ran(&loaded, &[5]));
        store.commit(&loaded, update).unwrap();
        let delta = std::fs::read(store.dir().join("delta")).unwrap();
        // Written whole since: the delta that is put back was for the
        // state before.
        let state = load(&store);
        let mut whole = Update::default();
        whole.files.push(("new/file".into(), fe(7)));
        store.commit(&state, whole).unwrap();
        std::fs::write(store.dir().join("delta"), &delta).unwrap();
        let (state, warning) = store.load();
        assert_eq!(warning, None);
        assert_eq!(state.tasks["a"].parts.inputs, a_inputs_after(&[5]));
        assert!(state.delta.records.is_empty());
        // A torn or damaged last frame is as if that commit never was.
        let mut bad = delta.clone();
        *bad.last_mut().unwrap() ^= 1;
        std::fs::write(store.dir().join("delta"), &bad).unwrap();
        let (state, warning) = store.load();
        assert_eq!(warning, None);
        assert_eq!(state.tasks["a"].parts.inputs, a_inputs_after(&[5]));
        // Something else under its name: nothing of the state is trusted.
        std::fs::write(store.dir().join("delta"), vec![b'x'; 100]).unwrap();
        let (state, warning) = store.load();
        assert!(state.tasks.is_empty());
        assert!(warning.unwrap().contains("`.mtr/delta` is not an mtr delta file"));
    }

    #[test]
    fn commits_append_to_the_delta_and_cut_off_a_torn_frame() {
        let (_dir, store) = store();
        let (_, loaded) = two_records(&store, &[500]);
        let path = store.dir().join("delta");
        let mut update = Update::default();
        update.set.insert("a".into(), a_ran(&loaded, &[5]));
        store.commit(&loaded, update).unwrap();
        let one = std::fs::read(&path).unwrap();
        let state = load(&store);
        let mut update = Update::default();
        update.set.insert("a".into(), a_ran(&state, &[5, 6]));
        store.commit(&state, update).unwrap();
        let two = std::fs::read(&path).unwrap();
        assert!(two.starts_with(&one) && two.len() > one.len(), "appended");
        // A writer killed halfway through its frame.
        let state = load(&store);
        let mut torn = two.clone();
        torn.extend_from_slice(&two[one.len()..two.len() - 9]);
        std::fs::write(&path, &torn).unwrap();
        assert_eq!(load(&store).tasks["a"].parts.inputs, a_inputs_after(&[5, 6]));
        let mut update = Update::default();
        update.set.insert("a".into(), a_ran(&state, &[5, 6, 7]));
        store.commit(&state, update).unwrap();
        let three = std::fs::read(&path).unwrap();
        assert!(
            three.starts_with(&two) && three.len() < torn.len() + 100,
            "cut, then appended"
        );
        assert_eq!(load(&store).tasks["a"].parts.inputs, a_inputs_after(&[5, 6, 7]));
    }

    #[test]
    fn keeps_only_cache_entries_some_task_uses() {
        let (_dir, store) = store();
        let mut first = Update::default();
        first
            .set
            .insert("a".into(), record(1, vec![(path(1), digest(1), false)]));
        first.files = [1, 2].iter().map(|&i| (path(i), fe(i as u64))).collect();
        first.files.push(("out/x".into(), fe(7)));
        store.commit(&State::default(), first.clone()).unwrap();
        // Entries of this update are kept even if unused...
        assert_eq!(load(&store).files.len(), 3);
        let mut second = Update::default();
        second.remove.insert("a".into());
        second.files.push((path(3), fe(3)));
        store.commit(&State::default(), second.clone()).unwrap();
        // ...but not the next time.
        let state = load(&store);
        assert_eq!(state.files.entries(), vec![(path(3), fe(3))]);
    }

    #[test]
    fn hundred_thousand_inputs_load_without_decoding_them() {
        let (_dir, store) = store();
        let n = 100_000;
        let inputs: Vec<_> = (0..n).map(|i| (path(i), digest(i as u64), false)).collect();
        let mut update = Update::default();
        update.set.insert("big".into(), record(7, inputs));
        update.files = (0..n).map(|i| (path(i), fe(i as u64))).collect();
        store.commit(&State::default(), update.clone()).unwrap();
        let size = std::fs::metadata(store.dir().join("state")).unwrap().len();
        // ~68 bytes of stat and hash per file, paths front-coded, inputs
        // referring to the cache.
        assert!(size < 100 * n as u64, "{size} bytes");
        let state = load(&store);
        let rec = &state.tasks["big"];
        assert!(rec.parts.raw().is_some(), "inputs are decoded lazily");
        assert_eq!(rec.parts.input_count(), n);
        assert!(rec.parts.raw().is_some(), "counting them decodes nothing");
        assert_eq!(rec.fingerprint, [7; 32]);
        let mut sorted: Vec<String> = (0..n).map(path).collect();
        sorted.sort();
        let mut cur = state.files.cursor();
        for p in &sorted {
            assert!(cur.seek(p.as_bytes()).is_some());
        }
        assert_eq!(rec, &update.set["big"]);
    }

    #[test]
    fn corrupt_or_foreign_files_are_empty_with_a_warning() {
        let (_dir, store) = store();
        let mut update = Update::default();
        update
            .set
            .insert("t".into(), record(1, vec![(path(1), digest(1), false)]));
        update.files.push((path(1), fe(1)));
        store.commit(&State::default(), update.clone()).unwrap();
        let file = store.dir().join("state");
        let good = std::fs::read(&file).unwrap();
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (b"garbage".to_vec(), "not an mtr state file"),
            (good[..good.len() - 1].to_vec(), "corrupt"),
            (Vec::new(), "not an mtr state file"),
        ];
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        cases.push((flipped, "checksum"));
        let mut foreign = good.clone();
        foreign[8..12].copy_from_slice(&(STATE_VERSION + 1).to_le_bytes());
        cases.push((foreign, "another mtr version"));
        for (bytes, why) in cases {
            std::fs::write(&file, bytes).unwrap();
            let (state, warning) = store.load();
            assert!(state.tasks.is_empty() && state.files.is_empty());
            assert!(
                warning.as_deref().is_some_and(|w| w.contains(why)),
                "{warning:?} lacks {why}"
            );
        }
        // A commit over a corrupt file starts afresh.
        store.commit(&State::default(), update.clone()).unwrap();
        assert_eq!(load(&store).tasks["t"], update.set["t"]);
    }

    #[test]
    fn decoding_survives_any_corruption_behind_a_valid_checksum() {
        let (_dir, store) = store();
        let mut update = Update::default();
        let inputs: Vec<_> = (0..40).map(|i| (path(i), digest(i as u64), false)).collect();
        update.set.insert("t".into(), record(1, inputs));
        update.files = (0..40).map(|i| (path(i), fe(i as u64))).collect();
        store.commit(&State::default(), update.clone()).unwrap();
        let good = std::fs::read(store.dir().join("state")).unwrap();
        // Flip each body byte, then fix the checksum: decoding must fail
        // cleanly or give some state, never panic.
        for i in 44..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xff;
            let sum = blake3::hash(&b[44..]);
            b[12..44].copy_from_slice(sum.as_bytes());
            if let Ok(state) = codec::decode(b, sum.as_bytes(), Delta::default()) {
                for rec in state.tasks.values() {
                    let _ = rec.parts.inputs.len();
                }
                let _ = state.files.entries();
                let _ = state.files.get(&path(3));
            }
        }
    }

    #[test]
    fn lazy_parts_behave_like_parts() {
        let p = Parts {
            inputs: vec![("a".into(), [1; 32], true)],
            ..Parts::default()
        };
        let lazy: LazyParts = p.clone().into();
        assert_eq!(lazy.input_count(), 1);
        assert_eq!(*lazy, p);
        assert_eq!(lazy.clone(), lazy);
        assert_eq!(LazyParts::default().inputs.len(), 0);
    }
}
