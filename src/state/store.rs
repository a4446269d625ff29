//! The `.mtr/state` file: atomic writes, a lock around read-modify-write,
//! and a corrupt or foreign file treated as empty (with a warning).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{STATE_VERSION, State, TaskRecord};
use crate::hashing::FileEntry;

const MAGIC: &[u8; 8] = b"MTRSTATE";

/// Changes one run makes to the state, merged into whatever is on disk.
#[derive(Debug, Default)]
pub struct Update {
    pub set: HashMap<String, TaskRecord>,
    pub remove: HashSet<String>,
    pub files: HashMap<String, FileEntry>,
}

impl Update {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty() && self.files.is_empty()
    }
}

/// The `.mtr/` directory of one project.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store { dir: root.join(".mtr") }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Loads the state; a missing file is empty, a bad one is empty plus a
    /// warning to show.
    pub fn load(&self) -> (State, Option<String>) {
        let bytes = match std::fs::read(self.path()) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (State::default(), None),
            Err(e) => {
                return (
                    State::default(),
                    Some(format!("cannot read `.mtr/state` ({e}); every task will run")),
                );
            }
        };
        match decode(&bytes) {
            Ok(state) => (state, None),
            Err(why) => (
                State::default(),
                Some(format!("`.mtr/state` {why}; ignoring it, so every task will run")),
            ),
        }
    }

    /// Merges `update` into the state on disk under an exclusive lock, so
    /// concurrent `mtr` processes never lose each other's records.
    pub fn commit(&self, update: &Update) -> std::io::Result<()> {
        if update.is_empty() {
            return Ok(());
        }
        self.ensure_dir()?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lock"))?;
        lock.lock()?;
        let (mut state, _) = self.load();
        for name in &update.remove {
            state.tasks.remove(name);
        }
        state
            .tasks
            .extend(update.set.iter().map(|(k, v)| (k.clone(), v.clone())));
        state.files.extend(update.files.iter().map(|(k, v)| (k.clone(), *v)));
        // Keep the stat cache to files some task still reads or writes.
        let live: HashSet<&str> = state
            .tasks
            .values()
            .flat_map(|t| {
                t.parts
                    .inputs
                    .iter()
                    .map(|(p, _, _)| p.as_str())
                    .chain(t.outputs.iter().map(|(p, _)| p.as_str()))
            })
            .collect();
        let live: HashSet<String> = live.into_iter().map(str::to_owned).collect();
        state
            .files
            .retain(|k, _| live.contains(k) || update.files.contains_key(k));
        let result = self.write_atomic(&encode(&state));
        let _ = lock.unlock();
        result
    }

    fn ensure_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let ignore = self.dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(ignore, "# written by mtr: its state is local to this checkout\n*\n")?;
        }
        Ok(())
    }

    fn write_atomic(&self, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("state.tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.path())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

fn encode(state: &State) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + state.files.len() * 96);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&STATE_VERSION.to_le_bytes());
    // Encoding plain data into a Vec cannot fail.
    let body = postcard::to_allocvec(state).unwrap_or_default();
    out.extend_from_slice(blake3::hash(&body).as_bytes());
    out.extend_from_slice(&body);
    out
}

fn decode(bytes: &[u8]) -> Result<State, String> {
    if bytes.len() < 44 || &bytes[..8] != MAGIC {
        return Err("is not an mtr state file (corrupt?)".into());
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != STATE_VERSION {
        return Err(format!(
            "was written by another mtr version (format {version}, this mtr uses {STATE_VERSION})"
        ));
    }
    let (sum, body) = bytes[12..].split_at(32);
    if blake3::hash(body).as_bytes() != sum {
        return Err("is corrupt (checksum mismatch)".into());
    }
    postcard::from_bytes(body).map_err(|e| format!("is corrupt ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let mut s = State::default();
        s.files.insert(
            "a".into(),
            FileEntry {
                stat: Default::default(),
                hash: [7; 32],
            },
        );
        let bytes = encode(&s);
        assert_eq!(decode(&bytes).unwrap().files["a"].hash, [7; 32]);
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode(&bad).is_err());
        assert!(decode(b"garbage").is_err());
    }
}
