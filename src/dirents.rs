//! One directory, as the walk reads it: each entry's name and what the
//! listing says it is, and `lstat` relative to the open directory.
//!
//! On Linux the listing is read with `getdents64` into a buffer on the
//! stack; std's `read_dir` also `fstat`s the directory (glibc's `opendir`),
//! allocates a 32 KB buffer and copies each name into a new string.
//! Elsewhere it is std's `read_dir`.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::inputs::Stat;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    Symlink,
    /// A file, or anything else that is not followed.
    Other,
}

impl Kind {
    /// The kind a stat's `st_mode` gives (its POSIX file type bits).
    pub(crate) fn of_mode(mode: u32) -> Kind {
        match mode & 0o170_000 {
            0o040_000 => Kind::Dir,
            0o120_000 => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// An open directory.
#[derive(Debug)]
pub(crate) struct Dir {
    path: PathBuf,
    #[cfg(unix)]
    file: std::fs::File,
}

impl Dir {
    /// Opens `path` as a directory; a symlink at its end is not followed.
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
                .open(path)?;
            Ok(Dir {
                path: path.to_path_buf(),
                file,
            })
        }
        #[cfg(not(unix))]
        {
            if !std::fs::symlink_metadata(path)?.is_dir() {
                return Err(io::Error::from(io::ErrorKind::NotADirectory));
            }
            Ok(Dir {
                path: path.to_path_buf(),
            })
        }
    }

    /// The directory's own stat and the device it is on.
    pub(crate) fn stat(&self) -> io::Result<(Stat, u64)> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = self.file.metadata()?;
            Ok((Stat::of(&m), m.dev()))
        }
        #[cfg(not(unix))]
        {
            Ok((Stat::of(&std::fs::symlink_metadata(&self.path)?), 0))
        }
    }

    /// Calls `f` with each entry's name (never `.` or `..`) and its kind
    /// as the listing gives it (`None`: the file system does not say).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn each<E>(
        &self,
        mut f: impl FnMut(&OsStr, Option<Kind>) -> Result<(), E>,
        err: impl Fn(io::Error) -> E,
    ) -> Result<(), E> {
        use rustix::fs::FileType;
        use std::os::fd::AsFd;
        use std::os::unix::ffi::OsStrExt;
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 8192];
        let mut entries = rustix::fs::RawDir::new(self.file.as_fd(), &mut buf);
        while let Some(entry) = entries.next() {
            let entry = entry.map_err(|e| err(e.into()))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Directory => Some(Kind::Dir),
                FileType::Symlink => Some(Kind::Symlink),
                FileType::Unknown => None,
                _ => Some(Kind::Other),
            };
            f(OsStr::from_bytes(name), kind)?;
        }
        Ok(())
    }

    /// Calls `f` with each entry's name and its kind as the listing gives
    /// it (`None`: the file system does not say).
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn each<E>(
        &self,
        mut f: impl FnMut(&OsStr, Option<Kind>) -> Result<(), E>,
        err: impl Fn(io::Error) -> E,
    ) -> Result<(), E> {
        for entry in std::fs::read_dir(&self.path).map_err(&err)? {
            let entry = entry.map_err(&err)?;
            let kind = entry.file_type().ok().map(|t| kind_of(&t));
            f(&entry.file_name(), kind)?;
        }
        Ok(())
    }

    /// `lstat` of the entry `name`.
    pub(crate) fn lstat(&self, name: &OsStr) -> io::Result<(Stat, Kind)> {
        #[cfg(unix)]
        {
            let stat = crate::inputs::stat_at(&self.file, name)?;
            Ok((stat, Kind::of_mode(stat.mode)))
        }
        #[cfg(not(unix))]
        {
            let m = std::fs::symlink_metadata(self.path.join(name))?;
            Ok((Stat::of(&m), kind_of(&m.file_type())))
        }
    }

    /// Opens the file `name` for reading; a symlink is not followed.
    pub(crate) fn open_file(&self, name: &OsStr) -> io::Result<std::fs::File> {
        #[cfg(unix)]
        {
            use nix::fcntl::OFlag;
            let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
            let fd = nix::fcntl::openat(&self.file, name, flags, nix::sys::stat::Mode::empty())?;
            Ok(std::fs::File::from(fd))
        }
        #[cfg(not(unix))]
        {
            std::fs::File::open(self.path.join(name))
        }
    }

    /// The target of the symlink `name`.
    pub(crate) fn read_link(&self, name: &OsStr) -> io::Result<PathBuf> {
        std::fs::read_link(self.path.join(name))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn kind_of(t: &std::fs::FileType) -> Kind {
    if t.is_dir() {
        Kind::Dir
    } else if t.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(path: &Path) -> Vec<(String, Option<Kind>)> {
        let dir = Dir::open(path).unwrap();
        let mut out = Vec::new();
        dir.each(
            |name, kind| {
                out.push((name.to_string_lossy().into_owned(), kind));
                Ok::<(), io::Error>(())
            },
            |e| e,
        )
        .unwrap();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn lists_names_and_kinds_without_dot_entries() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("sub")).unwrap();
        std::fs::write(t.path().join("a.txt"), "a").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("a.txt", t.path().join("link")).unwrap();
        let got = listing(t.path());
        let kind = |n: &str| got.iter().find(|(name, _)| name == n).map(|(_, k)| *k);
        assert!(got.iter().all(|(n, _)| n != "." && n != ".."), "{got:?}");
        // A file system may leave the kind out; lstat then says it.
        assert!(matches!(kind("sub"), Some(Some(Kind::Dir) | None)), "{got:?}");
        assert!(matches!(kind("a.txt"), Some(Some(Kind::Other) | None)), "{got:?}");
        #[cfg(unix)]
        assert!(matches!(kind("link"), Some(Some(Kind::Symlink) | None)), "{got:?}");
        let dir = Dir::open(t.path()).unwrap();
        assert_eq!(dir.lstat(OsStr::new("sub")).unwrap().1, Kind::Dir);
        let (stat, k) = dir.lstat(OsStr::new("a.txt")).unwrap();
        assert_eq!((stat.size, k), (1, Kind::Other));
        #[cfg(unix)]
        {
            assert_eq!(dir.lstat(OsStr::new("link")).unwrap().1, Kind::Symlink);
            assert_eq!(dir.read_link(OsStr::new("link")).unwrap(), Path::new("a.txt"));
        }
        assert_eq!(
            dir.lstat(OsStr::new("gone")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn a_large_directory_is_read_whole() {
        // More names than one 8 KB buffer holds.
        let t = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..2000)
            .map(|i| format!("file-with-a-longish-name-{i:05}.txt"))
            .collect();
        for n in &names {
            std::fs::write(t.path().join(n), "").unwrap();
        }
        let got: Vec<String> = listing(t.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(got, names);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_not_opened_as_a_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", t.path().join("link")).unwrap();
        assert!(Dir::open(&t.path().join("real")).is_ok());
        assert!(Dir::open(&t.path().join("link")).is_err());
    }
}
