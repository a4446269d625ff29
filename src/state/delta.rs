//! `.mtr/delta`: what commits changed since `.mtr/state` was written whole.
//!
//! Rewriting the state costs as much as its stat cache is large (10 MB at
//! 100,000 files), while a run that changed a few files changes a record
//! and a few cache entries. Such a commit writes only those: records that
//! replace or remove the state's, each one's inputs as a range of the state
//! file when they are the same files, and cache entries replaced in place.
//!
//! The file is a log of frames, each one the whole delta at its commit; a
//! commit appends one (no rename: replacing a file makes ext4 flush it
//! first). The last whole frame is the delta; a torn one after it (a writer
//! killed, or still writing) is ignored, and cut off by the next commit.
//! Once the file grows past [`MAX_LOG`], the next frame replaces it.
//!
//! A delta applies to the state it was made for (named by that state's
//! checksum); one made for another state is stale (the state was rewritten
//! since, the delta folded into it) and ignored. Once the delta itself
//! grows past a part of the state, the next commit writes the state whole
//! again and removes the delta.
//!
//! ```text
//! frame = "MTRDELTA" | version: u32 LE | body length: u32 LE | blake3 of body: 32 | body
//! body  = state's checksum: 32
//!       | n | (entry index, record: 68 bytes)*        stat cache records replaced
//!       | n | name*                                    records removed
//!       | n | (name | head | listing | inputs)*        records set
//! listing = 0 (in the head) | 1 (the state's record's of that name)
//! inputs  = 0 | start | len     the range of the state file holding them
//!         | 1 | bytes           encoded here
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::STATE_VERSION;
use super::codec::{Reader, put_sized, put_varint};
use super::stat_cache::{REC, put_record, read_record};
use crate::hashing::{Digest, FileEntry};

const MAGIC: &[u8; 8] = b"MTRDELTA";
const HEADER: usize = 8 + 4 + 4 + 32;

/// Past this many bytes the log is replaced by its next frame.
pub(crate) const MAX_LOG: usize = 64 << 10;

/// The changes a delta file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Delta {
    /// The checksum of the frame it was read from (`None`: none).
    pub(crate) checksum: Option<Digest>,
    /// Stat cache entries replaced, by index.
    pub(crate) patches: BTreeMap<usize, FileEntry>,
    pub(crate) removed: BTreeSet<String>,
    pub(crate) records: BTreeMap<String, Rec>,
}

/// Where a whole frame lies in the log.
pub(crate) struct Frame {
    pub(crate) body: Range<usize>,
    pub(crate) checksum: Digest,
    /// Where the frame ends: the log's valid length.
    pub(crate) end: usize,
}

impl Frame {
    /// The last whole frame of the log `bytes`, found from the headers
    /// alone: only the frames after it are hashed (a torn one, from a
    /// writer killed or still writing), and none is decoded. `Err` when
    /// the log is not one.
    pub(crate) fn last(bytes: &[u8]) -> Result<Option<Frame>, String> {
        let mut at = 0;
        let mut frames = Vec::new();
        while let Some(head) = bytes.get(at..at + HEADER) {
            if &head[..8] != MAGIC {
                return Err("is not an mtr delta file".into());
            }
            if head[8..12] != STATE_VERSION.to_le_bytes() {
                return Err("was written by another mtr version".into());
            }
            let len = u32::from_le_bytes(head[12..16].try_into().unwrap_or_default()) as usize;
            if bytes.len() - at - HEADER < len {
                break;
            }
            let checksum: Digest = head[16..HEADER].try_into().unwrap_or_default();
            at += HEADER + len;
            frames.push(Frame {
                body: at - len..at,
                checksum,
                end: at,
            });
        }
        let rest = &bytes[at..];
        if !MAGIC.starts_with(&rest[..rest.len().min(8)]) {
            return Err("is not an mtr delta file".into());
        }
        Ok(frames
            .into_iter()
            .rev()
            .find(|f| blake3::hash(&bytes[f.body.clone()]).as_bytes() == &f.checksum))
    }
}

/// A record as a delta holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rec {
    /// Everything but the inputs (see `codec::encode_head`).
    pub(crate) head: Vec<u8>,
    /// Its listing is that of the state's record of the same name, not the
    /// head's (at 100,000 files, thousands of directories).
    pub(crate) base_listing: bool,
    pub(crate) inputs: Inputs,
}

/// A record's encoded inputs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inputs {
    /// These bytes of the state file.
    Base(Range<usize>),
    Own(Vec<u8>),
}

impl Delta {
    /// The file's bytes, for the state whose checksum is `base`.
    pub(crate) fn encode(&self, base: &Digest) -> Vec<u8> {
        let mut body = Vec::with_capacity(64 + self.patches.len() * (REC + 4));
        body.extend_from_slice(base);
        put_varint(&mut body, self.patches.len() as u64);
        for (i, e) in &self.patches {
            put_varint(&mut body, *i as u64);
            put_record(&mut body, e);
        }
        put_varint(&mut body, self.removed.len() as u64);
        for name in &self.removed {
            put_sized(&mut body, name.as_bytes());
        }
        put_varint(&mut body, self.records.len() as u64);
        for (name, rec) in &self.records {
            put_sized(&mut body, name.as_bytes());
            put_sized(&mut body, &rec.head);
            put_varint(&mut body, u64::from(rec.base_listing));
            match &rec.inputs {
                Inputs::Base(r) => {
                    put_varint(&mut body, 0);
                    put_varint(&mut body, r.start as u64);
                    put_varint(&mut body, r.len() as u64);
                }
                Inputs::Own(raw) => {
                    put_varint(&mut body, 1);
                    put_sized(&mut body, raw);
                }
            }
        }
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(blake3::hash(&body).as_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// The delta of the last whole frame in the log `bytes`, the checksum
    /// of the state it was made for, and where that frame ends: `None`
    /// when there is no whole frame. `Err` when the log is not one.
    pub(crate) fn last(bytes: &[u8]) -> Result<Option<(Digest, Delta, usize)>, String> {
        let Some(frame) = Frame::last(bytes)? else {
            return Ok(None);
        };
        let (base, mut delta) = Delta::decode(&bytes[frame.body]).map_err(|e| format!("is corrupt ({e})"))?;
        delta.checksum = Some(frame.checksum);
        Ok(Some((base, delta, frame.end)))
    }

    /// The delta in a frame's `body` and the checksum of the state it was
    /// made for.
    fn decode(bytes: &[u8]) -> Result<(Digest, Delta), String> {
        let mut r = Reader::new(bytes, 0);
        let base = r.digest()?;
        let mut delta = Delta::default();
        for _ in 0..r.varint_usize()? {
            let i = r.varint_usize()?;
            delta.patches.insert(i, read_record(r.bytes(REC)?));
        }
        let text = |r: &mut Reader| -> Result<String, String> {
            let range = r.sized()?;
            String::from_utf8(bytes[range].to_vec()).map_err(|e| e.to_string())
        };
        for _ in 0..r.varint_usize()? {
            delta.removed.insert(text(&mut r)?);
        }
        for _ in 0..r.varint_usize()? {
            let name = text(&mut r)?;
            let head = bytes[r.sized()?].to_vec();
            let base_listing = match r.varint()? {
                0 => false,
                1 => true,
                _ => return Err("bad listing tag".into()),
            };
            let inputs = match r.varint()? {
                0 => {
                    let start = r.varint_usize()?;
                    let len = r.varint_usize()?;
                    Inputs::Base(start..start.checked_add(len).ok_or("bad range")?)
                }
                1 => Inputs::Own(bytes[r.sized()?].to_vec()),
                _ => return Err("bad inputs tag".into()),
            };
            delta.records.insert(
                name,
                Rec {
                    head,
                    base_listing,
                    inputs,
                },
            );
        }
        if !r.done() {
            return Err("has trailing bytes".into());
        }
        Ok((base, delta))
    }

    /// Sets `name`'s record.
    pub(crate) fn set(&mut self, name: &str, rec: Rec) {
        self.removed.remove(name);
        self.records.insert(name.to_string(), rec);
    }

    /// Removes `name`'s record.
    pub(crate) fn remove(&mut self, name: &str) {
        self.records.remove(name);
        self.removed.insert(name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::Stat;

    #[test]
    fn the_last_whole_frame_of_the_log_is_the_delta() {
        let entry = |n: u8| FileEntry {
            stat: Stat {
                size: u64::from(n),
                mtime_ns: -5,
                ctime_ns: 1 << 62,
                ino: 77,
                mode: 0o100755,
            },
            hash: [n; 32],
        };
        let mut d = Delta::default();
        d.patches.insert(3, entry(1));
        d.patches.insert(100_000, entry(2));
        d.remove("gone");
        d.set(
            "a",
            Rec {
                head: vec![1, 2, 3],
                base_listing: true,
                inputs: Inputs::Base(10..2000),
            },
        );
        let first = d.encode(&[7; 32]);
        d.set(
            "b",
            Rec {
                head: vec![],
                base_listing: false,
                inputs: Inputs::Own(vec![9; 300]),
            },
        );
        let second = d.encode(&[8; 32]);
        let log = [first.clone(), second.clone()].concat();
        let (base, back, end) = Delta::last(&log).unwrap().unwrap();
        assert_eq!((base, end), ([8; 32], log.len()));
        assert_eq!(back.checksum, Some(second[16..48].try_into().unwrap()));
        assert_eq!(Delta { checksum: None, ..back }, d);
        // A torn or damaged last frame: the one before it.
        for cut in [first.len(), first.len() + 10, log.len() - 1] {
            let (base, _, end) = Delta::last(&log[..cut]).unwrap().unwrap();
            assert_eq!((base, end), ([7; 32], first.len()), "cut at {cut}");
        }
        let mut flipped = log.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(Delta::last(&flipped).unwrap().unwrap().2, first.len());
        // A damaged frame before the last whole one is not read.
        let mut damaged_before = log.clone();
        damaged_before[HEADER + 1] ^= 1;
        assert_eq!(Delta::last(&damaged_before).unwrap().unwrap().0, [8; 32]);
        assert!(Delta::last(&first[..20]).unwrap().is_none());
        assert!(Delta::last(b"not a delta").is_err());
        assert!(Delta::last(&[b'x'; 100]).is_err());
        assert!(Delta::last(b"").unwrap().is_none());
    }
}
