//! One task's cache artifact: a JSON config that lists every output entry
//! (path, kind, mode, size, blake3), a tar of those entries, and the log.
//!
//! Restoring never touches the work tree until everything is verified:
//! the tar is unpacked into a staging directory under `.mtr/`, each file
//! checked against the list, then each output is renamed into place (a
//! literal directory output is swapped whole, so no stale file survives).

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

/// The manifest's `artifactType`.
pub const ARTIFACT_TYPE: &str = "application/vnd.mtr.task-cache.v1";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.mtr.task-cache.config.v1+json";
pub const OUTPUTS_MEDIA_TYPE: &str = "application/vnd.mtr.task-cache.outputs.v1.tar";
pub const LOG_MEDIA_TYPE: &str = "application/vnd.mtr.task-cache.log.v1";

/// Bumped when the layout changes; other versions are a cache miss.
const FORMAT: u32 = 1;

/// Outputs bigger than this are not pushed (the artifact is built in
/// memory).
pub const MAX_BYTES: u64 = 2 << 30;

/// The config blob: what the artifact is for and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    pub task: String,
    /// The task's fingerprint, hex.
    pub fingerprint: String,
    /// The task's output patterns, rendered.
    pub outputs: Vec<String>,
    /// Directories first (parents before children), then files and links.
    pub entries: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Item {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        size: u64,
        blake3: String,
    },
    Link {
        path: String,
        target: String,
    },
}

impl Item {
    pub fn path(&self) -> &str {
        match self {
            Item::Dir { path, .. } | Item::File { path, .. } | Item::Link { path, .. } => path,
        }
    }
}

impl Meta {
    pub fn new(task: &str, fingerprint: &str, outputs: &[String]) -> Meta {
        Meta {
            format: FORMAT,
            task: task.to_string(),
            fingerprint: fingerprint.to_string(),
            outputs: outputs.to_vec(),
            entries: Vec::new(),
        }
    }

    /// Whether an artifact with this config can stand for a run of a task
    /// with `fingerprint` and `outputs`.
    pub fn fits(&self, fingerprint: &str, outputs: &[String]) -> bool {
        self.format == FORMAT && self.fingerprint == fingerprint && self.outputs == outputs
    }

    /// Total size of the files.
    pub fn bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|i| match i {
                Item::File { size, .. } => *size,
                _ => 0,
            })
            .sum()
    }
}

/// Why an artifact could not be built.
#[derive(Debug)]
pub enum PackError {
    TooLarge(u64),
    Io(String),
}

/// Packs the output files `files` (paths relative to `root`, as the
/// task's record lists them) into `meta` and a tar.
pub fn pack(root: &Path, files: &[String], meta: &mut Meta) -> Result<Vec<u8>, PackError> {
    let io = |path: &str, e: io::Error| PackError::Io(format!("cannot read `{path}`: {e}"));
    let mut dirs = BTreeSet::new();
    for f in files {
        let mut end = 0;
        while let Some(i) = f[end..].find('/') {
            end += i;
            dirs.insert(&f[..end]);
            end += 1;
        }
    }
    let mut tar = tar::Builder::new(Vec::new());
    if !files.is_empty() {
        nonce(&mut tar).map_err(|e| PackError::Io(e.to_string()))?;
    }
    let mut total = 0u64;
    for dir in dirs {
        let m = fs::metadata(root.join(dir)).map_err(|e| io(dir, e))?;
        let mode = m.permissions().mode() & 0o7777;
        let mut h = header(tar::EntryType::Directory, mode, &m);
        tar.append_data(&mut h, dir, io::empty()).map_err(|e| io(dir, e))?;
        meta.entries.push(Item::Dir {
            path: dir.to_string(),
            mode,
        });
    }
    for f in files {
        let path = root.join(f);
        let m = fs::symlink_metadata(&path).map_err(|e| io(f, e))?;
        if m.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(|e| io(f, e))?;
            let mut h = header(tar::EntryType::Symlink, 0o777, &m);
            tar.append_link(&mut h, f, &target).map_err(|e| io(f, e))?;
            meta.entries.push(Item::Link {
                path: f.clone(),
                target: target.to_string_lossy().into_owned(),
            });
            continue;
        }
        // Read whole, so the tar, the size and the hash agree even if the
        // file changes meanwhile.
        let data = fs::read(&path).map_err(|e| io(f, e))?;
        total += data.len() as u64;
        if total > MAX_BYTES {
            return Err(PackError::TooLarge(total));
        }
        let mode = m.permissions().mode() & 0o7777;
        let mut h = header(tar::EntryType::Regular, mode, &m);
        h.set_size(data.len() as u64);
        tar.append_data(&mut h, f, data.as_slice()).map_err(|e| io(f, e))?;
        meta.entries.push(Item::File {
            path: f.clone(),
            mode,
            size: data.len() as u64,
            blake3: blake3::hash(&data).to_hex().to_string(),
        });
    }
    tar.into_inner().map_err(|e| PackError::Io(e.to_string()))
}

/// A PAX record unique to this push, so every push is a new blob: a blob
/// that was damaged in the registry's storage is replaced by the next push
/// instead of being kept because "a blob with that digest exists".
fn nonce(tar: &mut tar::Builder<Vec<u8>>) -> io::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let body = format!("mtr.pushed={now}-{}\n", std::process::id());
    // A record is "LEN key=value\n", LEN counting itself.
    let mut len = body.len() + 2;
    while format!("{len} {body}").len() != len {
        len += 1;
    }
    let record = format!("{len} {body}");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_mode(0o644);
    h.set_size(record.len() as u64);
    tar.append_data(&mut h, "PaxHeader", record.as_bytes())
}

fn header(kind: tar::EntryType, mode: u32, m: &fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(0);
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    h.set_mtime(mtime);
    h
}

/// A relative path of plain components, never into `.mtr/` or `.git/`.
fn safe(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty()
        && !path.contains('\\')
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !matches!(path.split('/').next(), Some(".mtr" | ".git"))
}

/// Checks the list itself: safe paths, no repeats, and nothing below a
/// file or link (which could lead a later entry out of the tree).
fn check(meta: &Meta) -> Result<(), String> {
    let mut dirs = HashSet::new();
    let mut seen = HashSet::new();
    for item in &meta.entries {
        let path = item.path();
        if !safe(path) {
            return Err(format!("unsafe path `{path}`"));
        }
        if !seen.insert(path) {
            return Err(format!("`{path}` listed twice"));
        }
        if let Some((parent, _)) = path.rsplit_once('/')
            && !dirs.contains(parent)
        {
            return Err(format!("`{path}` comes before its directory"));
        }
        if let Item::Dir { .. } = item {
            dirs.insert(path);
        }
    }
    Ok(())
}

/// Unpacks `tar` into `stage` (a new, empty directory) and checks every
/// entry against `meta`: same paths in the same order, same kinds, sizes
/// and blake3 hashes, nothing more and nothing less.
pub fn unpack(tar: &Path, meta: &Meta, stage: &Path) -> Result<(), String> {
    check(meta)?;
    let file = fs::File::open(tar).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(io::BufReader::new(file));
    let mut entries = archive.entries().map_err(|e| format!("not a tar: {e}"))?;
    for item in &meta.entries {
        let mut entry = match entries.next() {
            Some(Ok(e)) => e,
            Some(Err(e)) => return Err(format!("unreadable tar: {e}")),
            None => return Err(format!("the tar ends before `{}`", item.path())),
        };
        let name = entry.path().map_err(|e| e.to_string())?.to_string_lossy().into_owned();
        if name.trim_end_matches('/') != item.path() {
            return Err(format!("the tar holds `{name}` where `{}` was listed", item.path()));
        }
        let dest = stage.join(item.path());
        let kind = entry.header().entry_type();
        match item {
            Item::Dir { .. } if kind.is_dir() => fs::create_dir(&dest).map_err(|e| e.to_string())?,
            Item::Link { target, .. } if kind.is_symlink() => {
                let got = entry.link_name().map_err(|e| e.to_string())?;
                if got.as_deref() != Some(Path::new(target)) {
                    return Err(format!("link `{}` points elsewhere", item.path()));
                }
                std::os::unix::fs::symlink(target, &dest).map_err(|e| e.to_string())?;
            }
            Item::File { mode, size, blake3, .. } if kind.is_file() => {
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&dest)
                    .map_err(|e| format!("cannot write `{}`: {e}", dest.display()))?;
                let mut hasher = blake3::Hasher::new();
                let mut buf = vec![0u8; 256 * 1024];
                let mut written = 0u64;
                loop {
                    let n = entry.read(&mut buf).map_err(|e| format!("unreadable tar: {e}"))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
                    written += n as u64;
                }
                if written != *size || hasher.finalize().to_hex().as_str() != blake3 {
                    return Err(format!("`{}` does not match its digest", item.path()));
                }
                fs::set_permissions(&dest, fs::Permissions::from_mode(*mode)).map_err(|e| e.to_string())?;
            }
            _ => return Err(format!("`{}` has the wrong kind in the tar", item.path())),
        }
    }
    if let Some(extra) = entries.next() {
        let name = extra
            .ok()
            .and_then(|e| e.path().ok().map(|p| p.display().to_string()))
            .unwrap_or_default();
        return Err(format!("the tar holds more than listed (`{name}`)"));
    }
    Ok(())
}

/// A literal output pattern, as `inputs` cleans it (`./dist/` → `dist`).
fn literal(pattern: &str) -> Option<&str> {
    let p = pattern.trim_start_matches("./").trim_end_matches('/');
    (!pattern.starts_with('!') && !p.contains(['*', '?', '[', '{'])).then_some(p)
}

fn under(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// Moves the verified `stage` into `root`: a literal directory output is
/// swapped whole (the old one moved to `trash`, then deleted), every other
/// file or link is renamed over its old self; missing directories are
/// made with the artifact's modes.
pub fn install(stage: &Path, root: &Path, trash: &Path, meta: &Meta) -> io::Result<()> {
    let swapped: Vec<&str> = meta
        .outputs
        .iter()
        .filter_map(|p| literal(p))
        .filter(|lit| {
            meta.entries
                .iter()
                .any(|i| matches!(i, Item::Dir { path, .. } if path == lit))
        })
        .collect();
    let in_swapped = |path: &str| swapped.iter().any(|d| under(path, d));
    // Directories that get the artifact's mode once filled (a read-only
    // one could not be filled after).
    let mut moded: Vec<(&str, u32)> = Vec::new();
    for item in &meta.entries {
        let Item::Dir { path, mode } = item else { continue };
        if in_swapped(path) {
            moded.push((path, *mode));
            continue;
        }
        if swapped.iter().any(|d| under(d, path)) {
            continue;
        }
        let dest = root.join(path);
        match fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => fs::remove_file(&dest)?,
            Err(_) => {}
        }
        fs::create_dir_all(&dest)?;
        moded.push((path, *mode));
    }
    fs::create_dir_all(trash)?;
    for (n, dir) in swapped.iter().enumerate() {
        let dest = root.join(dir);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let old = trash.join(n.to_string());
        let had_old = fs::symlink_metadata(&dest).is_ok();
        if had_old {
            fs::rename(&dest, &old)?;
        }
        if let Err(e) = fs::rename(stage.join(dir), &dest) {
            if had_old {
                let _ = fs::rename(&old, &dest);
            }
            return Err(e);
        }
    }
    for (n, item) in meta.entries.iter().enumerate() {
        let path = item.path();
        if matches!(item, Item::Dir { .. }) || in_swapped(path) {
            continue;
        }
        let dest = root.join(path);
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
            fs::rename(&dest, trash.join(format!("f{n}")))?;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(stage.join(path), &dest)?;
    }
    for (path, mode) in moded.iter().rev() {
        fs::set_permissions(root.join(path), fs::Permissions::from_mode(*mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, data: &str, mode: u32) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn packed(root: &Path, files: &[&str], outputs: &[&str]) -> (Meta, std::path::PathBuf) {
        let outputs: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
        let mut meta = Meta::new("t", "ff", &outputs);
        let files: Vec<String> = files.iter().map(|s| s.to_string()).collect();
        let tar = pack(root, &files, &mut meta).unwrap();
        let path = root.join("artifact.tar");
        fs::write(&path, tar).unwrap();
        (meta, path)
    }

    #[test]
    fn round_trip_keeps_content_modes_and_links() {
        let src = tempfile::tempdir().unwrap();
        write(src.path(), "dist/bin/tool", "#!/bin/sh\n", 0o755);
        write(src.path(), "dist/readme.txt", "hello", 0o640);
        std::os::unix::fs::symlink("bin/tool", src.path().join("dist/tool")).unwrap();
        let (meta, tar) = packed(
            src.path(),
            &["dist/bin/tool", "dist/readme.txt", "dist/tool"],
            &["dist"],
        );
        assert!(matches!(&meta.entries[0], Item::Dir { path, .. } if path == "dist"));

        let dst = tempfile::tempdir().unwrap();
        // A stale file in the old output directory must not survive.
        write(dst.path(), "dist/stale", "old", 0o644);
        let stage = dst.path().join(".mtr/stage");
        fs::create_dir_all(&stage).unwrap();
        unpack(&tar, &meta, &stage).unwrap();
        install(&stage, dst.path(), &dst.path().join(".mtr/trash"), &meta).unwrap();
        let d = dst.path();
        assert_eq!(fs::read_to_string(d.join("dist/readme.txt")).unwrap(), "hello");
        let mode = |p: &str| fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("dist/bin/tool"), 0o755);
        assert_eq!(mode("dist/readme.txt"), 0o640);
        assert_eq!(fs::read_link(d.join("dist/tool")).unwrap(), Path::new("bin/tool"));
        assert!(!d.join("dist/stale").exists());
    }

    #[test]
    fn glob_outputs_are_renamed_file_by_file() {
        let src = tempfile::tempdir().unwrap();
        write(src.path(), "build/a.o", "A", 0o644);
        let (meta, tar) = packed(src.path(), &["build/a.o"], &["build/*.o"]);
        let dst = tempfile::tempdir().unwrap();
        write(dst.path(), "build/keep.c", "source", 0o644);
        let stage = dst.path().join("stage");
        fs::create_dir(&stage).unwrap();
        unpack(&tar, &meta, &stage).unwrap();
        install(&stage, dst.path(), &dst.path().join("trash"), &meta).unwrap();
        assert_eq!(fs::read_to_string(dst.path().join("build/a.o")).unwrap(), "A");
        assert_eq!(fs::read_to_string(dst.path().join("build/keep.c")).unwrap(), "source");
    }

    #[test]
    fn empty_and_repeated_packs() {
        let src = tempfile::tempdir().unwrap();
        let (meta, tar) = packed(src.path(), &[], &["build/*.o"]);
        assert!(meta.entries.is_empty());
        let stage = src.path().join("stage");
        fs::create_dir(&stage).unwrap();
        unpack(&tar, &meta, &stage).unwrap();
        // Two pushes of the same files are two blobs (see `nonce`).
        write(src.path(), "a", "x", 0o644);
        let mut m = Meta::new("t", "ff", &[]);
        let one = pack(src.path(), &["a".into()], &mut m).unwrap();
        let two = pack(src.path(), &["a".into()], &mut m).unwrap();
        assert_ne!(one, two);
    }

    #[test]
    fn tampering_is_caught() {
        let src = tempfile::tempdir().unwrap();
        write(src.path(), "out.txt", "original", 0o644);
        let (meta, tar) = packed(src.path(), &["out.txt"], &["out.txt"]);
        let mut bytes = fs::read(&tar).unwrap();
        let at = bytes.windows(8).position(|w| w == b"original").unwrap();
        bytes[at] = b'O';
        fs::write(&tar, bytes).unwrap();
        let stage = src.path().join("stage");
        fs::create_dir(&stage).unwrap();
        let e = unpack(&tar, &meta, &stage).unwrap_err();
        assert!(e.contains("does not match its digest"), "{e}");
    }

    #[test]
    fn unsafe_lists_are_refused() {
        #[track_caller]
        fn refused(entries: Vec<Item>, needle: &str) {
            let meta = Meta {
                entries,
                ..Meta::new("t", "ff", &[])
            };
            let e = check(&meta).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        let file = |p: &str| Item::File {
            path: p.into(),
            mode: 0o644,
            size: 0,
            blake3: String::new(),
        };
        refused(vec![file("../etc/passwd")], "unsafe");
        refused(vec![file("/etc/passwd")], "unsafe");
        refused(vec![file(".mtr/state")], "unsafe");
        refused(vec![file("a/b")], "before its directory");
        refused(
            vec![
                Item::Link {
                    path: "a".into(),
                    target: "/etc".into(),
                },
                file("a/passwd"),
            ],
            "before its directory",
        );
        refused(vec![file("x"), file("x")], "twice");
    }
}
