//! What goes into a task's fingerprint (SPEC section 3).
//!
//! blake3 over a format version, the resolved action, the resolved env, the
//! working directory, every input file (path, executable bit, content) and
//! the fingerprints of the deps. Each part is also kept as its own digest
//! so `--explain` can say which one changed.

use crate::hashing::Digest;
use crate::state::Parts;

/// Bumped when what goes into a fingerprint changes.
pub const FORMAT_VERSION: &str = "mtr-fingerprint-1";

/// Everything a fingerprint covers, already rendered.
#[derive(Debug, Default)]
pub struct Ingredients<'a> {
    pub action: &'a [String],
    pub env: &'a [(String, String)],
    pub dir: &'a str,
    pub inputs: Vec<(&'a str, Digest, bool)>,
    pub deps: Vec<(&'a str, Digest)>,
    /// Variables the task uses, for explanations only (their effect is
    /// already in the rendered action). Volatile values are left out.
    pub vars: Vec<(&'a str, Option<&'a str>)>,
}

/// Length-prefixed fields, so `["ab"]` and `["a", "b"]` never collide.
fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn digest_of<'s>(items: impl IntoIterator<Item = &'s [u8]>) -> Digest {
    let mut h = blake3::Hasher::new();
    for item in items {
        field(&mut h, item);
    }
    *h.finalize().as_bytes()
}

/// Computes the fingerprint and its parts.
pub fn compute(ing: &Ingredients) -> (Digest, Parts) {
    let mut env: Vec<(String, Digest)> = ing
        .env
        .iter()
        .map(|(k, v)| (k.clone(), digest_of([k.as_bytes(), v.as_bytes()])))
        .collect();
    env.sort();
    let mut deps: Vec<(String, Digest)> = ing.deps.iter().map(|(n, d)| (n.to_string(), *d)).collect();
    deps.sort();
    let mut inputs: Vec<(String, Digest, bool)> = ing.inputs.iter().map(|(p, d, x)| (p.to_string(), *d, *x)).collect();
    inputs.sort_by(|a, b| a.0.cmp(&b.0));
    let vars = ing
        .vars
        .iter()
        .filter_map(|(n, v)| v.map(|v| (n.to_string(), digest_of([n.as_bytes(), v.as_bytes()]))))
        .collect();
    let parts = Parts {
        action: digest_of(ing.action.iter().map(|s| s.as_bytes())),
        env,
        vars,
        dir: digest_of([ing.dir.as_bytes()]),
        deps,
        inputs,
    };
    let mut h = blake3::Hasher::new();
    field(&mut h, FORMAT_VERSION.as_bytes());
    field(&mut h, &parts.action);
    field(&mut h, &(parts.env.len() as u64).to_le_bytes());
    for (k, d) in &parts.env {
        field(&mut h, k.as_bytes());
        field(&mut h, d);
    }
    field(&mut h, &parts.dir);
    field(&mut h, &(parts.inputs.len() as u64).to_le_bytes());
    for (p, d, x) in &parts.inputs {
        field(&mut h, p.as_bytes());
        field(&mut h, &[*x as u8]);
        field(&mut h, d);
    }
    field(&mut h, &(parts.deps.len() as u64).to_le_bytes());
    for (n, d) in &parts.deps {
        field(&mut h, n.as_bytes());
        field(&mut h, d);
    }
    (*h.finalize().as_bytes(), parts)
}

/// The first 12 hex digits, as `{{ hash }}` shows it.
pub fn short(d: &Digest) -> String {
    hex(d)[..12].to_string()
}

pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_changes_the_fingerprint() {
        let action = vec!["run".to_string(), "make".to_string()];
        let env = vec![("A".to_string(), "1".to_string())];
        let base = Ingredients {
            action: &action,
            env: &env,
            dir: ".",
            inputs: vec![("a.txt", [1; 32], false)],
            deps: vec![("dep", [2; 32])],
            vars: vec![],
        };
        let (fp, _) = compute(&base);
        let other_action = vec!["run".to_string(), "make all".to_string()];
        let other_env = vec![("A".to_string(), "2".to_string())];
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
                inputs: vec![("a.txt", [1; 32], true)],
                ..clone(&base)
            },
            Ingredients {
                inputs: vec![("b.txt", [1; 32], false)],
                ..clone(&base)
            },
            Ingredients {
                inputs: vec![("a.txt", [3; 32], false)],
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
            inputs: i.inputs.clone(),
            deps: i.deps.clone(),
            vars: i.vars.clone(),
        }
    }
}
