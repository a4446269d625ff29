//! Which tasks a process has started but not yet recorded, so that a crash
//! (`kill -9`, the OOM killer, a power cut) never leaves an old success
//! standing for a task whose newer run was cut short — or ran to the end
//! without being recorded — and may have changed what it writes.
//!
//! A process appends each task's name to its own `.mtr/journal-PID-N`
//! before the task starts, and holds an exclusive lock on that file while
//! it lives. Its commit records how every one of those tasks ended, then
//! retires the journal (renamed `journal-PID-N.done`, removed by the next
//! process that begins a task, alongside its own journal's first sync). A
//! journal whose lock can be taken belongs to a process that died before
//! its commit: the records of the tasks it names are dropped when the state
//! is loaded (those tasks run again), and the next commit deletes it.

use std::collections::{BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const PREFIX: &str = "journal-";
/// A journal being created: not yet locked, so not yet trusted as alive.
const NEW: &str = ".new";
/// A journal whose process committed: no longer read (see [`Journal::clear`]).
const DONE: &str = ".done";

/// This process's journal (opened on the first task that starts).
///
/// Every name is synced before its task starts, but one sync covers many
/// names: the tasks announced with [`expect`](Journal::expect) (they run
/// for certain, e.g. under `-B`) go into the file together with the first
/// task that begins, and tasks beginning at the same time share one sync
/// (group commit). A journal may so name a task that never started; after
/// a crash that only costs a run, never a wrong skip.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    open: Mutex<Option<Open>>,
    /// Tasks to write with the next write (see [`expect`](Self::expect)).
    expected: Mutex<BTreeSet<String>>,
    /// The generation of the last write known to be on disk; held while
    /// syncing, so tasks that begin meanwhile wait for it, then sync once
    /// together.
    synced: Mutex<u64>,
}

#[derive(Debug)]
struct Open {
    /// Held for its lock, released when the file is closed.
    file: Arc<File>,
    path: PathBuf,
    /// The tasks that began (what the commit must account for).
    tasks: BTreeSet<String>,
    /// The names in the file: the tasks that began and expected ones.
    written: HashSet<String>,
    /// Counts writes, so a sync knows which ones it covers.
    generation: u64,
}

impl Journal {
    pub fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            open: Mutex::new(None),
            expected: Mutex::new(BTreeSet::new()),
            synced: Mutex::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Open>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Announces tasks that will run if they get to start: they are
    /// written (and synced) with the first task that begins, instead of
    /// one sync each. Only for tasks that run whatever their record says:
    /// after a crash each of them loses its record, started or not.
    pub fn expect(&self, tasks: impl IntoIterator<Item = String>) {
        self.expected.lock().unwrap_or_else(|e| e.into_inner()).extend(tasks);
    }

    /// Notes, durably, that `task` is about to start.
    pub fn begin(&self, task: &str) -> std::io::Result<()> {
        let mut created = false;
        let (file, generation) = {
            let mut open = self.lock();
            if open.is_none() {
                *open = Some(self.create()?);
                created = true;
            }
            let Some(o) = open.as_mut() else {
                return Ok(());
            };
            o.tasks.insert(task.to_string());
            if o.written.contains(task) {
                // In the file already (expected, or begun before): the sync
                // that wrote it may still be going on, so wait for it below.
                (o.file.clone(), o.generation)
            } else {
                // One name per line; task names never hold a newline.
                let mut names = vec![task.to_string()];
                let expected = std::mem::take(&mut *self.expected.lock().unwrap_or_else(|e| e.into_inner()));
                names.extend(expected.into_iter().filter(|n| n != task && !o.written.contains(n)));
                let mut text = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
                for n in &names {
                    text.push_str(n);
                    text.push('\n');
                }
                (&*o.file).write_all(text.as_bytes())?;
                o.written.extend(names);
                o.generation += 1;
                (o.file.clone(), o.generation)
            }
        };
        // Journals retired before are removed alongside this one's first
        // sync, and before the task starts: mtr changes nothing in `.mtr/`
        // while a task runs (one may remove it).
        let sweeper = created
            .then(|| {
                let dir = self.dir.clone();
                std::thread::Builder::new()
                    .name("mtr-sweep".into())
                    .spawn(move || sweep(&dir))
                    .ok()
            })
            .flatten();
        let synced = self.sync(&file, generation);
        if let Some(sweeper) = sweeper {
            let _ = sweeper.join();
        }
        synced
    }

    /// Syncs the journal up to write `generation`. A few bytes: cheap next
    /// to starting a task, and it keeps the promise across a power cut,
    /// not only a killed process. One sync covers every write made before
    /// it started: a task that begins while another syncs waits, then
    /// finds its name synced or syncs the names of all the tasks that
    /// waited with it.
    fn sync(&self, file: &File, generation: u64) -> std::io::Result<()> {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        if *synced >= generation {
            return Ok(());
        }
        let upto = self.lock().as_ref().map_or(generation, |o| o.generation);
        file.sync_data()?;
        *synced = upto;
        Ok(())
    }

    /// Takes back [`begin`](Self::begin) for a task that did not start:
    /// the commit leaves its record. Its name stays in the file, which
    /// after a crash costs a run, never a wrong skip.
    pub fn withdraw(&self, task: &str) {
        if let Some(o) = self.lock().as_mut() {
            o.tasks.remove(task);
        }
    }

    /// The tasks begun since the last [`clear`](Self::clear).
    pub fn begun(&self) -> BTreeSet<String> {
        self.lock().as_ref().map(|o| o.tasks.clone()).unwrap_or_default()
    }

    /// After a commit that recorded how every begun task ended: the
    /// journal is retired, renamed `.done`, which no load reads, and which
    /// the next process that begins a task removes while its own journal
    /// syncs. Not removed here: freeing its synced block costs ~0.4 ms at
    /// the end of the run on a file system mounted with `discard`, against
    /// ~0.03 ms for a rename. Either is a metadata change that ext4's
    /// journal orders after the commit's own (whose data, in the default
    /// `data=ordered` mode, reaches the disk first): after a power cut the
    /// journal is retired only if the commit is on disk, else it names its
    /// tasks still.
    pub fn clear(&self) {
        self.expected.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = self.lock().take() {
            let mut done = o.path.clone().into_os_string();
            done.push(DONE);
            if std::fs::rename(&o.path, &done).is_err() {
                let _ = std::fs::remove_file(&o.path);
            }
            drop(o.file);
        }
        *synced = 0;
    }

    /// Creates `journal-PID-N` locked: created under a `.new` name, locked,
    /// then renamed, so no other process ever sees it unlocked.
    fn create(&self) -> std::io::Result<Open> {
        static N: AtomicU64 = AtomicU64::new(0);
        let mut last = None;
        for _ in 0..5 {
            let name = format!("{PREFIX}{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
            let new = self.dir.join(format!("{name}{NEW}"));
            let file = match OpenOptions::new().create_new(true).append(true).open(&new) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            file.lock()?;
            let path = self.dir.join(&name);
            match std::fs::rename(&new, &path) {
                Ok(()) => {
                    return Ok(Open {
                        file: Arc::new(file),
                        path,
                        tasks: BTreeSet::new(),
                        written: HashSet::new(),
                        generation: 0,
                    });
                }
                // Another process took it for a dead one's leftover in the
                // instant before the lock: start over with a new name.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => last = Some(e),
                Err(e) => {
                    let _ = std::fs::remove_file(&new);
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("cannot create a journal")))
    }
}

/// A journal left by a process that died before its commit.
#[derive(Debug)]
pub struct Dead {
    pub path: PathBuf,
    /// The tasks it had started: their records cannot be trusted.
    pub tasks: Vec<String>,
}

/// The journals among `names` (the entries of `dir`) whose process is
/// gone (their lock is free).
pub fn dead(dir: &Path, names: &[String]) -> Vec<Dead> {
    let mut out = Vec::new();
    for name in names.iter().filter(|n| n.starts_with(PREFIX) && !n.ends_with(DONE)) {
        let path = dir.join(name);
        let Ok(mut file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {}
            // Its process is alive (or the lock cannot be checked: leave it).
            Err(_) => continue,
        }
        let mut text = String::new();
        let tasks = if name.ends_with(NEW) {
            Vec::new()
        } else {
            let _ = file.read_to_string(&mut text);
            text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
        };
        out.push(Dead { path, tasks });
    }
    out
}

/// Removes the journals retired in `dir` (see [`Journal::clear`]).
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(DONE))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn a_live_journal_is_not_dead_and_a_closed_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().to_path_buf());
        j.begin("build").unwrap();
        j.begin("test").unwrap();
        j.begin("build").unwrap();
        assert!(
            dead(dir.path(), &names(dir.path())).is_empty(),
            "a journal this process holds is alive"
        );
        assert_eq!(j.begun().into_iter().collect::<Vec<_>>(), ["build", "test"]);
        // As after a crash: the file stays, its lock goes with the process.
        let o = j.lock().take().unwrap();
        drop(o.file);
        let found = dead(dir.path(), &names(dir.path()));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].tasks, ["build", "test"]);
        assert!(found[0].path.exists());
    }

    #[test]
    fn clear_retires_the_journal_and_the_next_begin_sweeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().to_path_buf());
        j.begin("a").unwrap();
        j.clear();
        let left = names(dir.path());
        assert!(matches!(&left[..], [n] if n.ends_with(DONE)), "{left:?}");
        assert!(dead(dir.path(), &left).is_empty(), "a retired journal names no task");
        assert!(j.begun().is_empty());
        j.begin("b").unwrap();
        assert_eq!(j.begun().into_iter().collect::<Vec<_>>(), ["b"]);
        // Swept before `begin` returns (so before the task starts).
        let left = names(dir.path());
        assert!(matches!(&left[..], [n] if !n.ends_with(DONE)), "{left:?}");
    }

    #[test]
    fn expected_tasks_are_written_with_the_first_that_begins() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().to_path_buf());
        j.expect(["b", "c", "d"].map(String::from));
        j.begin("c").unwrap();
        let path = j.lock().as_ref().unwrap().path.clone();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().collect::<Vec<_>>(), ["c", "b", "d"]);
        // Already in the file: no second write.
        j.begin("b").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        // Not expected: written on its own.
        j.begin("e").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().lines().collect::<Vec<_>>(),
            ["c", "b", "d", "e"]
        );
        // The commit accounts for the tasks that began, not the expected.
        assert_eq!(j.begun().into_iter().collect::<Vec<_>>(), ["b", "c", "e"]);
        // A crash now: every name in the file loses its record, `d` too.
        let o = j.lock().take().unwrap();
        drop(o.file);
        let mut found = dead(dir.path(), &names(dir.path()));
        assert_eq!(found.len(), 1);
        found[0].tasks.sort();
        assert_eq!(found[0].tasks, ["b", "c", "d", "e"]);
    }

    #[test]
    fn clear_forgets_the_expected_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().to_path_buf());
        j.expect(["x".to_string()]);
        j.begin("a").unwrap();
        j.clear();
        j.expect(["y".to_string()]);
        j.begin("b").unwrap();
        let path = j.lock().as_ref().unwrap().path.clone();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "b\ny\n");
    }

    #[test]
    fn tasks_beginning_together_are_all_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let j = Arc::new(Journal::new(dir.path().to_path_buf()));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let j = j.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        j.begin(&format!("t{t}-{i}")).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let path = j.lock().as_ref().unwrap().path.clone();
        let text = std::fs::read_to_string(path).unwrap();
        let mut names: Vec<&str> = text.lines().collect();
        names.sort();
        let mut want: Vec<String> = (0..8).flat_map(|t| (0..25).map(move |i| format!("t{t}-{i}"))).collect();
        want.sort();
        assert_eq!(names, want);
        assert_eq!(*j.synced.lock().unwrap(), j.lock().as_ref().unwrap().generation);
    }
}
