//! An `image` task's default inputs: the Dockerfile plus every file of the
//! build context that Docker's `.dockerignore` rules keep, but for the
//! `type=local` cache directories buildx writes into (as `.mtr/`, never
//! an input).

use std::path::Path;

use crate::action::image::BuildContext;
use crate::dockerignore::DockerIgnore;
use crate::inputs::{Entry, InputError, Stat};

fn io_err(rel: &str, source: std::io::Error) -> InputError {
    InputError::Io {
        path: rel.to_string(),
        source,
    }
}

/// Files of the context (root-relative, sorted), plus the Dockerfile.
pub fn files(root: &Path, ctx: &BuildContext) -> Result<Vec<Entry>, InputError> {
    let dir = ctx.dir.trim_start_matches("./").trim_end_matches('/');
    let dir = if dir == "." { "" } else { dir };
    let context = root.join(dir);
    let dockerfile = root.join(&ctx.dockerfile);
    let (ignore, _) = DockerIgnore::load(&context, &dockerfile).map_err(|e| io_err(".dockerignore", e))?;
    let mut out = Vec::new();
    let skip = Skip {
        ignore: &ignore,
        dirs: &ctx.exclude,
    };
    walk(root, &context, dir, "", &skip, &mut out)?;
    let df_rel = ctx.dockerfile.trim_start_matches("./").to_string();
    if !out.iter().any(|e| *e.rel == *df_rel) {
        let m = std::fs::symlink_metadata(&dockerfile).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                io_err(&df_rel, std::io::Error::new(e.kind(), "the Dockerfile does not exist"))
            } else {
                io_err(&df_rel, e)
            }
        })?;
        out.push(Entry {
            rel: df_rel.into(),
            stat: Stat::of(&m),
            link: None,
        });
    }
    out.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// What the walk leaves out: what `.dockerignore` excludes, and `dirs`
/// (context-relative) whatever it says.
struct Skip<'a> {
    ignore: &'a DockerIgnore,
    dirs: &'a [String],
}

/// Walks `abs` (context-relative `rel`), keeping what `.dockerignore` keeps.
fn walk(root: &Path, abs: &Path, prefix: &str, rel: &str, skip: &Skip, out: &mut Vec<Entry>) -> Result<(), InputError> {
    let ignore = skip.ignore;
    let root_rel = |r: &str| {
        if prefix.is_empty() {
            r.to_string()
        } else {
            format!("{prefix}/{r}")
        }
    };
    let entries = std::fs::read_dir(abs).map_err(|e| io_err(&root_rel(rel), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(&root_rel(rel), e))?;
        let name = entry.file_name();
        let name = crate::inputs::name_key(&name);
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let project_rel = root_rel(&child);
        if name == ".git" || project_rel == ".mtr" || skip.dirs.contains(&child) {
            continue;
        }
        let ft = entry.file_type().map_err(|e| io_err(&project_rel, e))?;
        if ft.is_dir() {
            if !ignore.can_skip_dir(&child) {
                walk(root, &entry.path(), prefix, &child, skip, out)?;
            }
            continue;
        }
        if ignore.is_excluded(&child) {
            continue;
        }
        let path = root.join(crate::inputs::key_path(&project_rel));
        let m = std::fs::symlink_metadata(&path).map_err(|e| io_err(&project_rel, e))?;
        let link = if m.file_type().is_symlink() {
            Some(std::fs::read_link(&path).map_err(|e| io_err(&project_rel, e))?.into())
        } else {
            None
        };
        out.push(Entry {
            rel: project_rel.into(),
            stat: Stat::of(&m),
            link,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_dockerignore_keeps() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "app/Dockerfile",
            "app/src/a.py",
            "app/src/__pycache__/a.pyc",
            "app/README.md",
            "app/notes.md",
            "app/.dockerignore",
        ] {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        std::fs::write(
            t.path().join("app/.dockerignore"),
            "**/__pycache__\n*.md\n!README.md\nDockerfile\n",
        )
        .unwrap();
        let ctx = BuildContext {
            dir: "app".into(),
            dockerfile: "app/Dockerfile".into(),
            exclude: Vec::new(),
        };
        let rels: Vec<String> = files(t.path(), &ctx)
            .unwrap()
            .into_iter()
            .map(|e| e.rel.into())
            .collect();
        assert_eq!(
            rels,
            ["app/.dockerignore", "app/Dockerfile", "app/README.md", "app/src/a.py"]
        );
    }

    #[test]
    fn excluded_dirs_are_never_inputs() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "app/Dockerfile",
            "app/a.txt",
            "app/.cache/buildx/index.json",
            "app/x/.cache/keep",
        ] {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        let ctx = BuildContext {
            dir: "app".into(),
            dockerfile: "app/Dockerfile".into(),
            exclude: vec![".cache".into()],
        };
        let rels: Vec<String> = files(t.path(), &ctx)
            .unwrap()
            .into_iter()
            .map(|e| e.rel.into())
            .collect();
        assert_eq!(rels, ["app/Dockerfile", "app/a.txt", "app/x/.cache/keep"]);
    }
}
