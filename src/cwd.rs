//! mtr's own working directory: the project root once the config is
//! loaded ([`enter`]), and read once.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static CWD: OnceLock<Option<PathBuf>> = OnceLock::new();
/// Where mtr was started, once [`enter`] left it.
static STARTED: OnceLock<PathBuf> = OnceLock::new();

fn current() -> Option<&'static Path> {
    CWD.get_or_init(|| std::env::current_dir().ok()).as_deref()
}

/// Makes `root` mtr's working directory, unless it was read already (it
/// then stays as read) or cannot be entered. Tasks start in the root, so
/// they inherit it (see [`set_for_child`]), and input paths open short
/// ([`short_root`]) wherever mtr was started. Paths the user gave relative
/// to that place are opened with [`from_start`].
pub(crate) fn enter(root: &Path) {
    CWD.get_or_init(|| {
        let here = std::env::current_dir().ok();
        if std::env::set_current_dir(root).is_err() {
            return here;
        }
        if let Some(here) = here {
            let _ = STARTED.set(here);
        }
        Some(root.to_path_buf())
    });
}

/// `path`, given on the command line relative to where mtr was started
/// (`--summary run.json`), as it opens now.
pub(crate) fn from_start(path: &Path) -> PathBuf {
    match STARTED.get() {
        Some(start) => start.join(path),
        None => path.to_path_buf(),
    }
}

/// Whether `dir` is mtr's working directory.
pub(crate) fn is_current(dir: &Path) -> bool {
    current() == Some(dir)
}

/// `root` as the paths under it are best opened by: opening `src/a.py`
/// resolves fewer path components than `/home/me/project/src/a.py`, so it
/// is `.` when `root` is the working directory.
pub(crate) fn short_root(root: &Path) -> &Path {
    if is_current(root) { Path::new(".") } else { root }
}

/// Sets a child's working directory to `dir` unless it is mtr's own, which
/// the child inherits anyway (a task without `dir`, after [`enter`]).
/// Statically linked (scripts/rustc-static), std cannot look up glibc's
/// chdir action for `posix_spawn`, so a child given a directory is started
/// by fork+exec instead, ~0.3 ms more each (1,000 `true` tasks under `-B`:
/// 592 against 285 ms).
pub(crate) fn set_for_child(cmd: &mut std::process::Command, dir: &Path) {
    if !is_current(dir) {
        cmd.current_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_directory_is_opened_as_dot() {
        let cwd = std::env::current_dir().unwrap();
        assert!(is_current(&cwd) && is_current(&cwd.join(".")));
        assert_eq!(short_root(&cwd), Path::new("."));
        let t = tempfile::tempdir().unwrap();
        assert!(!is_current(t.path()));
        assert_eq!(short_root(t.path()), t.path());
    }
}
