//! What goes into a task's fingerprint (SPEC section 3).
//!
//! blake3 over a format version, the resolved action, the resolved env, the
//! working directory, every input file (path, executable bit, content) and
//! the fingerprints of the deps. Each part is also kept as its own digest
//! so `--explain` can say which one changed.
//!
//! The input list is hashed where it lies: a no-op over 100,000 files
//! copies none of their paths. [`input_parts`] builds the per-file parts
//! only when a record is stored or a change explained. The bytes are
//! hashed in groups a record keeps (a [`Tree`]), so that when only some
//! input files' contents change, [`patch`] hashes only their groups again.

mod tree;

use crate::hashing::Digest;
use crate::inputs::Entry;
use crate::state::Parts;
pub use tree::{Group, Tree};
use tree::{Sink, Writer};

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

/// A length-prefixed field, so `["ab"]` and `["a", "b"]` never collide.
fn field(out: &mut impl Sink, bytes: &[u8]) {
    out.put(&(bytes.len() as u64).to_le_bytes());
    out.put(bytes);
}

fn digest_of<'s>(items: impl IntoIterator<Item = &'s [u8]>) -> Digest {
    let mut buf = Vec::new();
    for item in items {
        field(&mut buf, item);
    }
    *blake3::hash(&buf).as_bytes()
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

/// A fingerprint, and the tree it was hashed as (see [`tree`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    pub digest: Digest,
    pub tree: Tree,
}

/// Computes the fingerprint, and its parts without the input files.
///
/// A record's fingerprint is so a function of its parts alone:
/// [`crate::dir_stamps::check`] relies on it (change both with
/// `STATE_VERSION`).
pub fn compute(ing: &Ingredients) -> (Fingerprint, Parts) {
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
pub fn compute_with(ing: &Ingredients, n: usize, each: &mut Inputs) -> (Fingerprint, Parts) {
    let parts = base_parts(ing);
    (digest_with(&parts, n, each), parts)
}

/// The fingerprint of `parts` (every part but the input files) and the
/// `n` input files `each` passes on, as [`compute_with`] works it out.
pub fn digest_with(parts: &Parts, n: usize, each: &mut Inputs) -> Fingerprint {
    let mut w = Writer::default();
    head(&mut w, parts, n);
    each(&mut |path, exec, digest| {
        w.next_item();
        input(&mut w, path, exec, digest);
    });
    w.next_item();
    tail(&mut w, parts);
    let (digest, tree) = w.finish();
    Fingerprint { digest, tree }
}

/// The fingerprint `was` (of `parts` and `n` input files) with the input
/// files at `changed` (positions in path order, ascending) now as
/// `from` passes them: other contents or executable bits, the same
/// paths. `from(k, f)` passes the inputs from position `k` on to `f`,
/// in order, while it returns true. `None` when `was` has no tree to
/// patch, or one too small to gain from it.
pub fn patch(parts: &Parts, n: usize, was: &Tree, changed: &[usize], from: &mut InputsFrom) -> Option<Fingerprint> {
    // Item 0 is the head, item k + 1 input k, item n + 1 the tail.
    let items: Vec<u64> = changed.iter().map(|&k| k as u64 + 1).collect();
    let (digest, tree) = was.patch(&items, &mut |first, out, want| {
        if first == 0 {
            head(out, parts, n);
        }
        let k = first.saturating_sub(1) as usize;
        if out.len() < want && k < n {
            from(k, &mut |path, exec, digest| {
                input(out, path, exec, digest);
                out.len() < want
            });
        }
        if out.len() < want {
            tail(out, parts);
        }
        out.len() >= want
    })?;
    Some(Fingerprint { digest, tree })
}

/// Every part before the input files.
fn head(out: &mut impl Sink, parts: &Parts, n: usize) {
    field(out, FORMAT_VERSION.as_bytes());
    field(out, &parts.action);
    field(out, &(parts.env.len() as u64).to_le_bytes());
    for (k, d) in &parts.env {
        field(out, k.as_bytes());
        field(out, d);
    }
    field(out, &parts.dir);
    field(out, &parts.outputs);
    field(out, &(n as u64).to_le_bytes());
}

fn input(out: &mut impl Sink, path: &[u8], exec: bool, digest: &Digest) {
    field(out, path);
    field(out, &[exec as u8]);
    field(out, digest);
}

/// Every part after the input files.
fn tail(out: &mut impl Sink, parts: &Parts) {
    field(out, &(parts.deps.len() as u64).to_le_bytes());
    for (n, d) in &parts.deps {
        field(out, n.as_bytes());
        field(out, d);
    }
}

/// Input files given one by one: path, executable bit, digest.
pub type Inputs<'a> = dyn FnMut(&mut dyn FnMut(&[u8], bool, &Digest)) + 'a;

/// Input files from a position on, while the callee returns true.
pub type InputsFrom<'a> = dyn FnMut(usize, &mut dyn FnMut(&[u8], bool, &Digest) -> bool) + 'a;

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
            hex(&compute(&ing).0.digest),
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

    /// `n` inputs in path order, as a record keeps them.
    fn many(n: usize) -> (Vec<Entry>, Vec<Digest>) {
        let mut inputs: Vec<Entry> = (0..n)
            .map(|i| entry(&format!("src/{:03}/file-{i}.py", i % 97), i % 13 == 0))
            .collect();
        inputs.sort_by(|a, b| a.rel.cmp(&b.rel));
        let digests = (0..n).map(|i| [(i % 251) as u8; 32]).collect();
        (inputs, digests)
    }

    #[test]
    fn a_patched_fingerprint_is_the_one_worked_out_from_scratch() {
        let action = vec!["run".to_string()];
        let env = vec![("A".to_string(), "1".to_string())];
        let (mut inputs, mut digests) = many(10_000);
        let fingerprint = |inputs: &[Entry], digests: &[Digest]| {
            compute(&Ingredients {
                action: &action,
                env: &env,
                dir: ".",
                inputs,
                digests,
                deps: vec![("dep", [9; 32])],
                ..Ingredients::default()
            })
        };
        let (was, parts) = fingerprint(&inputs, &digests);
        assert!(was.tree.groups.len() > 8, "{} groups", was.tree.groups.len());
        let changed = [0, 1, 2500, 9999];
        for &k in &changed {
            digests[k] = [255; 32];
        }
        inputs[2500].stat.mode = 0o100755;
        let (full, _) = fingerprint(&inputs, &digests);
        assert_ne!(full.digest, was.digest);
        let patched = patch(&parts, inputs.len(), &was.tree, &changed, &mut |k, f| {
            for i in k..inputs.len() {
                if !f(inputs[i].rel.as_bytes(), executable(&inputs[i]), &digests[i]) {
                    break;
                }
            }
        });
        assert_eq!(patched, Some(full));
    }

    #[test]
    fn a_small_fingerprint_keeps_no_tree() {
        let (inputs, digests) = many(100);
        let ing = Ingredients {
            inputs: &inputs,
            digests: &digests,
            ..Ingredients::default()
        };
        let (fp, parts) = compute(&ing);
        assert_eq!(fp.tree, Tree::default());
        assert_eq!(patch(&parts, 100, &fp.tree, &[3], &mut |_, _| {}), None);
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
        let fp = fp.digest;
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
            assert_ne!(compute(v).0.digest, fp);
        }
        assert_eq!(compute(&clone(&base)).0.digest, fp);
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
