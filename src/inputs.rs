//! Resolving `inputs`/`outputs` globs to files under the project root.
//!
//! Only the literal base directory of each glob is walked (`src/**` walks
//! `src/`), symlinks are never followed (a link is an entry of its own,
//! hashed by its target path), and `.git/` and the root's `.mtr/` are
//! never entered.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// One file (or symlink) matched by a task's globs.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the root, `/`-separated.
    pub rel: String,
    pub stat: Stat,
    /// For a symlink, the path it points to (hashed instead of content).
    pub link: Option<PathBuf>,
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
}

/// Why globs could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("invalid glob `{0}`: {1}")]
    Glob(String, String),
    #[error("cannot read `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
}

fn io_err(root: &Path, path: &Path, source: std::io::Error) -> InputError {
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

/// Checks a glob's syntax (for load-time diagnostics).
pub fn check_glob(pattern: &str) -> Result<(), String> {
    build(clean(pattern.strip_prefix('!').unwrap_or(pattern))).map(|_| ())
}

fn clean(p: &str) -> &str {
    let p = p.trim_start_matches("./");
    p.trim_end_matches('/')
}

/// Resolves `patterns` (globs; `!` excludes) under `root`; `want_empty`
/// also lists the globs that matched nothing.
pub fn resolve(root: &Path, patterns: &[String], want_empty: bool) -> Result<Resolution, InputError> {
    let mut includes = GlobSetBuilder::new();
    let mut excludes = GlobSetBuilder::new();
    let mut prune = GlobSetBuilder::new();
    let mut bases: Vec<(String, usize)> = Vec::new();
    let mut literals: Vec<String> = Vec::new();
    let mut globs: Vec<String> = Vec::new();
    for raw in patterns {
        if let Some(neg) = raw.strip_prefix('!') {
            let p = clean(neg);
            excludes.add(build(p).map_err(|e| InputError::Glob(raw.clone(), e))?);
            // `dir/**` excluded: skip walking `dir` at all.
            if let Some(dir) = p.strip_suffix("/**") {
                prune.add(build(dir).map_err(|e| InputError::Glob(raw.clone(), e))?);
            }
            continue;
        }
        let p = clean(raw);
        if !has_meta(p) {
            literals.push(p.to_string());
            continue;
        }
        includes.add(build(p).map_err(|e| InputError::Glob(raw.clone(), e))?);
        let base: Vec<&str> = p.split('/').take_while(|c| !has_meta(c)).collect();
        bases.push((base.join("/"), globs.len()));
        globs.push(p.to_string());
    }
    let includes = includes
        .build()
        .map_err(|e| InputError::Glob(patterns.join(" "), e.to_string()))?;
    let excludes = excludes
        .build()
        .map_err(|e| InputError::Glob(patterns.join(" "), e.to_string()))?;
    let prune = prune
        .build()
        .map_err(|e| InputError::Glob(patterns.join(" "), e.to_string()))?;
    let mut walker = Walker {
        root,
        includes: &includes,
        excludes: &excludes,
        prune: &prune,
        out: Vec::new(),
        literal_dir: false,
    };
    let mut res = Resolution::default();
    for lit in &literals {
        let path = root.join(lit);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                walker.literal_dir = true;
                walker.walk(&path, lit)?;
                walker.literal_dir = false;
            }
            Ok(m) => {
                if !excludes.is_match(lit) {
                    walker.push(lit.clone(), &path, &m)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => res.missing.push(lit.clone()),
            Err(e) => return Err(io_err(root, &path, e)),
        }
    }
    // Walk each base once: drop bases nested inside another.
    let mut uniq: Vec<String> = bases.iter().map(|(b, _)| b.clone()).collect();
    uniq.sort();
    uniq.dedup();
    let tops: Vec<&String> = uniq
        .iter()
        .filter(|b| {
            !uniq
                .iter()
                .any(|o| o != *b && (o.is_empty() || b.starts_with(&format!("{o}/"))))
        })
        .collect();
    for base in tops {
        let path = if base.is_empty() {
            root.to_path_buf()
        } else {
            root.join(base)
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => walker.walk(&path, base)?,
            Ok(m) => {
                if includes.is_match(base.as_str()) && !excludes.is_match(base.as_str()) {
                    walker.push(base.clone(), &path, &m)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(root, &path, e)),
        }
    }
    let mut out = walker.out;
    out.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    out.dedup_by(|a, b| a.rel == b.rel);
    if want_empty {
        let mut seen = vec![false; globs.len()];
        for e in &out {
            for i in includes.matches(e.rel.as_str()) {
                seen[i] = true;
            }
        }
        res.empty = globs
            .iter()
            .zip(seen)
            .filter(|(_, s)| !s)
            .map(|(g, _)| g.clone())
            .collect();
    }
    res.files = out;
    Ok(res)
}

struct Walker<'a> {
    root: &'a Path,
    includes: &'a GlobSet,
    excludes: &'a GlobSet,
    prune: &'a GlobSet,
    out: Vec<Entry>,
    literal_dir: bool,
}

impl Walker<'_> {
    fn push(&mut self, rel: String, path: &Path, m: &Metadata) -> Result<(), InputError> {
        let link = if m.file_type().is_symlink() {
            Some(std::fs::read_link(path).map_err(|e| io_err(self.root, path, e))?)
        } else {
            None
        };
        self.out.push(Entry {
            rel,
            stat: Stat::of(m),
            link,
        });
        Ok(())
    }

    fn walk(&mut self, dir: &Path, rel: &str) -> Result<(), InputError> {
        let entries = std::fs::read_dir(dir).map_err(|e| io_err(self.root, dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(self.root, dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == ".git" || (rel.is_empty() && name == ".mtr") {
                continue;
            }
            let child_rel = if rel.is_empty() {
                name.into_owned()
            } else {
                format!("{rel}/{name}")
            };
            let ft = entry.file_type().map_err(|e| io_err(self.root, &entry.path(), e))?;
            if ft.is_dir() {
                if !self.prune.is_match(child_rel.as_str()) {
                    self.walk(&entry.path(), &child_rel)?;
                }
                continue;
            }
            let included = self.literal_dir || self.includes.is_match(child_rel.as_str());
            if included && !self.excludes.is_match(child_rel.as_str()) {
                let path = entry.path();
                let m = std::fs::symlink_metadata(&path).map_err(|e| io_err(self.root, &path, e))?;
                self.push(child_rel, &path, &m)?;
            }
        }
        Ok(())
    }
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
            .map(|e| e.rel)
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
}
