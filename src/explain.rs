//! Why a task runs or is skipped, in words (`--explain`, `--dry-run`).

use std::collections::HashMap;
use std::fmt;

use crate::hashing::Digest;
use crate::state::{LazyParts, Parts};

/// The reason for a task's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    UpToDate,
    NeverRan,
    Forced,
    Watched,
    NoInputs,
    Interactive,
    Aggregate,
    CommandChanged,
    VarChanged(String),
    EnvChanged(String),
    DirChanged,
    OutputsDeclared,
    DepChanged(String),
    DepAdded(String),
    DepRemoved(String),
    Inputs {
        added: Vec<String>,
        removed: Vec<String>,
        modified: Vec<String>,
    },
    OutputMissing(String),
    OutputChanged(String),
    ImageMissing(String),
    DepWouldRun(String),
    Other(String),
}

/// How many paths to name before "and N more".
const SHOWN: usize = 3;

fn list(kind: &str, paths: &[String]) -> Option<String> {
    if paths.is_empty() {
        return None;
    }
    let named: Vec<String> = paths
        .iter()
        .take(SHOWN)
        .map(|p| format!("`{}`", crate::inputs::display_key(p)))
        .collect();
    let more = paths.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!("{kind} {}{tail}", named.join(", ")))
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::UpToDate => f.write_str("up to date"),
            Reason::NeverRan => f.write_str("never ran"),
            Reason::Forced => f.write_str("forced (-B)"),
            Reason::Watched => f.write_str("one of its `watch` paths changed"),
            Reason::NoInputs => f.write_str("no `inputs` declared, so it always runs"),
            Reason::Interactive => f.write_str("interactive tasks always run"),
            Reason::Aggregate => f.write_str("runs its dependencies only"),
            Reason::CommandChanged => f.write_str("command changed"),
            Reason::VarChanged(v) => write!(f, "variable `{v}` changed"),
            Reason::EnvChanged(k) => write!(f, "environment `{k}` changed"),
            Reason::DirChanged => f.write_str("`dir` changed"),
            Reason::OutputsDeclared => f.write_str("its declared `outputs` changed"),
            Reason::DepChanged(d) => write!(f, "dependency `{d}` changed"),
            Reason::DepAdded(d) => write!(f, "new dependency `{d}`"),
            Reason::DepRemoved(d) => write!(f, "`{d}` is no longer a dependency"),
            Reason::Inputs {
                added,
                removed,
                modified,
            } => {
                let parts: Vec<String> = [
                    list("modified", modified),
                    list("added", added),
                    list("removed", removed),
                ]
                .into_iter()
                .flatten()
                .collect();
                write!(f, "inputs changed: {}", parts.join("; "))
            }
            Reason::OutputMissing(p) => write!(f, "output `{}` missing", crate::inputs::display_key(p)),
            Reason::OutputChanged(p) => write!(
                f,
                "output `{}` changed since the last run",
                crate::inputs::display_key(p)
            ),
            Reason::ImageMissing(r) => write!(f, "image `{r}` no longer exists"),
            Reason::DepWouldRun(d) => write!(f, "dependency `{d}` would run"),
            Reason::Other(s) => f.write_str(s),
        }
    }
}

/// What changed between the recorded parts and the current ones, most
/// specific first. The record's input files are compared as they are
/// read from the state, none of them copied.
pub fn diff(record: &LazyParts, new: &Parts) -> Reason {
    let old = record.base();
    let old_vars: HashMap<&str, &[u8; 32]> = old.vars.iter().map(|(n, d)| (n.as_str(), d)).collect();
    for (name, d) in &new.vars {
        if old_vars.get(name.as_str()).is_some_and(|o| *o != d) {
            return Reason::VarChanged(name.clone());
        }
    }
    let old_deps: HashMap<&str, &[u8; 32]> = old.deps.iter().map(|(n, d)| (n.as_str(), d)).collect();
    for (name, d) in &new.deps {
        match old_deps.get(name.as_str()) {
            None => return Reason::DepAdded(name.clone()),
            Some(before) if *before != d => return Reason::DepChanged(name.clone()),
            Some(_) => {}
        }
    }
    if let Some((name, _)) = old.deps.iter().find(|(n, _)| !new.deps.iter().any(|(m, _)| m == n)) {
        return Reason::DepRemoved(name.clone());
    }
    if old.action != new.action {
        return Reason::CommandChanged;
    }
    if old.env != new.env {
        let old_env: HashMap<&str, &[u8; 32]> = old.env.iter().map(|(n, d)| (n.as_str(), d)).collect();
        let new_env: HashMap<&str, &[u8; 32]> = new.env.iter().map(|(n, d)| (n.as_str(), d)).collect();
        let changed = new
            .env
            .iter()
            .find(|(k, d)| old_env.get(k.as_str()) != Some(&d))
            .map(|(k, _)| k.clone())
            .or_else(|| {
                old.env
                    .iter()
                    .find(|(k, _)| !new_env.contains_key(k.as_str()))
                    .map(|(k, _)| k.clone())
            });
        return Reason::EnvChanged(changed.unwrap_or_default());
    }
    if old.dir != new.dir {
        return Reason::DirChanged;
    }
    if old.outputs != new.outputs {
        return Reason::OutputsDeclared;
    }
    match input_changes(|f| record.each_input(f), &new.inputs) {
        Reason::Inputs {
            added,
            removed,
            modified,
        } if added.is_empty() && removed.is_empty() && modified.is_empty() => {
            Reason::Other("its fingerprint changed".into())
        }
        changes => changes,
    }
}

type InputPart = (String, Digest, bool);

/// Added, removed and modified files, by one merge of the two lists in
/// path order (100,000 inputs each: no hash table to build). `old` calls
/// its argument with each old input (path, digest, executable bit) in
/// path order.
fn input_changes(old: impl FnOnce(&mut dyn FnMut(&str, &Digest, bool)), new: &[InputPart]) -> Reason {
    let mut new: Vec<&InputPart> = new.iter().collect();
    if !new.is_sorted_by(|a, b| a.0 <= b.0) {
        new.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let (mut added, mut removed, mut modified) = (Vec::new(), Vec::new(), Vec::new());
    let mut j = 0;
    old(&mut |path, digest, exec| {
        while let Some(n) = new.get(j).filter(|n| n.0.as_str() < path) {
            added.push(n.0.clone());
            j += 1;
        }
        match new.get(j) {
            Some(n) if n.0 == path => {
                if (&n.1, n.2) != (digest, exec) {
                    modified.push(n.0.clone());
                }
                j += 1;
            }
            _ => removed.push(path.to_string()),
        }
    });
    added.extend(new[j..].iter().map(|n| n.0.clone()));
    Reason::Inputs {
        added,
        removed,
        modified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(files: &[(&str, u8, bool)]) -> Vec<InputPart> {
        files.iter().map(|(p, d, x)| (p.to_string(), [*d; 32], *x)).collect()
    }

    #[test]
    fn input_changes_name_added_removed_and_modified_files() {
        let old = parts(&[("a", 1, false), ("b", 1, false), ("c", 1, false), ("e", 1, false)]);
        // Out of order on purpose: the merge must not depend on it.
        let new = parts(&[
            ("d", 1, false),
            ("a", 1, false),
            ("b", 2, false),
            ("c", 1, true),
            ("f", 1, false),
        ]);
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let each = |list: Vec<InputPart>| {
            move |f: &mut dyn FnMut(&str, &Digest, bool)| list.iter().for_each(|(p, d, x)| f(p, d, *x))
        };
        assert_eq!(
            input_changes(each(old.clone()), &new),
            Reason::Inputs {
                added: strings(&["d", "f"]),
                removed: strings(&["e"]),
                modified: strings(&["b", "c"]),
            }
        );
        assert_eq!(
            input_changes(each(Vec::new()), &old[..1]),
            Reason::Inputs {
                added: strings(&["a"]),
                removed: vec![],
                modified: vec![],
            }
        );
    }
}
