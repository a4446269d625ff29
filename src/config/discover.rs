//! Finding `montage.toml`: `-f FILE`, else upward from `-C DIR` or the cwd.

use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "montage.toml";

/// The config file to load, or `None` when no directory up to `/` has one.
pub fn find(file: Option<&Path>, start: &Path) -> Option<PathBuf> {
    if let Some(file) = file {
        return Some(start.join(file));
    }
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// `file` as the user can open it from the current directory: relative to
/// it when that is shorter (`../montage.toml`, `types/other.toml`), else
/// absolute. Diagnostics name the config file this way. `root` is its
/// directory, already canonical: only a symlinked file itself needs
/// resolving (the current directory is canonical as `getcwd` gives it).
pub fn display(file: &Path, root: &Path) -> String {
    let absolute = match (file.file_name(), std::fs::symlink_metadata(file)) {
        (Some(name), Ok(m)) if !m.file_type().is_symlink() => root.join(name),
        _ => std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf()),
    };
    let cwd = std::env::current_dir().ok();
    match cwd.as_deref().and_then(|cwd| relative(&absolute, cwd)) {
        Some(rel) if rel.as_os_str().len() <= absolute.as_os_str().len() => rel.display().to_string(),
        _ => absolute.display().to_string(),
    }
}

/// `path` relative to the directory `base` (both absolute), with `..` where
/// needed; `None` when it cannot be written that way or the two share no
/// directory but the root.
pub fn relative(path: &Path, base: &Path) -> Option<PathBuf> {
    use std::path::Component;
    if !path.is_absolute() || !base.is_absolute() {
        return None;
    }
    let path: Vec<Component> = path.components().collect();
    let base: Vec<Component> = base.components().collect();
    if path
        .iter()
        .chain(&base)
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return None;
    }
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    // Sharing only `/` (or a drive), the absolute path is the clearer one.
    if !path[..common].iter().any(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for c in &path[common..] {
        out.push(c);
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_relative_to_a_directory() {
        let rel = |p: &str, b: &str| relative(Path::new(p), Path::new(b)).map(|r| r.display().to_string());
        assert_eq!(rel("/p/montage.toml", "/p").as_deref(), Some("montage.toml"));
        assert_eq!(rel("/p/montage.toml", "/p/sub").as_deref(), Some("../montage.toml"));
        assert_eq!(rel("/p/types/o.toml", "/p").as_deref(), Some("types/o.toml"));
        assert_eq!(rel("/h/a/b.toml", "/h/x/y").as_deref(), Some("../../a/b.toml"));
        assert_eq!(rel("/a/b.toml", "/x/y/z"), None);
        assert_eq!(rel("/a/b.toml", "/"), None);
        assert_eq!(rel("/p/../q.toml", "/p"), None);
        assert_eq!(rel("/p", "/p"), None);
    }
}
