//! The bytes of `.mtr/state` (format [`STATE_VERSION`]):
//!
//! ```text
//! "MTRSTATE" | version: u32 LE | blake3 of the body: 32 bytes | body
//! body  = stat cache table (see `stat_cache`) | n_tasks | task*
//! task  = name | head | inputs            (each: varint length, bytes)
//! head  = postcard: fingerprint, tree, finished, action, env, vars, dir,
//!         declared (the output patterns, hashed), deps, outputs,
//!         listing (the directories the inputs' walk read, see `dir_stamps`)
//! inputs = n | input*, in path order, each starting with a varint tag:
//!   tag = delta << 2 | exec << 1 | 0   the path and hash of stat cache entry
//!                                      previous + delta (usually 1-2 bytes)
//!   tag = len << 2 | exec << 1 | 1     followed by the path and its hash
//! ```
//!
//! A task's inputs mostly are stat cache entries with the same hash, so a
//! 100,000-input record costs ~2 bytes per input and stores no path twice.
//! Loading decodes only the heads; inputs are decoded when `--explain` or
//! a commit needs them.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::delta::{Delta, Inputs};
use super::stat_cache::{self, REC, StatCache, TableWriter};
use super::{LazyParts, Parts, STATE_VERSION, State, TaskRecord};
use crate::dir_stamps::Listing;
use crate::fingerprint::Tree;
use crate::hashing::{Digest, FileEntry};

pub(crate) const MAGIC: &[u8; 8] = b"MTRSTATE";
pub(crate) const HEADER: usize = 8 + 4 + 32;

/// The checksum a state file's first [`HEADER`] bytes hold.
pub(crate) fn checksum(header: &[u8; HEADER]) -> Digest {
    let mut d = [0; 32];
    d.copy_from_slice(&header[12..]);
    d
}

/// Bounds-checked reading; every malformed input is an `Err`, never a panic.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { b, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn done(&self) -> bool {
        self.pos >= self.b.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.pos).ok_or("truncated")?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("bad varint".into())
    }

    pub(crate) fn varint_usize(&mut self) -> Result<usize, String> {
        usize::try_from(self.varint()?).map_err(|_| "bad length".into())
    }

    /// Skips `n` bytes, returning where they are.
    pub(crate) fn skip(&mut self, n: usize) -> Result<Range<usize>, String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or("truncated")?;
        let r = self.pos..end;
        self.pos = end;
        Ok(r)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let r = self.skip(n)?;
        Ok(&self.b[r])
    }

    pub(crate) fn sized(&mut self) -> Result<Range<usize>, String> {
        let n = self.varint_usize()?;
        self.skip(n)
    }

    pub(crate) fn digest(&mut self) -> Result<Digest, String> {
        let mut d = [0u8; 32];
        d.copy_from_slice(self.bytes(32)?);
        Ok(d)
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_sized(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Everything of a record but its inputs.
#[derive(Serialize, Deserialize)]
struct Head {
    fingerprint: Digest,
    tree: Tree,
    finished: u64,
    action: Digest,
    env: Vec<(String, Digest)>,
    vars: Vec<(String, Digest)>,
    dir: Digest,
    declared: Digest,
    deps: Vec<(String, Digest)>,
    outputs: Vec<(String, Digest)>,
    listing: Option<Listing>,
}

#[derive(Serialize)]
struct HeadRef<'a> {
    fingerprint: &'a Digest,
    tree: &'a Tree,
    finished: u64,
    action: &'a Digest,
    env: &'a [(String, Digest)],
    vars: &'a [(String, Digest)],
    dir: &'a Digest,
    declared: &'a Digest,
    deps: &'a [(String, Digest)],
    outputs: &'a [(String, Digest)],
    listing: Option<&'a Listing>,
}

/// Decodes a whole state file, `body` being the BLAKE3 hash of all but
/// its [`HEADER`] (checked against the one the header holds, first), with
/// `delta` (made for this file) applied.
pub(crate) fn decode(mut bytes: Vec<u8>, body: &Digest, delta: Delta) -> Result<State, String> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("is not an mtr state file (corrupt?)".into());
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != STATE_VERSION {
        return Err(format!(
            "was written by another mtr version (format {version}, this mtr uses {STATE_VERSION})"
        ));
    }
    if body != &bytes[12..HEADER] {
        return Err("is corrupt (checksum mismatch)".into());
    }
    let bad = |e: String| format!("is corrupt ({e})");
    let len = bytes.len();
    let patches: Vec<(usize, FileEntry)> = delta.patches.iter().map(|(i, e)| (*i, *e)).collect();
    stat_cache::patch(&mut bytes, HEADER, &patches).map_err(bad)?;
    // The delta's own encoded inputs go after the file's bytes, so that
    // every record's inputs are a range of one buffer.
    let mut own = HashMap::new();
    for (name, rec) in &delta.records {
        if let Inputs::Own(raw) = &rec.inputs {
            let start = bytes.len();
            bytes.extend_from_slice(raw);
            own.insert(name.as_str(), start..bytes.len());
        }
    }
    let bytes = Arc::new(bytes);
    let mut r = Reader::new(&bytes[..len], HEADER);
    let files = StatCache::parse(&bytes, &mut r).map_err(bad)?;
    let n = r.varint_usize().map_err(bad)?;
    let mut tasks = HashMap::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let name = r.sized().map_err(bad)?;
        let name = std::str::from_utf8(&bytes[name]).map_err(|e| bad(e.to_string()))?;
        let head = r.sized().map_err(bad)?;
        let inputs = r.sized().map_err(bad)?;
        let record = decode_record(&bytes[head], &files, inputs).map_err(bad)?;
        tasks.insert(name.to_string(), record);
    }
    if !r.done() {
        return Err(bad("trailing bytes".into()));
    }
    let mut set = Vec::with_capacity(delta.records.len());
    for (name, rec) in &delta.records {
        let inputs = match &rec.inputs {
            Inputs::Base(range) if range.end <= len => range.clone(),
            Inputs::Own(_) => own[name.as_str()].clone(),
            Inputs::Base(_) => return Err("has a delta past its end".into()),
        };
        let mut record = decode_record(&rec.head, &files, inputs).map_err(bad)?;
        if rec.base_listing {
            record.listing = tasks.get(name).and_then(|r| r.listing.clone());
        }
        set.push((name.clone(), record));
    }
    for name in &delta.removed {
        tasks.remove(name);
    }
    tasks.extend(set);
    let checksum = bytes[..HEADER].try_into().ok().map(checksum);
    Ok(State {
        tasks,
        files,
        checksum,
        delta,
        len,
    })
}

/// A record from its encoded head and the range of its encoded inputs
/// (against `files`, in the bytes `files` is read from).
pub(crate) fn decode_record(head: &[u8], files: &StatCache, inputs: Range<usize>) -> Result<TaskRecord, String> {
    let head: Head = postcard::from_bytes(head).map_err(|e| e.to_string())?;
    let base = Parts {
        action: head.action,
        env: head.env,
        vars: head.vars,
        dir: head.dir,
        outputs: head.declared,
        deps: head.deps,
        inputs: Vec::new(),
    };
    Ok(TaskRecord {
        fingerprint: head.fingerprint,
        tree: head.tree,
        finished: head.finished,
        parts: LazyParts::encoded(base, files.clone(), inputs),
        outputs: head.outputs,
        listing: head.listing.map(Arc::new),
    })
}

/// Everything of `rec` but its inputs (and, without `listing`, its
/// listing), encoded.
pub(crate) fn encode_head(rec: &TaskRecord, listing: bool) -> Vec<u8> {
    let base = rec.parts.base();
    let h = HeadRef {
        fingerprint: &rec.fingerprint,
        tree: &rec.tree,
        finished: rec.finished,
        action: &base.action,
        env: &base.env,
        vars: &base.vars,
        dir: &base.dir,
        declared: &base.outputs,
        deps: &base.deps,
        outputs: &rec.outputs,
        listing: rec.listing.as_deref().filter(|_| listing),
    };
    // Plain data into a Vec: cannot fail.
    postcard::to_allocvec(&h).unwrap_or_default()
}

/// A state file ready to write: header and stat cache, then the tasks.
pub(crate) struct Encoded {
    pub(crate) head: Vec<u8>,
    pub(crate) tasks: Vec<u8>,
}

/// Encodes a whole state file around the stat cache `table` (from a
/// [`TableWriter`]). `reuse` maps the entries of the cache that lazy
/// records were read with to entries of the new one, so their inputs are
/// re-encoded without decoding them.
pub(crate) fn encode(
    table: TableWriter,
    tasks: &[(&str, &TaskRecord)],
    reuse: Option<(&StatCache, &[u32])>,
) -> Encoded {
    let mut head = Vec::with_capacity(HEADER + table.len() * (REC + 24));
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&STATE_VERSION.to_le_bytes());
    head.extend_from_slice(&[0; 32]);
    table.finish(&mut head);
    let head = Arc::new(head);
    // The table just written, for looking paths up while encoding inputs.
    let new = StatCache::parse(&head, &mut Reader::new(&head, HEADER)).unwrap_or_default();
    let mut out = Vec::with_capacity(64 * tasks.len());
    put_varint(&mut out, tasks.len() as u64);
    let mut scratch = Vec::new();
    for (name, rec) in tasks {
        put_sized(&mut out, name.as_bytes());
        put_sized(&mut out, &encode_head(rec, true));
        scratch.clear();
        match (rec.parts.raw(), reuse) {
            (Some((old, raw)), Some((from, map))) if Arc::ptr_eq(old.bytes(), from.bytes()) => {
                reencode_inputs(&mut scratch, &old.bytes()[raw], old, map, &new);
            }
            _ => encode_inputs(&mut scratch, &rec.parts.inputs, &new),
        }
        put_sized(&mut out, &scratch);
    }
    drop(new);
    let mut head = Arc::try_unwrap(head).unwrap_or_else(|shared| (*shared).clone());
    let mut h = blake3::Hasher::new();
    h.update(&head[HEADER..]);
    h.update(&out);
    head[12..HEADER].copy_from_slice(h.finalize().as_bytes());
    Encoded { head, tasks: out }
}

fn tag(v: u64, exec: bool, inline: bool) -> u64 {
    (v << 2) | (u64::from(exec) << 1) | u64::from(inline)
}

fn put_inline(out: &mut Vec<u8>, path: &[u8], digest: &Digest, exec: bool) {
    put_varint(out, tag(path.len() as u64, exec, true));
    out.extend_from_slice(path);
    out.extend_from_slice(digest);
}

fn encode_inputs(out: &mut Vec<u8>, inputs: &[(String, Digest, bool)], table: &StatCache) {
    put_varint(out, inputs.len() as u64);
    let mut cur = table.cursor();
    let mut prev = 0usize;
    for (path, digest, exec) in inputs {
        match cur.seek(path.as_bytes()) {
            Some(i) if i >= prev && table.hash(i) == Some(*digest) => {
                put_varint(out, tag((i - prev) as u64, *exec, false));
                prev = i;
            }
            _ => put_inline(out, path.as_bytes(), digest, *exec),
        }
    }
}

/// One decoded input: a cache entry's index or an inline path.
enum Input<'a> {
    Cached(usize),
    Inline(&'a [u8], Digest),
}

/// Reads encoded inputs, calling `f(input, exec)` for each.
fn each_input<'a>(raw: &'a [u8], mut f: impl FnMut(Input<'a>, bool) -> Result<(), String>) -> Result<(), String> {
    let mut r = Reader::new(raw, 0);
    let n = r.varint_usize()?;
    let mut prev = 0usize;
    for _ in 0..n {
        let t = r.varint()?;
        let exec = t & 2 != 0;
        let v = usize::try_from(t >> 2).map_err(|_| "bad input")?;
        if t & 1 == 0 {
            prev = prev.checked_add(v).ok_or("bad input")?;
            f(Input::Cached(prev), exec)?;
        } else {
            let path = r.bytes(v)?;
            let digest = r.digest()?;
            f(Input::Inline(path, digest), exec)?;
        }
    }
    Ok(())
}

/// How many inputs `raw` holds, without decoding them.
pub(crate) fn input_count(raw: &[u8]) -> Result<usize, String> {
    Reader::new(raw, 0).varint_usize()
}

pub(crate) fn decode_inputs(raw: &[u8], table: &StatCache) -> Result<Vec<(String, Digest, bool)>, String> {
    let mut out = Vec::new();
    each_decoded_input(raw, table, &mut |path, digest, exec| {
        out.push((path.to_string(), *digest, exec))
    })?;
    Ok(out)
}

/// Calls `f` with the path, digest and executable bit of each input `raw`
/// (encoded against `table`) holds, in order.
pub(crate) fn each_decoded_input(
    raw: &[u8],
    table: &StatCache,
    f: &mut dyn FnMut(&str, &Digest, bool),
) -> Result<(), String> {
    let mut cur = table.cursor();
    each_input(raw, |input, exec| {
        let (path, digest) = match input {
            Input::Cached(i) => {
                if !cur.goto(i) {
                    return Err("bad input index".into());
                }
                (cur.path(), table.hash(i).ok_or("bad input index")?)
            }
            Input::Inline(p, d) => (p, d),
        };
        f(std::str::from_utf8(path).map_err(|e| e.to_string())?, &digest, exec);
        Ok(())
    })
}

/// The paths of the inputs `raw` (encoded against `table`), in order.
pub(crate) fn input_paths(raw: &[u8], table: &StatCache) -> Result<Vec<Box<str>>, String> {
    let mut out = Vec::with_capacity(input_count(raw)?.min(1 << 20));
    let mut cur = table.cursor();
    each_input(raw, |input, _| {
        let path = match input {
            Input::Cached(i) if cur.goto(i) => cur.path(),
            Input::Cached(_) => return Err("bad input index".into()),
            Input::Inline(p, _) => p,
        };
        out.push(std::str::from_utf8(path).map_err(|e| e.to_string())?.into());
        Ok(())
    })?;
    Ok(out)
}

/// The cache entry and executable bit of each input `raw` holds, in
/// order, when every one refers to a cache entry (whose hash is then its
/// digest); `None` when one is inline.
pub(crate) fn cached_inputs(raw: &[u8]) -> Option<Vec<(usize, bool)>> {
    let mut out = Vec::with_capacity(input_count(raw).ok()?.min(1 << 20));
    each_input(raw, |input, exec| match input {
        Input::Cached(i) => {
            out.push((i, exec));
            Ok(())
        }
        Input::Inline(..) => Err(String::new()),
    })
    .ok()?;
    Some(out)
}

/// Whether one of the cache entries `raw` refers to is one that `hit`
/// says; `None` if `raw` cannot be read.
pub(crate) fn refers_to(raw: &[u8], hit: &dyn Fn(usize) -> bool) -> Option<bool> {
    let mut found = false;
    each_input(raw, |input, _| {
        found |= matches!(input, Input::Cached(i) if hit(i));
        Ok(())
    })
    .ok()?;
    Some(found)
}

/// Marks the cache entries `raw` (inputs encoded against `table`) uses.
pub(crate) fn mark_inputs(raw: &[u8], table: &StatCache, live: &mut [bool]) -> Result<(), String> {
    let mut cur = table.cursor();
    each_input(raw, |input, _| {
        let i = match input {
            Input::Cached(i) => Some(i),
            Input::Inline(p, _) => cur.seek(p),
        };
        if let Some(flag) = i.and_then(|i| live.get_mut(i)) {
            *flag = true;
        }
        Ok(())
    })
}

/// Re-encodes inputs from table `old` against table `new`, where `map`
/// gives each live entry of `old` its index in `new`. An inline input
/// (hashed too soon after a change to be cached then) refers to its entry
/// in `new` once that entry has its hash.
fn reencode_inputs(out: &mut Vec<u8>, raw: &[u8], old: &StatCache, map: &[u32], new: &StatCache) {
    let mut items = Vec::new();
    let mut cur = old.cursor();
    let mut seek = new.cursor();
    let ok = each_input(raw, |input, exec| {
        match input {
            Input::Cached(i) => {
                let digest = old.hash(i).ok_or("bad input index")?;
                match map.get(i).copied().filter(|j| *j != u32::MAX) {
                    Some(j) if new.hash(j as usize) == Some(digest) => items.push((Ok(j as usize), exec)),
                    _ => {
                        if !cur.goto(i) {
                            return Err("bad input index".into());
                        }
                        items.push((Err((cur.path().to_vec(), digest)), exec));
                    }
                }
            }
            Input::Inline(p, d) => match seek.seek(p) {
                Some(j) if new.hash(j) == Some(d) => items.push((Ok(j), exec)),
                _ => items.push((Err((p.to_vec(), d)), exec)),
            },
        }
        Ok(())
    });
    if ok.is_err() {
        // Cannot happen for a file that passed its checksum; record nothing.
        put_varint(out, 0);
        return;
    }
    put_varint(out, items.len() as u64);
    let mut prev = 0usize;
    for (item, exec) in items {
        match item {
            Ok(j) if j >= prev => {
                put_varint(out, tag((j - prev) as u64, exec, false));
                prev = j;
            }
            Ok(j) => {
                let mut c = new.cursor();
                let hash = new.hash(j).unwrap_or_default();
                if c.goto(j) {
                    put_inline(out, c.path(), &hash, exec);
                }
            }
            Err((path, digest)) => put_inline(out, &path, &digest, exec),
        }
    }
}
