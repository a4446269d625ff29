//! Directories kept open while files are stat'ed in path order.
//!
//! Stat'ing a file relative to its open directory resolves one path
//! component instead of all of them. In path order a directory's files may
//! come on both sides of a subdirectory's (`a/b.txt`, `a/sub/c.txt`,
//! `a/z.txt`), so the directories above the current one stay open too.

use crate::inputs::within;

/// What stands for each open directory (`T`: a handle, or none) along the
/// current path, keyed by its `/`-separated path under the root.
pub(crate) struct OpenDirs<T> {
    open: Vec<(Box<str>, T)>,
}

impl<T> OpenDirs<T> {
    pub(crate) fn new() -> Self {
        OpenDirs { open: Vec::new() }
    }

    /// What stands for directory `dir`: kept from before, else from `open`
    /// (`None`: nothing, and nothing is kept). Directories not above `dir`
    /// are closed.
    pub(crate) fn enter(&mut self, dir: &str, open: impl FnOnce() -> Option<T>) -> Option<&T> {
        while self.open.last().is_some_and(|(p, _)| !within(dir, p)) {
            self.open.pop();
        }
        if self.open.last().is_none_or(|(p, _)| **p != *dir) {
            let handle = open()?;
            self.open.push((dir.into(), handle));
        }
        self.open.last().map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_above_the_current_one_stay_open() {
        let mut dirs = OpenDirs::new();
        let mut opened = Vec::new();
        for dir in ["a", "a/sub", "a/sub/deeper", "a", "b", "b"] {
            dirs.enter(dir, || {
                opened.push(dir);
                Some(dir)
            });
        }
        // `a` again after its subdirectories, and `b` twice in a row: kept.
        assert_eq!(opened, ["a", "a/sub", "a/sub/deeper", "b"]);
        assert_eq!(dirs.enter("", || None), None, "the root was never opened");
        assert_eq!(dirs.enter("", || Some("root")), Some(&"root"));
        assert_eq!(dirs.enter("c", || None), None, "a failed open keeps nothing");
        assert_eq!(dirs.enter("", || Some("again")), Some(&"root"));
    }
}
