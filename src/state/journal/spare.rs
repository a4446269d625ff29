//! Spare journals: files made ready, and synced, by one process for the
//! next one to take. A new journal's first sync is a file system commit
//! (~1 ms on this machine); names written over a spare's blocks, already
//! on disk, sync without one (~0.3 ms), before the task may start.
//!
//! A spare is a journal (`journal-spare-PID-N`, read by every load) of
//! blank lines: it names no task. Only the process that holds its lock
//! writes names into it, after renaming it to its own journal's name; if
//! that rename is lost in a power cut, the names are still read under the
//! spare's name, so a spare that names a task is a journal like another.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{DONE, NEW};

/// The names spares go by (then `PID-N`).
const SPARE: &str = "journal-spare-";
/// A spare's length: blank lines the names are written over.
pub(super) const LEN: usize = 4096;

/// Whether `name` is a spare made ready (not one being made).
pub(super) fn is_ready(name: &str) -> bool {
    name.starts_with(SPARE) && !name.ends_with(NEW) && !name.ends_with(DONE)
}

/// Takes a spare in `dir` for this process: locked, renamed `to`. `None`
/// when there is none to take.
pub(super) fn take(dir: &Path, to: &Path) -> Option<File> {
    let entries = std::fs::read_dir(dir).ok()?;
    for e in entries.flatten() {
        if !e.file_name().to_str().is_some_and(is_ready) {
            continue;
        }
        let path = e.path();
        let Ok(mut file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        // Still the spare by that name (not taken and renamed in between),
        // and blank (not the journal of a process that died with it).
        let same = match (file.metadata(), std::fs::symlink_metadata(&path)) {
            (Ok(a), Ok(b)) => same_file(&a, &b),
            _ => false,
        };
        if same && blank(&mut file) && std::fs::rename(&path, to).is_ok() {
            return Some(file);
        }
    }
    None
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// Whether a spare's content is all blank lines, of the length made.
fn blank(file: &mut File) -> bool {
    let mut text = Vec::with_capacity(LEN + 1);
    file.read_to_end(&mut text).is_ok() && text.len() == LEN && text.iter().all(|&b| b == b'\n')
}

/// Makes a spare in `dir` for the next process, unless one is ready:
/// written and synced under a `.new` name, locked meanwhile (so no
/// commit takes it for a dead journal), then renamed.
pub(super) fn make(dir: &Path) -> std::io::Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let ready = std::fs::read_dir(dir)?
        .flatten()
        .any(|e| e.file_name().to_str().is_some_and(is_ready));
    if ready {
        return Ok(());
    }
    let name = format!("{SPARE}{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let new = dir.join(format!("{name}{NEW}"));
    let mut file = OpenOptions::new().write(true).create_new(true).open(&new)?;
    let made = (|| {
        file.lock()?;
        file.write_all(&[b'\n'; LEN])?;
        file.sync_data()?;
        std::fs::rename(&new, dir.join(&name))
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&new);
    }
    made
}

/// Whether a journal named `name` that names `tasks` and whose lock is
/// free is a spare ready to take, not a dead process's journal (nor a
/// spare whose maker died before it was ready).
pub(super) fn unused(name: &str, tasks: &[String]) -> bool {
    tasks.is_empty() && is_ready(name)
}
