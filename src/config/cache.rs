//! The last valid `montage.toml` as loaded, in `.mtr/config`, so a large
//! config is not parsed and checked again on every run: for 1,000 tasks
//! (80 KB) that took ~4 ms, most of a no-op, where reading the cached
//! model takes a fraction of it.
//!
//! The cache is keyed by a hash of the config's text, its file name, this
//! mtr's version and its executable's size and mtime, so any edit (or
//! another mtr, or a rebuilt one whose model may differ) parses the file
//! again.
//! Only a config that loaded without errors is kept; a missing, stale or
//! unreadable cache is ignored, and one that cannot be written is not an
//! error. It is written only into an existing `.mtr/` (a project where
//! tasks ran), never creating one. It holds what the file says (never a
//! value from the environment or a command), and a config with a secret
//! written in it is not cached at all: no secret is copied into `.mtr/`.

use std::path::{Path, PathBuf};

use super::model::Config;

const MAGIC: &[u8; 8] = b"MTRCONF1";
/// Magic, key, then a checksum of the body (postcard reads most damaged
/// bytes as some other valid config).
const HEADER: usize = MAGIC.len() + 32 + 32;

/// Where the cache of the project at `root` lives.
fn path(root: &Path) -> PathBuf {
    root.join(".mtr").join("config")
}

/// What the cache of a config with this text and file name is keyed by.
pub fn key(text: &str, name: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for part in [env!("CARGO_PKG_VERSION"), &build(), name, text] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// This executable's size and mtime: a rebuilt mtr may read the model
/// differently even with the same version number.
fn build() -> String {
    let exe = std::env::current_exe().and_then(std::fs::metadata);
    match exe.as_ref().map(|m| (m.len(), m.modified())) {
        Ok((len, Ok(t))) => format!("{len} {t:?}"),
        _ => String::new(),
    }
}

/// The cached model for `key`, without its file, root and source.
pub fn read(root: &Path, key: &[u8; 32]) -> Option<Config> {
    let bytes = std::fs::read(path(root)).ok()?;
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC || &bytes[MAGIC.len()..MAGIC.len() + 32] != key {
        return None;
    }
    let body = &bytes[HEADER..];
    if blake3::hash(body).as_bytes() != &bytes[HEADER - 32..HEADER] {
        return None;
    }
    postcard::from_bytes(body).ok()
}

/// Keeps `config` for `key` (atomically: write, then rename), if the
/// project has a `.mtr/` directory.
pub fn write(root: &Path, key: &[u8; 32], config: &Config) {
    if has_secrets(config) {
        return;
    }
    let dest = path(root);
    if !dest.parent().is_some_and(Path::is_dir) {
        return;
    }
    let Ok(body) = postcard::to_allocvec(config) else {
        return;
    };
    // Not being able to write it is not an error.
    let _ = crate::atomic_file::write(&dest, &[MAGIC, key, blake3::hash(&body).as_bytes(), &body]);
}

/// Whether the config marks anything it holds as secret.
fn has_secrets(config: &Config) -> bool {
    config.vars.values().any(|v| v.secret)
        || config.env.iter().any(|(_, t)| t.secret)
        || config.tasks.values().any(|t| t.templates().iter().any(|t| t.secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::load;

    /// The example project, copied with a `.mtr/` beside it.
    fn project() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/montage-ai/montage.toml");
        std::fs::copy(example, t.path().join("montage.toml")).unwrap();
        std::fs::create_dir(t.path().join(".mtr")).unwrap();
        t
    }

    /// Everything of a config but where it came from, to compare.
    fn model(c: &Config) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            c.project, c.vars, c.env, c.tasks, c.aliases, c.builders, c.cache
        )
    }

    #[test]
    fn a_cached_config_is_the_config_it_was_parsed_as() {
        let t = project();
        let file = t.path().join("montage.toml");
        let parsed = load(&file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let key = key(&text, "montage.toml");
        let cached = read(&parsed.root, &key).expect("written by the load");
        assert_eq!(model(&cached), model(&parsed));
        // Image, container and deploy actions, vars, env, builders: all kept.
        assert!(parsed.tasks.len() > 5 && !parsed.vars.is_empty(), "{}", model(&parsed));
        let again = load(&file).unwrap();
        assert_eq!(model(&again), model(&parsed));
        assert_eq!((again.file, again.root), (parsed.file, parsed.root));
        assert_eq!(again.source.inner(), &text);
    }

    #[test]
    fn another_text_name_or_a_damaged_cache_is_not_used() {
        let t = project();
        let file = t.path().join("montage.toml");
        let parsed = load(&file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(read(&parsed.root, &key(&text, "montage.toml")).is_some());
        assert!(read(&parsed.root, &key(&format!("{text}\n"), "montage.toml")).is_none());
        assert!(read(&parsed.root, &key(&text, "other.toml")).is_none());
        let cache = path(&parsed.root);
        let bytes = std::fs::read(&cache).unwrap();
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        for damaged in [&bytes[..bytes.len() / 2], &flipped] {
            std::fs::write(&cache, damaged).unwrap();
            assert!(read(&parsed.root, &key(&text, "montage.toml")).is_none());
        }
        // Loaded again from the text, and cached again.
        assert_eq!(model(&load(&file).unwrap()), model(&parsed));
        assert!(read(&parsed.root, &key(&text, "montage.toml")).is_some());
    }

    #[test]
    fn a_config_with_a_secret_in_it_is_not_cached() {
        let t = project();
        let file = t.path().join("montage.toml");
        let secret = "[tasks.t]\nenv = { PASSWORD = { value = \"hunter2\", secret = true } }\nrun = \"true\"\n";
        let var = "[vars.token]\nsecret = true\ndefault = \"hunter2\"\n[tasks.t]\nrun = \"true\"\n";
        let plain = "[tasks.t]\nenv = { PLAIN = \"value\" }\nrun = \"true\"\n";
        for (text, cached) in [(secret, false), (var, false), (plain, true)] {
            let _ = std::fs::remove_file(path(t.path()));
            std::fs::write(&file, text).unwrap();
            load(&file).unwrap();
            assert_eq!(path(t.path()).exists(), cached, "{text}");
        }
    }

    #[test]
    fn no_mtr_directory_is_created_for_it() {
        let t = project();
        std::fs::remove_dir(t.path().join(".mtr")).unwrap();
        load(&t.path().join("montage.toml")).unwrap();
        assert!(!t.path().join(".mtr").exists());
    }
}
