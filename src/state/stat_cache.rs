//! The stat cache as it lies in `.mtr/state`: sorted, unique paths,
//! front-coded (each path stores only what differs from the one before,
//! with a full path every [`RESTART`] entries), and a fixed-size record of
//! stat and content hash per path.
//!
//! Nothing is decoded when the state is loaded: a lookup reads the bytes
//! in place, so 100,000 cached files cost one `read` and no allocation per
//! entry. Lookups in path order (the order `inputs::resolve` returns) move
//! a [`Cursor`] forward, touching each entry at most once.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use super::codec::{Reader, put_varint};
use crate::hashing::{Digest, FileEntry};
use crate::inputs::Stat;

/// Every this many entries a path is stored whole (a seek target).
pub(crate) const RESTART: usize = 16;

/// Bytes per record: size, mtime, ctime, inode (8 each), mode (4), hash.
pub(crate) const REC: usize = 8 * 4 + 4 + 32;

/// Cached content hashes by path, read in place from the state file.
#[derive(Clone, Default)]
pub struct StatCache {
    bytes: Arc<Vec<u8>>,
    /// The front-coded path stream.
    paths: Range<usize>,
    /// `u32` offsets (into `paths`) of every [`RESTART`]-th entry.
    restarts: Range<usize>,
    /// [`REC`] bytes per entry.
    stats: Range<usize>,
    len: usize,
}

impl std::fmt::Debug for StatCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StatCache({} files)", self.len)
    }
}

impl StatCache {
    /// A cache holding `entries` (in any order; later duplicates win).
    pub fn from_entries(entries: impl IntoIterator<Item = (String, FileEntry)>) -> StatCache {
        let mut v: Vec<(String, FileEntry)> = entries.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut uniq: Vec<(String, FileEntry)> = Vec::with_capacity(v.len());
        for e in v {
            match uniq.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => uniq.push(e),
            }
        }
        let mut w = TableWriter::with_capacity(uniq.len());
        for (p, e) in &uniq {
            w.push(p.as_bytes(), e);
        }
        let mut bytes = Vec::new();
        w.finish(&mut bytes);
        let bytes = Arc::new(bytes);
        let mut r = Reader::new(&bytes, 0);
        // Freshly written: it parses.
        StatCache::parse(&bytes, &mut r).unwrap_or_default()
    }

    /// Reads the table a [`TableWriter`] put at the reader's position.
    pub(crate) fn parse(bytes: &Arc<Vec<u8>>, r: &mut Reader) -> Result<StatCache, String> {
        let len = r.varint_usize()?;
        let stats_len = len.checked_mul(REC).ok_or("bad table size")?;
        let stats = r.skip(stats_len)?;
        let restarts = r.skip(len.div_ceil(RESTART) * 4)?;
        let paths_len = r.varint_usize()?;
        let paths = r.skip(paths_len)?;
        let cache = StatCache {
            bytes: bytes.clone(),
            paths,
            restarts,
            stats,
            len,
        };
        for b in 0..len.div_ceil(RESTART) {
            if cache.restart_path(b).is_none() {
                return Err("bad table restart".into());
            }
        }
        Ok(cache)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn bytes(&self) -> &Arc<Vec<u8>> {
        &self.bytes
    }

    /// The cached entry for `path`.
    pub fn get(&self, path: &str) -> Option<FileEntry> {
        let i = self.cursor().seek(path.as_bytes())?;
        self.record(i)
    }

    /// Every entry, in path order (tests, `commit`).
    pub fn entries(&self) -> Vec<(String, FileEntry)> {
        let mut out = Vec::with_capacity(self.len);
        let mut c = self.cursor();
        while c.step() {
            if let (Ok(p), Some(e)) = (std::str::from_utf8(c.path()), self.record(c.index())) {
                out.push((p.to_string(), e));
            }
        }
        out
    }

    pub(crate) fn cursor(&self) -> Cursor<'_> {
        Cursor {
            t: self,
            idx: None,
            next: self.paths.start,
            buf: Vec::with_capacity(128),
        }
    }

    pub(crate) fn record(&self, i: usize) -> Option<FileEntry> {
        let start = self.stats.start + i.checked_mul(REC)?;
        let r = self.bytes.get(start..start + REC).filter(|_| i < self.len)?;
        Some(read_record(r))
    }

    pub(crate) fn hash(&self, i: usize) -> Option<Digest> {
        self.record(i).map(|e| e.hash)
    }

    fn blocks(&self) -> usize {
        self.len.div_ceil(RESTART)
    }

    fn restart_offset(&self, b: usize) -> Option<usize> {
        let at = self.restarts.start + b * 4;
        let raw = self.bytes.get(at..at + 4).filter(|_| at + 4 <= self.restarts.end)?;
        let off = u32::from_le_bytes(raw.try_into().ok()?) as usize;
        (off < self.paths.len()).then_some(self.paths.start + off)
    }

    /// The whole path stored at restart `b`.
    fn restart_path(&self, b: usize) -> Option<&[u8]> {
        let mut r = Reader::new(&self.bytes[..self.paths.end], self.restart_offset(b)?);
        let shared = r.varint_usize().ok()?;
        let n = r.varint_usize().ok()?;
        if shared != 0 {
            return None;
        }
        let s = r.skip(n).ok()?;
        Some(&self.bytes[s])
    }

    /// The last block in `from..` whose first path is `<= key` (galloping,
    /// since lookups mostly move forward a little).
    fn block_for(&self, from: usize, key: &[u8]) -> Option<usize> {
        let n = self.blocks();
        let le = |b: usize| self.restart_path(b).is_some_and(|p| p <= key);
        if from >= n || !le(from) {
            return None;
        }
        // Invariant: le(lo) holds; hi is past the answer.
        let (mut lo, mut step) = (from, 1);
        let mut hi = loop {
            let probe = lo + step;
            if probe >= n {
                break n;
            }
            if !le(probe) {
                break probe;
            }
            lo = probe;
            step *= 2;
        };
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if le(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }
}

/// A position in a [`StatCache`], holding the current path decoded.
pub(crate) struct Cursor<'a> {
    t: &'a StatCache,
    /// The entry whose path is in `buf`; `None` before the first.
    idx: Option<usize>,
    /// Offset of the next entry's encoding.
    next: usize,
    buf: Vec<u8>,
}

impl Cursor<'_> {
    pub(crate) fn path(&self) -> &[u8] {
        &self.buf
    }

    /// The path of entry `i` as the key it is (`None`: no such entry).
    pub(crate) fn key(&mut self, i: usize) -> Option<&str> {
        if !self.goto(i) {
            return None;
        }
        std::str::from_utf8(&self.buf).ok()
    }

    pub(crate) fn index(&self) -> usize {
        self.idx.unwrap_or(0)
    }

    /// Moves to the next entry; false at the end (or on bad bytes).
    pub(crate) fn step(&mut self) -> bool {
        let i = self.idx.map_or(0, |i| i + 1);
        if i >= self.t.len {
            return false;
        }
        let mut r = Reader::new(&self.t.bytes[..self.t.paths.end], self.next);
        let (Ok(shared), Ok(n)) = (r.varint_usize(), r.varint_usize()) else {
            return self.stop();
        };
        let Ok(suffix) = r.skip(n) else {
            return self.stop();
        };
        if shared > self.buf.len() {
            return self.stop();
        }
        self.buf.truncate(shared);
        self.buf.extend_from_slice(&self.t.bytes[suffix]);
        self.next = r.pos();
        self.idx = Some(i);
        true
    }

    fn stop(&mut self) -> bool {
        self.idx = Some(self.t.len);
        self.next = self.t.paths.end;
        false
    }

    fn jump(&mut self, block: usize) -> bool {
        let Some(off) = self.t.restart_offset(block) else {
            return self.stop();
        };
        self.buf.clear();
        self.next = off;
        self.idx = (block * RESTART).checked_sub(1);
        self.step()
    }

    /// Finds `key`, moving forward from the current entry when it can:
    /// lookups in path order cost about one step each.
    pub(crate) fn seek(&mut self, key: &[u8]) -> Option<usize> {
        let forward = matches!(self.idx, Some(i) if i < self.t.len && self.buf.as_slice() <= key);
        if !forward {
            let b = self.t.block_for(0, key)?;
            if !self.jump(b) {
                return None;
            }
        }
        loop {
            match self.buf.as_slice().cmp(key) {
                Ordering::Equal => return self.idx,
                Ordering::Greater => return None,
                Ordering::Less => {}
            }
            let i = self.idx.unwrap_or(0);
            // At a block's last entry, skip whole blocks when the key lies
            // past the next one's first path.
            if (i + 1).is_multiple_of(RESTART)
                && let Some(b) = self.t.block_for(i / RESTART + 1, key)
            {
                if !self.jump(b) {
                    return None;
                }
                continue;
            }
            if !self.step() {
                return None;
            }
        }
    }

    /// Moves to entry `i` (forward is cheap).
    pub(crate) fn goto(&mut self, i: usize) -> bool {
        if i >= self.t.len {
            return false;
        }
        match self.idx {
            Some(cur) if cur <= i && i - cur < RESTART => {}
            _ => {
                if !self.jump(i / RESTART) {
                    return false;
                }
            }
        }
        while self.idx != Some(i) {
            if !self.step() {
                return false;
            }
        }
        true
    }
}

/// Appends the [`REC`] bytes of `e`.
pub(crate) fn put_record(out: &mut Vec<u8>, e: &FileEntry) {
    out.extend_from_slice(&e.stat.size.to_le_bytes());
    out.extend_from_slice(&e.stat.mtime_ns.to_le_bytes());
    out.extend_from_slice(&e.stat.ctime_ns.to_le_bytes());
    out.extend_from_slice(&e.stat.ino.to_le_bytes());
    out.extend_from_slice(&e.stat.mode.to_le_bytes());
    out.extend_from_slice(&e.hash);
}

/// The entry whose [`REC`] bytes [`put_record`] wrote at the start of `r`.
pub(crate) fn read_record(r: &[u8]) -> FileEntry {
    let u64_at = |o: usize| u64::from_le_bytes(r[o..o + 8].try_into().unwrap_or_default());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&r[36..68]);
    FileEntry {
        stat: Stat {
            size: u64_at(0),
            mtime_ns: u64_at(8) as i64,
            ctime_ns: u64_at(16) as i64,
            ino: u64_at(24),
            mode: u32::from_le_bytes(r[32..36].try_into().unwrap_or_default()),
        },
        hash,
    }
}

/// Replaces entries' records in the bytes of a table (the table a
/// [`TableWriter`] put at `at`), before it is parsed: `Err` if one is not
/// there.
pub(crate) fn patch(bytes: &mut [u8], at: usize, records: &[(usize, FileEntry)]) -> Result<(), String> {
    let mut r = Reader::new(bytes, at);
    let len = r.varint_usize()?;
    let stats = r.pos();
    let mut rec = Vec::with_capacity(REC);
    for (i, e) in records {
        let start = (*i < len).then(|| stats + i * REC).ok_or("patch past the table")?;
        let slot = bytes.get_mut(start..start + REC).ok_or("truncated")?;
        rec.clear();
        put_record(&mut rec, e);
        slot.copy_from_slice(&rec);
    }
    Ok(())
}

/// Builds a table from entries pushed in path order.
#[derive(Default)]
pub(crate) struct TableWriter {
    stats: Vec<u8>,
    restarts: Vec<u8>,
    paths: Vec<u8>,
    prev: Vec<u8>,
    n: usize,
}

impl TableWriter {
    pub(crate) fn with_capacity(n: usize) -> TableWriter {
        TableWriter {
            stats: Vec::with_capacity(n * REC),
            restarts: Vec::with_capacity(n.div_ceil(RESTART) * 4),
            paths: Vec::with_capacity(n * 24),
            ..TableWriter::default()
        }
    }

    /// The number of entries pushed so far.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Adds the next entry; `path` must sort after the previous one.
    pub(crate) fn push(&mut self, path: &[u8], e: &FileEntry) {
        let shared = if self.n.is_multiple_of(RESTART) {
            self.restarts
                .extend_from_slice(&(self.paths.len() as u32).to_le_bytes());
            0
        } else {
            self.prev.iter().zip(path).take_while(|(a, b)| a == b).count()
        };
        put_varint(&mut self.paths, shared as u64);
        put_varint(&mut self.paths, (path.len() - shared) as u64);
        self.paths.extend_from_slice(&path[shared..]);
        put_record(&mut self.stats, e);
        self.prev.clear();
        self.prev.extend_from_slice(path);
        self.n += 1;
    }

    /// Appends the table to `out`, in the layout [`StatCache::parse`] reads.
    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        put_varint(out, self.n as u64);
        out.extend_from_slice(&self.stats);
        out.extend_from_slice(&self.restarts);
        put_varint(out, self.paths.len() as u64);
        out.extend_from_slice(&self.paths);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fe(n: u64) -> FileEntry {
        FileEntry {
            stat: Stat {
                size: n,
                mtime_ns: -(n as i64),
                ctime_ns: n as i64 * 3,
                ino: n * 7,
                mode: 0o100644 + (n as u32 & 1) * 0o111,
            },
            hash: [(n % 251) as u8; 32],
        }
    }

    fn paths(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("src/pkg_{}/mod_{}/file_{i}.py", i % 7, i % 13))
            .collect()
    }

    #[test]
    fn finds_every_entry_and_nothing_else() {
        for n in [0, 1, 2, 15, 16, 17, 33, 1000] {
            let ps = paths(n);
            let cache = StatCache::from_entries(ps.iter().enumerate().map(|(i, p)| (p.clone(), fe(i as u64))));
            assert_eq!(cache.len(), n);
            for (i, p) in ps.iter().enumerate() {
                assert_eq!(cache.get(p), Some(fe(i as u64)), "{p}");
                assert_eq!(cache.get(&format!("{p}x")), None);
                assert_eq!(cache.get(&p[..p.len() - 1]), None);
            }
            assert_eq!(cache.get(""), None);
            assert_eq!(cache.get("zzz"), None);
            let mut sorted: Vec<(String, FileEntry)> =
                ps.iter().enumerate().map(|(i, p)| (p.clone(), fe(i as u64))).collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(cache.entries(), sorted);
        }
    }

    #[test]
    fn one_cursor_serves_lookups_in_any_order() {
        let mut ps = paths(500);
        let cache = StatCache::from_entries(ps.iter().map(|p| (p.clone(), fe(p.len() as u64))));
        ps.sort();
        let mut c = cache.cursor();
        // Forward, with misses in between.
        for p in ps.iter().step_by(3) {
            assert!(c.seek(format!("{p}-").as_bytes()).is_none());
            let i = c.seek(p.as_bytes()).unwrap();
            assert_eq!(c.path(), p.as_bytes());
            assert_eq!(cache.record(i), Some(fe(p.len() as u64)));
        }
        // Backward.
        for p in ps.iter().rev().step_by(7) {
            assert!(c.seek(p.as_bytes()).is_some());
        }
        for (i, p) in ps.iter().enumerate().rev().step_by(5) {
            assert!(c.goto(i));
            assert_eq!(c.path(), p.as_bytes());
        }
    }
}
