//! Files replaced whole or not at all: written beside their place as
//! `NAME.tmp.PID`, then renamed over it, so a reader (another mtr, or this
//! one after a crash) finds the old file or the new one, never a part.
//!
//! No fsync: the rename alone is atomic for other processes. What a power
//! cut may tear is for the reader to notice (mtr's own files carry a
//! checksum).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replaces the file at `path` with `parts`, one after the other. On
/// failure the temporary file is removed and `path` is as it was.
pub fn write(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        for p in parts {
            f.write_all(p)?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether `name` is a temporary file [`write`] left for a file named
/// `of` (its process killed before the rename).
pub fn is_temp_of(name: &str, of: &str) -> bool {
    name.strip_prefix(of).is_some_and(|rest| rest.starts_with(".tmp."))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        write(&path, &[b"old"]).unwrap();
        write(&path, &[b"new ", b"parts"]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new parts");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state"]);
        assert!(is_temp_of(
            temp_path(&path).file_name().unwrap().to_str().unwrap(),
            "state"
        ));
        assert!(!is_temp_of("statement", "state"));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way: the rename fails.
        let path = dir.path().join("busy");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), "x").unwrap();
        assert!(write(&path, &[b"new"]).is_err());
        assert!(path.join("inside").exists());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["busy"]);
    }
}
