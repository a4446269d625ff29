//! Which tasks a process has started but not yet recorded, so that a crash
//! (`kill -9`, the OOM killer, a power cut) never leaves an old success
//! standing for a task whose newer run was cut short — or ran to the end
//! without being recorded — and may have changed what it writes.
//!
//! A process appends each task's name to its own `.mtr/journal-PID-N`
//! before the task starts, and holds an exclusive lock on that file while
//! it lives. Its commit records how every one of those tasks ended, then
//! removes the journal. A journal whose lock can be taken belongs to a
//! process that died before its commit: the records of the tasks it names
//! are dropped when the state is loaded (those tasks run again), and the
//! next commit deletes it.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const PREFIX: &str = "journal-";
/// A journal being created: not yet locked, so not yet trusted as alive.
const NEW: &str = ".new";

/// This process's journal (opened on the first task that starts).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    open: Mutex<Option<Open>>,
}

#[derive(Debug)]
struct Open {
    /// Held for its lock, released when the file is closed.
    file: Arc<File>,
    path: PathBuf,
    tasks: BTreeSet<String>,
}

impl Journal {
    pub fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            open: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Open>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes, durably, that `task` is about to start.
    pub fn begin(&self, task: &str) -> std::io::Result<()> {
        let file = {
            let mut open = self.lock();
            if open.is_none() {
                *open = Some(self.create()?);
            }
            let Some(o) = open.as_mut() else {
                return Ok(());
            };
            if !o.tasks.insert(task.to_string()) {
                return Ok(());
            }
            // One name per line; task names never hold a newline.
            (&*o.file).write_all(format!("{task}\n").as_bytes())?;
            o.file.clone()
        };
        // A few bytes: cheap next to starting a task, and it keeps the
        // promise across a power cut, not only a killed process. Outside the
        // lock, so tasks starting together share the wait.
        file.sync_data()
    }

    /// The tasks begun since the last [`clear`](Self::clear).
    pub fn begun(&self) -> BTreeSet<String> {
        self.lock().as_ref().map(|o| o.tasks.clone()).unwrap_or_default()
    }

    /// After a commit that recorded how every begun task ended.
    pub fn clear(&self) {
        if let Some(o) = self.lock().take() {
            let _ = std::fs::remove_file(&o.path);
            drop(o.file);
        }
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

/// The journals in `dir` whose process is gone (their lock is free).
pub fn dead(dir: &Path) -> Vec<Dead> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(PREFIX) {
            continue;
        }
        let path = entry.path();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_journal_is_not_dead_and_a_closed_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().to_path_buf());
        j.begin("build").unwrap();
        j.begin("test").unwrap();
        j.begin("build").unwrap();
        assert!(dead(dir.path()).is_empty(), "a journal this process holds is alive");
        assert_eq!(j.begun().into_iter().collect::<Vec<_>>(), ["build", "test"]);
        // As after a crash: the file stays, its lock goes with the process.
        let o = j.lock().take().unwrap();
        drop(o.file);
        let found = dead(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].tasks, ["build", "test"]);
        assert!(found[0].path.exists());
    }

    #[test]
    fn clear_removes_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().to_path_buf());
        j.begin("a").unwrap();
        j.clear();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(j.begun().is_empty());
        j.begin("b").unwrap();
        assert_eq!(j.begun().into_iter().collect::<Vec<_>>(), ["b"]);
    }
}
