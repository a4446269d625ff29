//! Reading the state file, its checksum computed on the way.
//!
//! A large state (8.8 MB at 100,000 files) is read in parts on every CPU,
//! each hashing what it read as one BLAKE3 subtree: the page faults of
//! filling a fresh buffer and the hashing are shared, and the subtrees
//! merge into the digest `blake3::hash` gives for the whole.

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
        return read_in_parts(&file, len, skip);
    }
    let mut bytes = Vec::with_capacity(len);
    file.read_to_end(&mut bytes)?;
    let digest = *blake3::hash(bytes.get(skip..).unwrap_or_default()).as_bytes();
    Ok((bytes, digest))
}

/// [`read_hashed`] of a file of `len` bytes, in parts read at once.
#[cfg(unix)]
fn read_in_parts(file: &File, len: usize, skip: usize) -> io::Result<(Vec<u8>, Digest)> {
    use blake3::Hasher;
    use blake3::hazmat::{HasherExt, Mode, merge_subtrees_root};
    use std::os::unix::fs::FileExt;

    let body = (len - skip) as u64;
    // Whole subtrees of BLAKE3's tree, so their chaining values merge into
    // the root (the last one may be shorter): a power of two of whole
    // chunks, about two per thread.
    let part = body
        .div_ceil(2 * crate::walk::parallelism() as u64)
        .next_power_of_two()
        .max(blake3::CHUNK_LEN as u64);
    // Zeroed by the allocator's fresh pages: each thread faults in its own.
    let mut bytes = vec![0u8; len];
    let (head, rest) = bytes.split_at_mut(skip);
    file.read_exact_at(head, 0)?;
    let parts: Vec<(usize, &mut [u8])> = rest.chunks_mut(part as usize).enumerate().collect();
    let cvs = crate::parallel::map(parts, |(k, buf)| {
        let offset = k as u64 * part;
        file.read_exact_at(buf, skip as u64 + offset)?;
        io::Result::Ok(Hasher::new().set_input_offset(offset).update(buf).finalize_non_root())
    });
    let cvs = cvs.into_iter().collect::<io::Result<Vec<_>>>()?;
    let (left, right) = split(&cvs, body, part);
    let digest = merge_subtrees_root(&left, &right, Mode::Hash);
    Ok((bytes, *digest.as_bytes()))
}

/// The chaining values of the two children of the subtree over `len`
/// bytes whose parts of `part` bytes (whole subtrees) have `cvs`.
#[cfg(unix)]
fn split(
    cvs: &[blake3::hazmat::ChainingValue],
    len: u64,
    part: u64,
) -> (blake3::hazmat::ChainingValue, blake3::hazmat::ChainingValue) {
    use blake3::hazmat::{Mode, left_subtree_len, merge_subtrees_non_root};
    let node = |cvs: &[_], len| match cvs {
        [cv] => *cv,
        _ => {
            let (l, r) = split(cvs, len, part);
            merge_subtrees_non_root(&l, &r, Mode::Hash)
        }
    };
    // A power of two no smaller than `part`, so a whole number of parts.
    let left = left_subtree_len(len);
    let k = (left / part) as usize;
    (node(&cvs[..k], left), node(&cvs[k..], len - left))
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
