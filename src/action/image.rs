//! The `image` action: `docker buildx build`, with the checks that decide
//! whether a built image is still there.

use std::path::{Component, Path, PathBuf};

use super::builder;
use super::{ActionError, Compiled, Step};
use crate::config::template::Template;
use crate::config::{Config, ConfigError, ImageAction, load};
use crate::render::{RenderError, Renderer};

/// Where an image task's default inputs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildContext {
    /// The context directory, relative to the root.
    pub dir: String,
    /// The Dockerfile, relative to the root.
    pub dockerfile: String,
    /// Directories inside the context (relative to it) that are never
    /// inputs: the `type=local` cache directories buildx writes while it
    /// builds, which would otherwise make every build out of date.
    pub exclude: Vec<String>,
}

/// Renders a boolean field (`true`, `false` or a template giving one).
pub fn flag(r: &Renderer, t: &Option<crate::config::template::Template>, what: &str) -> Result<bool, ActionError> {
    match r.render_opt(t)?.as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ActionError::Invalid(format!(
            "`{what}` must be `true` or `false`, not `{other}`"
        ))),
    }
}

fn join(dir: &str, file: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() || dir == "." {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

/// The local directory of a `type=local` cache entry (`src=`/`dest=`).
fn local_cache_dir(entry: &str) -> Option<&str> {
    let fields: Vec<&str> = entry.split(',').collect();
    if !fields.iter().any(|f| f.trim() == "type=local") {
        return None;
    }
    fields
        .iter()
        .find_map(|f| f.trim().strip_prefix("dest=").or_else(|| f.trim().strip_prefix("src=")))
}

/// `entry` with its `type=local` directory (`src=`/`dest=`) passed through `f`.
fn map_local_cache_dir(entry: &str, f: impl Fn(&str) -> String) -> String {
    if local_cache_dir(entry).is_none() {
        return entry.to_string();
    }
    entry
        .split(',')
        .map(|field| {
            let t = field.trim();
            match t
                .strip_prefix("dest=")
                .map(|d| ("dest=", d))
                .or_else(|| t.strip_prefix("src=").map(|d| ("src=", d)))
            {
                Some((key, d)) => format!("{key}{}", f(d)),
                None => field.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `p` (relative to the root, or absolute) as a normalised root-relative
/// path (`""` for the root itself), if it lies under the root.
fn under_root(root: &str, p: &str) -> Option<String> {
    let p = Path::new(p);
    let rel = if p.is_absolute() { p.strip_prefix(root).ok()? } else { p };
    let mut parts: Vec<&str> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// `cache` relative to `context` when it lies strictly inside it (both
/// relative to the root, or absolute).
fn inside_context(root: &str, context: &str, cache: &str) -> Option<String> {
    let context = under_root(root, context)?;
    let cache = under_root(root, cache)?;
    if context.is_empty() {
        (!cache.is_empty()).then_some(cache)
    } else {
        cache
            .strip_prefix(&context)
            .and_then(|c| c.strip_prefix('/'))
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
    }
}

/// Why `name` cannot be an image repository: a tag (a `:` after the last
/// `/`; `localhost:5000/app` has none) or a digest in it would make
/// `-t NAME:TAG` an invalid reference, and `tasks.NAME.image` with it.
pub fn name_error(name: &str) -> Option<String> {
    let name = name.trim();
    if let Some((repo, digest)) = name.split_once('@') {
        return Some(format!(
            "`image.name` must be a repository without a digest (`{name}`): mtr tags what it builds, name `{repo}` only (not `@{digest}`)"
        ));
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    let (_, tag) = last.split_once(':')?;
    Some(format!(
        "`image.name` must be a repository without a tag (`{name}`): put `{tag}` in `tags`"
    ))
}

pub fn compile(config: &Config, image: &ImageAction, r: &Renderer, dir: &str) -> Result<Compiled, ActionError> {
    let name = r.render(&image.name)?;
    if name.trim().is_empty() {
        return Err(ActionError::Invalid("`image.name` is empty".into()));
    }
    if let Some(why) = name_error(&name) {
        return Err(ActionError::Invalid(why));
    }
    let tags = match &image.tags {
        Some(tags) => r.render_split(tags)?,
        None => Vec::new(),
    };
    // Default (and fallback when every tag renders empty): the content hash.
    let tags = if tags.is_empty() {
        vec![r.hash.unwrap_or("{{ hash }}").to_string()]
    } else {
        tags
    };
    let refs: Vec<String> = tags.iter().map(|t| format!("{name}:{t}")).collect();
    let context = r
        .render_opt(&image.context)?
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| ".".into());
    let dockerfile = r.render_opt(&image.dockerfile)?.filter(|d| !d.is_empty());
    let platforms = r.render_split(&image.platforms)?;
    let push = flag(r, &image.push, "push")?;
    if platforms.len() > 1 && !push {
        return Err(ActionError::Invalid(
            "several platforms need `push = true`: `docker buildx build --load` cannot load a multi-platform image"
                .into(),
        ));
    }
    // Paths are relative to the root; the task's `dir` only moves the cwd.
    let rel = |p: &str| -> String {
        if dir == "." || Path::new(p).is_absolute() {
            p.to_string()
        } else {
            format!("{}/{p}", r.root)
        }
    };
    let mut steps = vec![Step::RequireBuildx];
    let mut argv: Vec<String> = ["docker", "buildx", "build"].map(String::from).to_vec();
    let builder_name = r.render_opt(&image.builder)?.filter(|b| !b.is_empty());
    if let Some(b) = &builder_name {
        if let Some(def) = config.builders.get(b) {
            steps.push(Step::EnsureBuilder(Box::new(builder::compile(def, r)?)));
        }
        argv.extend(["--builder".into(), b.clone()]);
    }
    if let Some(f) = &dockerfile {
        argv.extend(["-f".into(), rel(f)]);
    }
    if let Some(t) = r.render_opt(&image.target)?.filter(|t| !t.is_empty()) {
        argv.extend(["--target".into(), t]);
    }
    if !platforms.is_empty() {
        argv.extend(["--platform".into(), platforms.join(",")]);
    }
    for (k, v) in r.render_map(&image.build_args)? {
        argv.extend(["--build-arg".into(), format!("{k}={v}")]);
    }
    let mut exclude = Vec::new();
    for (flag, entries) in [("--cache-from", &image.cache_from), ("--cache-to", &image.cache_to)] {
        for entry in r.render_list(entries)? {
            if let Some(d) = local_cache_dir(&entry) {
                let mkdir = Step::MkDir(PathBuf::from(d));
                if !steps.contains(&mkdir) {
                    steps.push(mkdir);
                }
                // buildx writes there while it builds: never an input.
                if let Some(inside) = inside_context(r.root, &context, d)
                    && !exclude.contains(&inside)
                {
                    exclude.push(inside);
                }
            }
            // Relative to the root, where mtr creates it, whatever the cwd.
            argv.extend([flag.into(), map_local_cache_dir(&entry, rel)]);
        }
    }
    for ssh in r.render_list(&image.ssh)? {
        argv.extend(["--ssh".into(), ssh]);
    }
    for secret in r.render_list(&image.secrets)? {
        argv.extend(["--secret".into(), secret]);
    }
    for reference in &refs {
        argv.extend(["-t".into(), reference.clone()]);
    }
    argv.push(if push { "--push" } else { "--load" }.into());
    argv.push(rel(&context));
    let first = refs[0].clone();
    let exists = if push {
        ["docker", "buildx", "imagetools", "inspect"].map(String::from).to_vec()
    } else {
        ["docker", "image", "inspect"].map(String::from).to_vec()
    };
    let mut identity = vec!["image".to_string()];
    identity.extend(argv.iter().cloned());
    steps.push(Step::Exec(argv));
    Ok(Compiled {
        steps,
        identity,
        image: Some(first.clone()),
        exists: Some([exists, vec![first]].concat()),
        context: Some(BuildContext {
            dockerfile: dockerfile.unwrap_or_else(|| join(&context, "Dockerfile")),
            dir: context,
            exclude,
        }),
    })
}

/// The checks when the plan is made: templates are rendered now, so
/// `PLATFORMS=linux/arm64` narrowing a build is taken into account. An
/// `image.name` with a tag or digest in it (`controller:latest`) is
/// reported first, pointing at it; then several platforms without `push`.
/// A `push` template that renders to neither `true` nor `false` is
/// reported here too, pointing at it. What needs a dependency's result
/// (`{{ tasks.NAME.image }}`) is checked when the task runs.
pub fn check_when_planned(task: &str, image: &ImageAction, r: &Renderer) -> Result<(), ConfigError> {
    if let Ok(name) = r.render(&image.name)
        && let Some(why) = name_error(&name)
    {
        return Err(tagged_name_error(task, &image.name, &why));
    }
    let platforms = match r.render_split(&image.platforms) {
        Ok(p) => p,
        Err(RenderError::Unknown(..)) => return Ok(()),
        Err(e) => return Err(render_err(e)),
    };
    let push = match flag(r, &image.push, "push") {
        Ok(push) => push,
        Err(ActionError::Render(RenderError::Unknown(..))) => return Ok(()),
        Err(ActionError::Render(e)) => return Err(render_err(e)),
        Err(e @ ActionError::Invalid(_)) => {
            let mut err = ConfigError::new("push", format!("task `{task}`: {e}"));
            if let Some(t) = &image.push {
                let vars: Vec<String> = crate::render::used_vars([t]).iter().map(|v| format!("`{v}`")).collect();
                err = err
                    .label(t.span.clone(), "must render to `true` or `false`")
                    .maybe_help((!vars.is_empty()).then(|| format!("set {} to `true` or `false`", vars.join(", "))));
            }
            return Err(err);
        }
    };
    if platforms.len() > 1 && !push {
        return Err(load::multi_platform_error(task, image));
    }
    Ok(())
}

/// An `image.name` that is not a bare repository (see [`name_error`]).
pub fn tagged_name_error(task: &str, name: &Template, why: &str) -> ConfigError {
    let literal = name.as_literal().is_some();
    ConfigError::new("image-name", format!("task `{task}`: {why}"))
        .label(
            name.span.clone(),
            if literal {
                "a repository, without `:TAG` or `@DIGEST`"
            } else {
                "renders to a tagged reference"
            },
        )
        .help("tags go in `tags` (default: the content hash), e.g. name = \"controller\", tags = [\"latest\"]")
}

fn render_err(e: RenderError) -> ConfigError {
    ConfigError::new("render", e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_local_cache_dirs() {
        assert_eq!(local_cache_dir("type=local,src=.cache/b"), Some(".cache/b"));
        assert_eq!(local_cache_dir("type=local,dest=/tmp/c,mode=max"), Some("/tmp/c"));
        assert_eq!(local_cache_dir("type=registry,ref=r/x:cache"), None);
    }

    #[test]
    fn local_cache_dirs_inside_the_context_are_excluded() {
        assert_eq!(inside_context("/p", ".", ".cache/buildx"), Some(".cache/buildx".into()));
        assert_eq!(
            inside_context("/p", ".", "./.cache/buildx/"),
            Some(".cache/buildx".into())
        );
        assert_eq!(inside_context("/p", ".", "/p/.cache"), Some(".cache".into()));
        assert_eq!(inside_context("/p", "app", "app/.cache"), Some(".cache".into()));
        assert_eq!(inside_context("/p", "./app/", "/p/app/c/d"), Some("c/d".into()));
        assert_eq!(inside_context("/p", "app", ".cache"), None);
        assert_eq!(inside_context("/p", "app", "application/.cache"), None);
        assert_eq!(inside_context("/p", ".", "/tmp/cache"), None);
        assert_eq!(inside_context("/p", ".", "../cache"), None);
        assert_eq!(inside_context("/p", "app", "app"), None);
    }

    #[test]
    fn a_relative_local_cache_dir_is_rewritten() {
        let f = |d: &str| format!("/p/{d}");
        assert_eq!(
            map_local_cache_dir("type=local,dest=.cache/b,mode=max", f),
            "type=local,dest=/p/.cache/b,mode=max"
        );
        assert_eq!(
            map_local_cache_dir("type=registry,ref=r/x:c", f),
            "type=registry,ref=r/x:c"
        );
    }

    #[test]
    fn a_name_is_a_repository_without_tag_or_digest() {
        for ok in ["app", "localhost:5000/app", "reg:5000/team/app", "ghcr.io/o/app"] {
            assert_eq!(name_error(ok), None, "{ok}");
        }
        assert_eq!(
            name_error("controller:latest").unwrap(),
            "`image.name` must be a repository without a tag (`controller:latest`): put `latest` in `tags`"
        );
        assert!(
            name_error("localhost:5000/app:v1")
                .unwrap()
                .contains("put `v1` in `tags`")
        );
        assert!(name_error("app@sha256:abc").unwrap().contains("without a digest"));
    }
}
