//! What goes into a task's fingerprint (SPEC section 3).
//!
//! blake3 over a format version, the resolved action, the resolved env, the
//! working directory, every input file (path, executable bit, content) and
//! the fingerprints of the deps. Each part is also kept as its own digest
//! so `--explain` can say which one changed.
//!
//! The input list is hashed where it lies: a no-op over 100,000 files
//! copies none of their paths. [`input_parts`] builds the per-file parts
//! only when a record is stored or a change explained.

use crate::hashing::Digest;
use crate::inputs::Entry;
use crate::state::Parts;

/// Bumped when what goes into a fingerprint changes.
pub const FORMAT_VERSION: &str = "mtr-fingerprint-2";

/// Everything a fingerprint covers, already rendered.
#[derive(Debug, Default)]
pub struct Ingredients<'a> {
    pub action: &'a [String],
    pub env: &'a [(String, String)],
    pub dir: &'a str,
    /// The declared outputs (patterns, `{{ hash }}` unexpanded).
    pub outputs: &'a [String],
    /// Input files in path order, and their content hashes.
    pub inputs: &'a [Entry],
    pub digests: &'a [Digest],
    pub deps: Vec<(&'a str, Digest)>,
    /// Variables the task uses, for explanations only (their effect is
    /// already in the rendered action). Volatile values are left out.
    pub vars: Vec<(&'a str, Option<&'a str>)>,
}

/// Length-prefixed fields, so `["ab"]` and `["a", "b"]` never collide.
/// Fields are gathered in a buffer: one blake3 update per few thousand
/// small fields instead of one per field (same digest either way).
struct Fields {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
}

impl Fields {
    const FLUSH: usize = 64 * 1024;

    fn new() -> Fields {
        Fields {
            hasher: blake3::Hasher::new(),
            // Grows to `FLUSH` only for a long list: most digests here are
            // of a few short fields.
            buf: Vec::new(),
        }
    }

    fn field(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        if bytes.len() > Self::FLUSH {
            self.hasher.update(&self.buf);
            self.buf.clear();
            self.hasher.update(bytes);
            return;
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= Self::FLUSH {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }

    fn finish(mut self) -> Digest {
        self.hasher.update(&self.buf);
        *self.hasher.finalize().as_bytes()
    }
}

fn digest_of<'s>(items: impl IntoIterator<Item = &'s [u8]>) -> Digest {
    let mut f = Fields::new();
    for item in items {
        f.field(item);
    }
    f.finish()
}

/// Whether an input counts as executable: a regular file with an `x` bit.
pub fn executable(e: &Entry) -> bool {
    e.link.is_none() && e.stat.executable()
}

/// Input indices in path order (they usually already are).
fn path_order(inputs: &[Entry]) -> Option<Vec<usize>> {
    if inputs.is_sorted_by(|a, b| a.rel <= b.rel) {
        return None;
    }
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by(|&a, &b| inputs[a].rel.cmp(&inputs[b].rel));
    Some(order)
}

/// The parts of the fingerprint but the input files.
pub fn base_parts(ing: &Ingredients) -> Parts {
    let mut env: Vec<(String, Digest)> = ing
        .env
        .iter()
        .map(|(k, v)| (k.clone(), digest_of([k.as_bytes(), v.as_bytes()])))
        .collect();
    env.sort();
    let mut deps: Vec<(String, Digest)> = ing.deps.iter().map(|(n, d)| (n.to_string(), *d)).collect();
    deps.sort();
    let vars = ing
        .vars
        .iter()
        .filter_map(|(n, v)| v.map(|v| (n.to_string(), digest_of([n.as_bytes(), v.as_bytes()]))))
        .collect();
    Parts {
        action: digest_of(ing.action.iter().map(|s| s.as_bytes())),
        env,
        vars,
        dir: digest_of([ing.dir.as_bytes()]),
        outputs: digest_of(ing.outputs.iter().map(|s| s.as_bytes())),
        deps,
        inputs: Vec::new(),
    }
}

/// Computes the fingerprint, and its parts without the input files.
///
/// A record's fingerprint is so a function of its parts alone:
/// [`crate::dir_stamps::check`] relies on it (change both with
/// `STATE_VERSION`).
pub fn compute(ing: &Ingredients) -> (Digest, Parts) {
    assert_eq!(ing.inputs.len(), ing.digests.len(), "one digest per input");
    compute_with(ing, ing.inputs.len(), &mut |input| {
        let mut one = |i: usize| {
            let e = &ing.inputs[i];
            input(e.rel.as_bytes(), executable(e), &ing.digests[i]);
        };
        match path_order(ing.inputs) {
            None => (0..ing.inputs.len()).for_each(&mut one),
            Some(order) => order.into_iter().for_each(&mut one),
        }
    })
}

/// [`compute`] with `n` input files (not `ing`'s) that `each` passes to
/// its argument in path order: path, executable bit, digest.
pub fn compute_with(ing: &Ingredients, n: usize, each: &mut Inputs) -> (Digest, Parts) {
    let parts = base_parts(ing);
    (digest_with(&parts, n, each), parts)
}

/// The fingerprint of `parts` (every part but the input files) and the
/// `n` input files `each` passes on, as [`compute_with`] works it out.
pub fn digest_with(parts: &Parts, n: usize, each: &mut Inputs) -> Digest {
    let mut f = Fields::new();
    f.field(FORMAT_VERSION.as_bytes());
    f.field(&parts.action);
    f.field(&(parts.env.len() as u64).to_le_bytes());
    for (k, d) in &parts.env {
        f.field(k.as_bytes());
        f.field(d);
    }
    f.field(&parts.dir);
    f.field(&parts.outputs);
    f.field(&(n as u64).to_le_bytes());
    each(&mut |path, exec, digest| {
        f.field(path);
        f.field(&[exec as u8]);
        f.field(digest);
    });
    f.field(&(parts.deps.len() as u64).to_le_bytes());
    for (n, d) in &parts.deps {
        f.field(n.as_bytes());
        f.field(d);
    }
    f.finish()
}

/// Input files given one by one: path, executable bit, digest.
pub type Inputs<'a> = dyn FnMut(&mut dyn FnMut(&[u8], bool, &Digest)) + 'a;

/// The per-file parts of the inputs (path, content hash, executable bit),
/// in path order, for a stored record or an explanation.
pub fn input_parts(inputs: &[Entry], digests: &[Digest]) -> Vec<(String, Digest, bool)> {
    let part = |i: usize| (inputs[i].rel.to_string(), digests[i], executable(&inputs[i]));
    match path_order(inputs) {
        None => (0..inputs.len()).map(part).collect(),
        Some(order) => order.into_iter().map(part).collect(),
    }
}

/// The first 12 hex digits, as `{{ hash }}` shows it.
pub fn short(d: &Digest) -> String {
    to_hex(&d[..6])
}

pub fn hex(d: &Digest) -> String {
    to_hex(d)
}

/// Lowercase hex, without a `format!` per byte (once per task adds up
/// over 1,000 tasks).
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::Stat;

    fn entry(rel: &str, executable: bool) -> Entry {
        Entry {
            rel: rel.into(),
            stat: Stat {
                mode: if executable { 0o100755 } else { 0o100644 },
                ..Stat::default()
            },
            link: None,
        }
    }

    /// The digest changes only with `FORMAT_VERSION` (and `STATE_VERSION`):
    /// a record's fingerprint must match what this mtr computes.
    #[test]
    fn fingerprint_is_stable() {
        let action = vec!["run".to_string(), "make".to_string()];
        let env = vec![("B".to_string(), "2".to_string()), ("A".to_string(), "1".to_string())];
        // Out of path order on purpose: the fingerprint sorts them.
        let inputs = [entry("a.txt", false), entry("bin/run", true), entry("b/c.txt", false)];
        let ing = Ingredients {
            action: &action,
            env: &env,
            dir: "src",
            outputs: &[],
            inputs: &inputs,
            digests: &[[1; 32], [2; 32], [3; 32]],
            deps: vec![("z", [4; 32]), ("dep", [5; 32])],
            vars: vec![],
        };
        assert_eq!(
            hex(&compute(&ing).0),
            "e329dfb8c4c7e610a35648839e2601564d4a062ebc3ae4c2aac682c3474e589e"
        );
        let parts = input_parts(&inputs, ing.digests);
        let paths: Vec<&str> = parts.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(paths, ["a.txt", "b/c.txt", "bin/run"]);
        assert_eq!(parts[2], ("bin/run".to_string(), [2; 32], true));
    }

    #[test]
    fn hex_digits() {
        let mut d = [0u8; 32];
        d[0] = 0x0f;
        d[1] = 0xa0;
        d[31] = 0xff;
        assert_eq!(hex(&d), format!("0fa0{}ff", "00".repeat(29)));
        assert_eq!(short(&d), "0fa000000000");
    }

    #[test]
    fn long_fields_hash_like_short_ones() {
        let long = "x".repeat(200_000);
        let mut f = Fields::new();
        f.field(b"a");
        f.field(long.as_bytes());
        let mut h = blake3::Hasher::new();
        for bytes in [b"a".as_slice(), long.as_bytes()] {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        assert_eq!(f.finish(), *h.finalize().as_bytes());
    }

    #[test]
    fn every_part_changes_the_fingerprint() {
        let action = vec!["run".to_string(), "make".to_string()];
        let env = vec![("A".to_string(), "1".to_string())];
        let a = [entry("a.txt", false)];
        let a_exec = [entry("a.txt", true)];
        let b = [entry("b.txt", false)];
        let base = Ingredients {
            action: &action,
            env: &env,
            dir: ".",
            outputs: &[],
            inputs: &a,
            digests: &[[1; 32]],
            deps: vec![("dep", [2; 32])],
            vars: vec![],
        };
        let (fp, _) = compute(&base);
        let other_action = vec!["run".to_string(), "make all".to_string()];
        let other_env = vec![("A".to_string(), "2".to_string())];
        let out = vec!["dist/app".to_string()];
        let variants = [
            Ingredients {
                action: &other_action,
                ..clone(&base)
            },
            Ingredients {
                env: &other_env,
                ..clone(&base)
            },
            Ingredients {
                dir: "src",
                ..clone(&base)
            },
            Ingredients {
                outputs: &out,
                ..clone(&base)
            },
            Ingredients {
                inputs: &a_exec,
                ..clone(&base)
            },
            Ingredients {
                inputs: &b,
                ..clone(&base)
            },
            Ingredients {
                digests: &[[3; 32]],
                ..clone(&base)
            },
            Ingredients {
                deps: vec![("dep", [4; 32])],
                ..clone(&base)
            },
        ];
        for v in &variants {
            assert_ne!(compute(v).0, fp);
        }
        assert_eq!(compute(&clone(&base)).0, fp);
    }

    fn clone<'a>(i: &Ingredients<'a>) -> Ingredients<'a> {
        Ingredients {
            action: i.action,
            env: i.env,
            dir: i.dir,
            outputs: i.outputs,
            inputs: i.inputs,
            digests: i.digests,
            deps: i.deps.clone(),
            vars: i.vars.clone(),
        }
    }
}
