//! Reading the state file, its checksum computed on the way.
//!
//! A large state (8.8 MB at 100,000 files) is read in two parts on two
//! threads, each hashing what it read as one BLAKE3 subtree: the page
//! faults of filling a fresh buffer and the hashing are shared, and the
//! two subtrees merge into the digest `blake3::hash` gives for the whole.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::hashing::Digest;

/// Below this size one thread reads and hashes.
const PARALLEL_MIN: usize = 1 << 20;

/// The bytes of the file at `path`, and the BLAKE3 hash of all but the
/// first `skip` of them.
pub(crate) fn read_hashed(path: &Path, skip: usize) -> io::Result<(Vec<u8>, Digest)> {
    let mut file = File::open(path)?;
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    #[cfg(unix)]
    if len >= PARALLEL_MIN.max(skip + 2 * blake3::CHUNK_LEN) && crate::walk::parallelism() > 1 {
        return read_in_two(&file, len, skip);
    }
    let mut bytes = Vec::with_capacity(len);
    file.read_to_end(&mut bytes)?;
    let digest = *blake3::hash(bytes.get(skip..).unwrap_or_default()).as_bytes();
    Ok((bytes, digest))
}

/// [`read_hashed`] of a file of `len` bytes, in two parts at once.
#[cfg(unix)]
fn read_in_two(file: &File, len: usize, skip: usize) -> io::Result<(Vec<u8>, Digest)> {
    use blake3::Hasher;
    use blake3::hazmat::{HasherExt, Mode, left_subtree_len, merge_subtrees_root};
    use std::os::unix::fs::FileExt;

    // Where BLAKE3's tree splits the hashed bytes: the left subtree.
    let left = usize::try_from(left_subtree_len((len - skip) as u64)).unwrap_or(len);
    // Zeroed by the allocator's fresh pages: each thread faults in its own.
    let mut bytes = vec![0u8; len];
    let (a, b) = bytes.split_at_mut(skip + left);
    let (left_cv, right_cv) = std::thread::scope(|s| {
        let right = s.spawn(|| {
            file.read_exact_at(b, (skip + left) as u64)?;
            io::Result::Ok(
                Hasher::new()
                    .set_input_offset(left as u64)
                    .update(b)
                    .finalize_non_root(),
            )
        });
        let left_cv = file
            .read_exact_at(a, 0)
            .map(|()| Hasher::new().update(&a[skip..]).finalize_non_root());
        (left_cv, right.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    });
    let digest = merge_subtrees_root(&left_cv?, &right_cv?, Mode::Hash);
    Ok((bytes, *digest.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_blake3_of_what_follows_the_skipped_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            10,
            44,
            5000,
            PARALLEL_MIN - 1,
            PARALLEL_MIN,
            PARALLEL_MIN + 4096 + 7,
            3 * PARALLEL_MIN + 1,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &data).unwrap();
            for skip in [0, 44] {
                let (bytes, digest) = read_hashed(&path, skip).unwrap();
                assert_eq!(bytes, data, "len {len}");
                let want = blake3::hash(data.get(skip..).unwrap_or_default());
                assert_eq!(&digest, want.as_bytes(), "len {len}, skip {skip}");
            }
        }
        assert!(read_hashed(&dir.path().join("missing"), 0).is_err());
    }
}
