//! A task's journal entry begun on another thread while the task is still
//! being judged. An input's stat changed, so it most likely runs: as soon
//! as the check of its record finds that input, the entry's sync (0.5-1 ms:
//! a new file, so a file system commit) begins, and overlaps stat'ing the
//! other inputs, hashing the changed ones, the fingerprint and the start
//! of the runtime instead of delaying the command.

use std::thread::JoinHandle;

use super::Store;

/// A journal entry being written; taken back when dropped unconfirmed.
pub struct EarlyBegin {
    thread: Option<JoinHandle<()>>,
    store: Store,
    task: String,
}

impl Store {
    /// Begins `task` (see [`Store::begin`]) on another thread; `None` when
    /// no thread can be started (the task then begins when it starts).
    pub fn begin_early(&self, task: &str) -> Option<EarlyBegin> {
        let (store, name) = (self.clone(), task.to_string());
        let thread = std::thread::Builder::new()
            .name("mtr-journal".into())
            .spawn(move || store.begin(&name))
            .ok()?;
        Some(EarlyBegin {
            thread: Some(thread),
            store: self.clone(),
            task: task.to_string(),
        })
    }
}

impl EarlyBegin {
    /// The task starts: the entry stands. [`Store::begin`] still follows,
    /// and returns once the entry is on disk.
    pub fn confirm(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EarlyBegin {
    /// The task did not start (up to date after all, or failed to
    /// prepare): the commit leaves its record as it is.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
            self.store.withdraw(&self.task);
        }
    }
}
