//! Resolving `inputs`/`outputs` globs to files under the project root.
//!
//! Only the literal base directory of each glob is walked (`src/**` walks
//! `src/`), symlinks are never followed (a link is an entry of its own,
//! hashed by its target path), and `.git/` and the root's `.mtr/` are
//! never entered.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::hashing::FileEntry;
use crate::open_dirs::OpenDirs;
use crate::walk::{self, Rules, Top};

/// One file (or symlink) matched by a task's globs.
///
/// Boxed strings (not `String`/`PathBuf`): a walk of 100,000 files holds
/// two or three copies of the list at its peak, and every byte per entry
/// shows in the peak memory.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the root, `/`-separated.
    pub rel: Box<str>,
    pub stat: Stat,
    /// For a symlink, the path it points to (hashed instead of content).
    pub link: Option<Box<Path>>,
}

/// A file name as it appears in an [`Entry`]'s `rel`: the name itself when
/// it is UTF-8 (nearly always), else with each byte that is not part of
/// valid UTF-8 written as NUL and two hex digits. No real name holds a NUL,
/// so two names never share a key, and [`key_path`] turns a key back into
/// the name (a lossy conversion would do neither).
pub fn name_key(name: &OsStr) -> Cow<'_, str> {
    if let Some(s) = name.to_str() {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    for chunk in name.as_encoded_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\0{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// The relative path that a `rel` key names (see [`name_key`]).
pub fn key_path(key: &str) -> Cow<'_, Path> {
    if !key.contains('\0') {
        return Cow::Borrowed(Path::new(key));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        let mut bytes = Vec::with_capacity(key.len());
        let mut rest = key;
        while let Some(at) = rest.find('\0') {
            bytes.extend_from_slice(&rest.as_bytes()[..at]);
            match rest.get(at + 1..at + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    bytes.push(b);
                    rest = &rest[at + 3..];
                }
                None => rest = &rest[at + 1..],
            }
        }
        bytes.extend_from_slice(rest.as_bytes());
        Cow::Owned(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    }
    #[cfg(not(unix))]
    Cow::Borrowed(Path::new(key))
}

/// A `rel` key as people read it: a byte that is not UTF-8 as `\xff`.
pub fn display_key(key: &str) -> Cow<'_, str> {
    if key.contains('\0') {
        Cow::Owned(key.replace('\0', "\\x"))
    } else {
        Cow::Borrowed(key)
    }
}

/// What the stat cache compares to decide a file need not be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub mode: u32,
}

impl Stat {
    #[cfg(unix)]
    pub fn of(m: &Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            size: m.size(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ino: m.ino(),
            mode: m.mode(),
        }
    }

    #[cfg(not(unix))]
    pub fn of(m: &Metadata) -> Stat {
        let ns = |t: std::io::Result<std::time::SystemTime>| {
            t.ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0)
        };
        Stat {
            size: m.len(),
            mtime_ns: ns(m.modified()),
            ctime_ns: ns(m.created()),
            ino: 0,
            mode: if m.permissions().readonly() { 0o444 } else { 0o644 },
        }
    }

    pub fn executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// The outcome of resolving a list of globs.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Matched files, sorted by path, without duplicates.
    pub files: Vec<Entry>,
    /// Literal paths (no glob characters) that do not exist.
    pub missing: Vec<String>,
    /// Globs that matched nothing.
    pub empty: Vec<String>,
    /// With [`resolve_hashing`], what its hash function gave for each file
    /// the walk found (`None` for the others); else empty.
    pub hashes: Vec<Option<FileEntry>>,
    /// Every directory read, in path order, when these and the patterns
    /// alone decided which files were found; `None` when a glob's base
    /// directory was missing or not a directory (then the entries of a
    /// directory not read decided it too).
    pub read: Option<Vec<walk::ReadDir>>,
}

/// Why globs could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("invalid glob `{0}`: {1}")]
    Glob(String, String),
    #[error("cannot read `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
}

pub(crate) fn io_err(root: &Path, path: &Path, source: std::io::Error) -> InputError {
    let rel = path.strip_prefix(root).unwrap_or(path);
    InputError::Io {
        path: rel.display().to_string(),
        source,
    }
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

fn build(pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| e.kind().to_string())
}

/// Checks a glob's syntax (for load-time diagnostics). globset's parser
/// only fails on a class (`[`), alternates (`{`, `}`) or an escape (`\`):
/// a glob without them is valid without a parse (a config of 1,000 tasks
/// has thousands of globs).
pub fn check_glob(pattern: &str) -> Result<(), String> {
    if !pattern.contains(['[', ']', '{', '}', '\\']) {
        return Ok(());
    }
    build(clean(pattern.strip_prefix('!').unwrap_or(pattern))).map(|_| ())
}

fn clean(p: &str) -> &str {
    let p = p.trim_start_matches("./");
    let p = p.trim_end_matches('/');
    // `.` is the root itself, walked as `""` so paths do not start `./`.
    if p == "." { "" } else { p }
}

/// Whether a relative path lies in `.git/` (anywhere) or the root's
/// `.mtr/`, which are never inputs.
fn forbidden(rel: &str) -> bool {
    rel == ".mtr" || rel.starts_with(".mtr/") || rel.split('/').any(|c| c == ".git")
}

/// The path of the file or directory at key `rel` (`""`: the root itself)
/// under `root`.
pub(crate) fn path_of(root: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(key_path(rel))
    }
}

/// Whether `dir` is `o` or lies inside it.
pub(crate) fn within(dir: &str, o: &str) -> bool {
    o.is_empty() || dir == o || (dir.starts_with(o) && dir.as_bytes().get(o.len()) == Some(&b'/'))
}

/// Resolves `patterns` (globs; `!` excludes) under `root`; `want_empty`
/// also lists the globs that matched nothing.
pub fn resolve(root: &Path, patterns: &[String], want_empty: bool) -> Result<Resolution, InputError> {
    resolve_with(root, patterns, want_empty, None)
}

/// Like [`resolve`], hashing each file with `hash` as the walk finds it
/// (a cold run: nothing is cached, every file will be read anyway).
pub fn resolve_hashing(root: &Path, patterns: &[String], hash: &walk::HashFn<'_>) -> Result<Resolution, InputError> {
    resolve_with(root, patterns, false, Some(hash))
}

fn resolve_with(
    root: &Path,
    patterns: &[String],
    want_empty: bool,
    hash: Option<&walk::HashFn<'_>>,
) -> Result<Resolution, InputError> {
    let mut includes = GlobSetBuilder::new();
    let mut excludes = GlobSetBuilder::new();
    let mut prune = GlobSetBuilder::new();
    let mut bases: Vec<String> = Vec::new();
    // Directories whose every file some pattern includes: no matching there.
    let mut all_under: Vec<String> = Vec::new();
    let mut literals: Vec<String> = Vec::new();
    let mut globs: Vec<(&String, String)> = Vec::new();
    let (mut has_excludes, mut has_prune) = (false, false);
    for raw in patterns {
        if let Some(neg) = raw.strip_prefix('!') {
            let p = clean(neg);
            excludes.add(build(p).map_err(|e| InputError::Glob(raw.clone(), e))?);
            has_excludes = true;
            // `dir/**` excluded: skip walking `dir` at all.
            if let Some(dir) = p.strip_suffix("/**") {
                prune.add(build(dir).map_err(|e| InputError::Glob(raw.clone(), e))?);
                has_prune = true;
            }
            continue;
        }
        let p = clean(raw);
        if !has_meta(p) {
            literals.push(p.to_string());
            continue;
        }
        let base: Vec<&str> = p.split('/').take_while(|c| !has_meta(c)).collect();
        let base = base.join("/");
        let rest = if base.is_empty() { p } else { &p[base.len() + 1..] };
        if rest == "**" && !base.contains('\\') {
            all_under.push(base.clone());
        }
        bases.push(base);
        globs.push((raw, p.to_string()));
    }
    // Building a glob set costs more than walking a small tree (it sets
    // up Aho-Corasick and regex matchers), so skip the sets nothing will
    // consult: no excludes, or only `dir/**` includes, which the walk
    // answers by itself.
    let only_all_under = all_under.len() == globs.len();
    let finish = |b: GlobSetBuilder, needed: bool| match needed {
        false => Ok(GlobSet::empty()),
        true => b
            .build()
            .map_err(|e| InputError::Glob(patterns.join(" "), e.to_string())),
    };
    if want_empty || !only_all_under {
        for (raw, p) in &globs {
            includes.add(build(p).map_err(|e| InputError::Glob(raw.to_string(), e))?);
        }
    }
    let includes = finish(includes, want_empty || !only_all_under)?;
    let excludes = finish(excludes, has_excludes)?;
    let prune = finish(prune, has_prune)?;
    let mut res = Resolution::default();
    let mut files: Vec<Entry> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let root = crate::cwd::short_root(root);
    for lit in &literals {
        let path = root.join(lit);
        match std::fs::symlink_metadata(&path) {
            Ok(_) if forbidden(lit) => {}
            Ok(m) if m.is_dir() => {
                all_under.push(lit.clone());
                dirs.push(lit.clone());
            }
            Ok(m) => {
                if !excludes.is_match(lit) {
                    files.push(entry(root, lit.clone(), &path, &m)?);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => res.missing.push(lit.clone()),
            Err(e) => return Err(io_err(root, &path, e)),
        }
    }
    let mut opened: Vec<(String, crate::dirents::Dir)> = Vec::new();
    let mut bases_read = true;
    for base in bases {
        if forbidden(&base) {
            continue;
        }
        let path = if base.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&base)
        };
        // Opened as a directory at once (the walk starts from this handle),
        // so a base costs no stat of its own; a file or symlink is stat'ed.
        match crate::dirents::Dir::open(&path) {
            Ok(dir) => {
                dirs.push(base.clone());
                opened.push((base, dir));
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bases_read = false;
                continue;
            }
            Err(_) => {}
        }
        bases_read = false;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => dirs.push(base),
            Ok(m) => {
                if includes.is_match(base.as_str()) && !excludes.is_match(base.as_str()) {
                    files.push(entry(root, base.clone(), &path, &m)?);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(root, &path, e)),
        }
    }
    // Walk each directory once: drop those inside another.
    dirs.sort();
    dirs.dedup();
    let tops: Vec<Top> = dirs
        .iter()
        .filter(|d| !dirs.iter().any(|o| o != *d && within(d, o)))
        .map(|d| Top {
            rel: d.clone(),
            all: all_under.iter().any(|a| within(d, a)),
            dir: opened.iter().position(|(b, _)| b == d).map(|i| opened.swap_remove(i).1),
        })
        .collect();
    let rules = Rules {
        includes: &includes,
        excludes: &excludes,
        prune: &prune,
        all_under: &all_under,
        hash,
    };
    files.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    let (mut out, mut hashes, read) = walk::walk(root, tops, &rules, files)?;
    if !out.is_sorted_by(|a, b| a.rel < b.rel) {
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        out.dedup_by(|a, b| a.rel == b.rel);
        // Out of step with the files now: they are hashed the usual way.
        hashes.clear();
    }
    if want_empty {
        let mut seen = vec![false; globs.len()];
        for e in &out {
            for i in includes.matches(&*e.rel) {
                seen[i] = true;
            }
        }
        res.empty = globs
            .iter()
            .zip(seen)
            .filter(|(_, s)| !s)
            .map(|((_, g), _)| g.clone())
            .collect();
    }
    res.files = out;
    res.hashes = hashes;
    res.read = bases_read.then_some(read);
    Ok(res)
}

/// The entries (by index) whose file no longer has the stat it had, each
/// with its stat now (`None`: gone or unreadable), checked on every CPU:
/// after a task ran, a changed input means the run must not be recorded
/// against the content hashed before it, unless its content is the same.
/// Siblings are stat'ed relative to their directory, opened once, as the
/// walk does: one path component to resolve per file.
pub fn changed(root: &Path, entries: &[Entry]) -> Vec<(usize, Option<Stat>)> {
    let root = crate::cwd::short_root(root);
    let changed = |r: std::ops::Range<usize>| {
        let mut dir = OpenDir::new();
        let first = r.start;
        let part = &entries[r];
        part.iter()
            .enumerate()
            .filter_map(|(k, e)| {
                let now = dir.stat(root, &e.rel);
                (now != Some(e.stat)).then_some((first + k, now))
            })
            .collect::<Vec<_>>()
    };
    let parts = crate::parallel::map(crate::parallel::ranges(entries.len(), 2048), changed);
    parts.into_iter().flatten().collect()
}

/// The directories of the entries stat'ed, kept open for their siblings
/// (opened as paths, so a symlinked directory is followed, as the input's
/// path is).
struct OpenDir {
    // Elsewhere paths are stat'ed whole.
    #[cfg_attr(not(unix), allow(dead_code))]
    dirs: OpenDirs<Option<std::fs::File>>,
}

impl OpenDir {
    fn new() -> OpenDir {
        OpenDir { dirs: OpenDirs::new() }
    }

    /// The stat of the entry at key `rel` now, without following a
    /// symlink; `None` when it is gone or unreadable.
    fn stat(&mut self, root: &Path, rel: &str) -> Option<Stat> {
        #[cfg(unix)]
        {
            let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
            let dir = self
                .dirs
                .enter(parent, || Some(std::fs::File::open(path_of(root, parent)).ok()))?;
            stat_at(dir.as_ref()?, key_path(name).as_os_str()).ok()
        }
        #[cfg(not(unix))]
        std::fs::symlink_metadata(root.join(key_path(rel)))
            .map(|m| Stat::of(&m))
            .ok()
    }
}

/// `lstat` of `name` in `dir`.
#[cfg(unix)]
// The field types differ between Linux and macOS.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn stat_at(dir: &std::fs::File, name: &OsStr) -> std::io::Result<Stat> {
    use nix::fcntl::AtFlags;
    let s = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    Ok(Stat {
        size: s.st_size as u64,
        mtime_ns: s.st_mtime as i64 * 1_000_000_000 + s.st_mtime_nsec as i64,
        ctime_ns: s.st_ctime as i64 * 1_000_000_000 + s.st_ctime_nsec as i64,
        ino: s.st_ino as u64,
        mode: s.st_mode as u32,
    })
}

/// An entry for a path found without a directory walk.
fn entry(root: &Path, rel: String, path: &Path, m: &Metadata) -> Result<Entry, InputError> {
    let link = if m.file_type().is_symlink() {
        Some(std::fs::read_link(path).map_err(|e| io_err(root, path, e))?.into())
    } else {
        None
    };
    Ok(Entry {
        rel: rel.into(),
        stat: Stat::of(m),
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        dir
    }

    fn rels(root: &Path, patterns: &[&str]) -> Vec<String> {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        resolve(root, &patterns, false)
            .unwrap()
            .files
            .into_iter()
            .map(|e| e.rel.into())
            .collect()
    }

    #[test]
    fn globs_literals_and_excludes() {
        let t = tree(&[
            "src/a.py",
            "src/x/b.py",
            "src/x/__pycache__/b.pyc",
            "README.md",
            ".mtr/state",
            "src/.git/HEAD",
        ]);
        assert_eq!(
            rels(t.path(), &["src/**", "!src/**/__pycache__/**"]),
            ["src/a.py", "src/x/b.py"]
        );
        assert_eq!(rels(t.path(), &["*.md"]), ["README.md"]);
        assert_eq!(rels(t.path(), &["src/*.py"]), ["src/a.py"]);
        assert_eq!(
            rels(t.path(), &["src"]),
            ["src/a.py", "src/x/__pycache__/b.pyc", "src/x/b.py"]
        );
        assert_eq!(rels(t.path(), &["**/*.py", "src/**/*.py"]), ["src/a.py", "src/x/b.py"]);
        assert_eq!(rels(t.path(), &["{README.md,src/a.py}"]), ["README.md", "src/a.py"]);
    }

    #[test]
    fn reports_missing_literals_and_empty_globs() {
        let t = tree(&["a.txt"]);
        let r = resolve(t.path(), &["b.txt".into(), "*.rs".into(), "a.txt".into()], true).unwrap();
        assert_eq!(r.missing, ["b.txt"]);
        assert_eq!(r.empty, ["*.rs"]);
        assert_eq!(r.files.len(), 1);
    }

    #[test]
    fn git_and_mtr_are_never_inputs() {
        let t = tree(&[".mtr/state", ".git/HEAD", "src/.git/HEAD", "src/a.py", "sub/.mtr/kept"]);
        assert_eq!(rels(t.path(), &["**"]), ["src/a.py", "sub/.mtr/kept"]);
        assert_eq!(
            rels(t.path(), &[".mtr/**", ".git/**", "src/.git/**"]),
            Vec::<String>::new()
        );
        let r = resolve(
            t.path(),
            &[".mtr/state".into(), ".git".into(), "src/.git/HEAD".into()],
            false,
        )
        .unwrap();
        assert!(r.files.is_empty() && r.missing.is_empty());
        assert_eq!(rels(t.path(), &["."]), ["src/a.py", "sub/.mtr/kept"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_entries_with_their_target() {
        let t = tree(&["src/a.py", "other/b.py"]);
        std::os::unix::fs::symlink("../other", t.path().join("src/dir-link")).unwrap();
        std::os::unix::fs::symlink("a.py", t.path().join("src/file-link")).unwrap();
        std::os::unix::fs::symlink("/nowhere", t.path().join("src/dangling")).unwrap();
        let r = resolve(t.path(), &["src/**".into(), "src/file-link".into()], false).unwrap();
        let got: Vec<(&str, Option<&Path>)> = r.files.iter().map(|e| (&*e.rel, e.link.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("src/a.py", None),
                ("src/dangling", Some(Path::new("/nowhere"))),
                ("src/dir-link", Some(Path::new("../other"))),
                ("src/file-link", Some(Path::new("a.py"))),
            ]
        );
    }

    /// The walk before it went parallel: recursive, one directory at a
    /// time, everything sorted at the end. The reference for equivalence.
    fn simple(root: &Path, patterns: &[String]) -> Vec<(String, Stat, Option<PathBuf>)> {
        let set = |neg: bool| {
            let mut b = GlobSetBuilder::new();
            for p in patterns {
                match (neg, p.strip_prefix('!')) {
                    (true, Some(n)) => b.add(build(clean(n)).unwrap()),
                    (false, None) if has_meta(clean(p)) => b.add(build(clean(p)).unwrap()),
                    _ => &mut b,
                };
            }
            b.build().unwrap()
        };
        let (includes, excludes) = (set(false), set(true));
        fn walk(root: &Path, rel: &str, out: &mut Vec<(String, std::fs::Metadata)>) {
            for e in std::fs::read_dir(root.join(rel)).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                let child = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if forbidden(&child) {
                    continue;
                }
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                if m.is_dir() {
                    walk(root, &child, out);
                } else {
                    out.push((child, m));
                }
            }
        }
        let mut found = Vec::new();
        walk(root, "", &mut found);
        let literal_dirs: Vec<String> = patterns
            .iter()
            .filter(|p| !p.starts_with('!') && !has_meta(clean(p)))
            .map(|p| clean(p).to_string())
            .collect();
        let mut out: Vec<(String, Stat, Option<PathBuf>)> = found
            .into_iter()
            .filter(|(rel, _)| {
                (includes.is_match(rel.as_str()) || literal_dirs.iter().any(|d| within(rel, d)))
                    && !excludes.is_match(rel.as_str())
            })
            .map(|(rel, m)| {
                let link = m
                    .file_type()
                    .is_symlink()
                    .then(|| std::fs::read_link(root.join(&rel)).unwrap());
                (rel, Stat::of(&m), link)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A deterministic pseudo-random tree with awkward names: prefixes of
    /// each other, `.`/`-`/`_` sorting around `/`, deep and wide dirs.
    fn random_tree(seed: u64, files: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const NAMES: &[&str] = &[
            "a",
            "a.txt",
            "a-b",
            "a_b",
            "a0",
            "ab",
            "b",
            "b.py",
            "__pycache__",
            "x.pyc",
            ".git",
            ".mtr",
            "z",
        ];
        for _ in 0..files {
            let depth = 1 + next() % 5;
            let mut path = PathBuf::new();
            for d in 0..depth {
                let name = NAMES[(next() % NAMES.len() as u64) as usize];
                path.push(if d + 1 == depth {
                    format!("{name}{}", next() % 4)
                } else {
                    name.to_string()
                });
            }
            let full = dir.path().join(&path);
            if full.is_dir() || full.parent().is_some_and(|p| p.is_file()) {
                continue;
            }
            if std::fs::create_dir_all(full.parent().unwrap()).is_err() {
                continue;
            }
            let _ = std::fs::write(&full, path.to_string_lossy().as_bytes());
        }
        dir
    }

    #[test]
    fn parallel_walk_equals_the_simple_one() {
        let pattern_sets: &[&[&str]] = &[
            &["**"],
            &["a/**"],
            &["a/**", "!a/**/__pycache__/**"],
            &["**/*.pyc"],
            &["a", "b/**/*.py", "!**/a0*"],
            &["a.txt0", "a/**", "a/a/**", "b"],
            &["*", "a/*/b*"],
            &["**/a?/**", "!a/a/**"],
            &["{a,b}/**", "!**/*.txt?"],
        ];
        // Large enough for the walk to bring in helper threads.
        for (seed, files) in [(1, 300), (7, 4000), (42, 6000)] {
            let t = random_tree(seed, files);
            for patterns in pattern_sets {
                let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
                let got: Vec<(String, Stat, Option<PathBuf>)> = resolve(t.path(), &patterns, false)
                    .unwrap()
                    .files
                    .into_iter()
                    .map(|e| (e.rel.into(), e.stat, e.link.map(PathBuf::from)))
                    .collect();
                let want = simple(t.path(), &patterns);
                assert_eq!(got.len(), want.len(), "{patterns:?} (seed {seed})");
                assert_eq!(got, want, "{patterns:?} (seed {seed})");
            }
        }
        if std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
            assert!(walk::HELPERS_STARTED.load(std::sync::atomic::Ordering::Relaxed) > 0);
        }
    }

    #[test]
    fn changed_names_every_changed_input_with_its_stat_now() {
        let names: Vec<String> = (0..5000).map(|i| format!("d{}/f{i:05}", i % 10)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let t = tree(&refs);
        let es = resolve(t.path(), &["**".into()], false).unwrap().files;
        assert!(changed(t.path(), &es).is_empty());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(t.path().join("d7/f04007"), "changed").unwrap();
        std::fs::remove_file(t.path().join("d9/f04999")).unwrap();
        let got: Vec<(&str, bool)> = changed(t.path(), &es)
            .into_iter()
            .map(|(i, now)| (&*es[i].rel, now.is_some()))
            .collect();
        assert_eq!(got, [("d7/f04007", true), ("d9/f04999", false)]);
        assert!(changed(t.path(), &es[..10]).is_empty());
    }

    /// A cold run hashes files as the walk finds them (on helper threads
    /// too): the same digests, in the same order, as reading them after.
    #[cfg(unix)]
    #[test]
    fn hashing_during_the_walk_gives_the_same_digests() {
        let names: Vec<String> = (0..3000).map(|i| format!("d{}/e{}/f{i:04}", i % 7, i % 3)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let t = tree(&refs);
        std::os::unix::fs::symlink("d1", t.path().join("d0/link")).unwrap();
        // A name that is not UTF-8 is opened by its own bytes.
        use std::os::unix::ffi::OsStrExt;
        std::fs::write(t.path().join(OsStr::from_bytes(b"d3/caf\xff.txt")), "x").unwrap();
        let patterns = ["**".to_string(), "!d2/**".to_string()];
        let cache = crate::state::StatCache::default();
        let plain = resolve(t.path(), &patterns, false).unwrap();
        let (want, _) = crate::hashing::hash_entries(t.path(), &plain.files, &cache).unwrap();
        let hashed = resolve_hashing(t.path(), &patterns, &crate::hashing::file_hasher()).unwrap();
        let rels = |r: &Resolution| r.files.iter().map(|e| e.rel.to_string()).collect::<Vec<_>>();
        assert_eq!(rels(&hashed), rels(&plain));
        assert_eq!(hashed.hashes.len(), hashed.files.len());
        for (e, h) in hashed.files.iter().zip(&hashed.hashes) {
            assert_eq!(h.is_some(), e.link.is_none(), "{}", e.rel);
        }
        let (got, _) = crate::hashing::hash_entries_found(t.path(), &hashed.files, &cache, &hashed.hashes).unwrap();
        assert_eq!(got, want);
        // A file the walk could not hash is read afterwards.
        let failed = resolve_hashing(t.path(), &patterns, &|_, _| None).unwrap();
        let (got, _) = crate::hashing::hash_entries_found(t.path(), &failed.files, &cache, &failed.hashes).unwrap();
        assert_eq!(got, want);
        assert!(resolve(t.path(), &patterns, false).unwrap().hashes.is_empty());
    }

    /// `check_glob`'s shortcut never passes a glob that globset rejects.
    #[test]
    fn check_glob_agrees_with_globset() {
        let ok = [
            "", "*", "**", "***", "a/**", "**/b", "a/**b", "a**/b", "?", "!x", "./a/", ",", "a,b", "]", "-", "a b",
        ];
        let bad = ["[", "[]", "[!]", "[z-a]", "{a,b", "a,b}", "{a,b}}", "a\\"];
        for p in ok.iter().chain(&bad) {
            let parsed = build(clean(p.strip_prefix('!').unwrap_or(p))).is_ok();
            assert_eq!(check_glob(p).is_ok(), parsed, "{p}");
            assert_eq!(parsed, ok.contains(p), "{p}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_glob_base_is_walked_only_when_it_is_a_real_directory() {
        let t = tree(&["real/a.txt", "real/sub/b.txt", "file.txt"]);
        std::os::unix::fs::symlink("real", t.path().join("link")).unwrap();
        let rels = |p: &str| -> Vec<String> {
            let res = resolve(t.path(), &[p.to_string()], true).unwrap();
            res.files.iter().map(|e| e.rel.to_string()).collect()
        };
        assert_eq!(rels("real/**"), ["real/a.txt", "real/sub/b.txt"]);
        assert_eq!(rels("real/sub/*.txt"), ["real/sub/b.txt"]);
        // A symlink is never followed, not even as the base of a glob.
        assert!(rels("link/**").is_empty());
        assert!(rels("file.txt/**").is_empty());
        assert!(rels("missing/**").is_empty());
    }

    #[test]
    fn errors_name_paths_from_the_root() {
        // Errors still name paths from the root, not from `.`.
        let e = io_err(Path::new("."), Path::new("./src/a.txt"), std::io::Error::other("x"));
        assert!(
            matches!(e, InputError::Io { ref path, .. } if path == "src/a.txt"),
            "{e:?}"
        );
    }

    /// The stat taken relative to the open directory is the walk's stat:
    /// files at the root, symlinks (not followed) and names that are not
    /// UTF-8 all compare equal until they change.
    #[cfg(unix)]
    #[test]
    fn changed_agrees_with_the_walk() {
        use std::os::unix::ffi::OsStrExt;
        let t = tree(&["top.txt", "a/b/c.txt"]);
        std::os::unix::fs::symlink("top.txt", t.path().join("link")).unwrap();
        std::fs::write(t.path().join(OsStr::from_bytes(b"a/caf\xff.txt")), "x").unwrap();
        let es = resolve(t.path(), &["**".into()], false).unwrap().files;
        assert_eq!(es.len(), 4);
        assert!(changed(t.path(), &es).is_empty());
        std::fs::remove_file(t.path().join("link")).unwrap();
        std::os::unix::fs::symlink("a/b/c.txt", t.path().join("link")).unwrap();
        let got: Vec<&str> = changed(t.path(), &es).into_iter().map(|(i, _)| &*es[i].rel).collect();
        assert_eq!(got, ["link"]);
    }

    /// Names that are not UTF-8 are inputs like any other: each has its own
    /// key (a lossy conversion would give the first two the third's name),
    /// and the key opens the file.
    #[cfg(unix)]
    #[test]
    fn non_utf8_names_have_unique_keys_that_open_the_file() {
        use std::os::unix::ffi::OsStrExt;
        let t = tempfile::tempdir().unwrap();
        let names: [&[u8]; 4] = [
            b"caf\xe9.txt",
            b"caf\xff.txt",
            "caf\u{fffd}.txt".as_bytes(),
            b"d\xff/x.txt",
        ];
        for n in names {
            let path = t.path().join(OsStr::from_bytes(n));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, n).unwrap();
        }
        let files = resolve(t.path(), &["**/*.txt".into()], false).unwrap().files;
        let keys: Vec<&str> = files.iter().map(|e| &*e.rel).collect();
        assert_eq!(keys, ["caf\0e9.txt", "caf\0ff.txt", "caf\u{fffd}.txt", "d\0ff/x.txt"]);
        for e in &files {
            let path = key_path(&e.rel);
            assert_eq!(
                std::fs::read(t.path().join(&path)).unwrap(),
                path.as_os_str().as_bytes()
            );
        }
        assert_eq!(display_key("caf\0e9.txt"), "caf\\xe9.txt");
        let (hashes, _) = crate::hashing::hash_entries(t.path(), &files, &Default::default()).unwrap();
        assert_eq!(hashes[0], *blake3::hash(b"caf\xe9.txt").as_bytes());
        assert_ne!(hashes[0], hashes[1]);
    }
}
