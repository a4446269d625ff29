//! The `container` action: `docker run --rm`, mounts made absolute from the
//! project root. `-i -t` and the container's name are added when it starts
//! (they depend on the terminal and the process, not on the task).

use super::{ActionError, Compiled, Step};
use crate::config::{CommandSpec, ContainerAction};
use crate::render::Renderer;

/// A `docker run` to start: the arguments after `docker run --rm [--name N] [-i -t]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRun {
    pub args: Vec<String>,
}

impl ContainerRun {
    /// The full argv for a container called `name`, with a terminal or not.
    pub fn argv(&self, name: &str, tty: bool) -> Vec<String> {
        let mut argv: Vec<String> = ["docker", "run", "--rm", "--name", name].map(String::from).to_vec();
        if tty {
            argv.extend(["-i".into(), "-t".into()]);
        }
        argv.extend(self.args.iter().cloned());
        argv
    }
}

/// `HOST:CONTAINER[:OPTS]` with a relative host side made absolute: from
/// the project root, or from `home` for `~` and `~/…` (as a shell would;
/// never a directory called `~` in the project).
fn mount(root: &str, home: Option<&str>, spec: &str) -> Result<String, ActionError> {
    let (host, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let host = if host.starts_with('/') {
        host.to_string()
    } else if host == "~" || host.starts_with("~/") {
        let home = home.filter(|h| !h.is_empty()).ok_or_else(|| {
            ActionError::Invalid(format!(
                "`container.mounts`: `{spec}` starts with `~` but HOME is not set"
            ))
        })?;
        let sub = host[1..].trim_start_matches('/');
        let home = home.trim_end_matches('/');
        if sub.is_empty() {
            if home.is_empty() { "/".into() } else { home.to_string() }
        } else {
            format!("{home}/{sub}")
        }
    } else {
        let h = host.trim_start_matches("./");
        if h.is_empty() || h == "." {
            root.to_string()
        } else {
            format!("{root}/{h}")
        }
    };
    Ok(if rest.is_empty() {
        format!("{host}:{host}")
    } else {
        format!("{host}:{rest}")
    })
}

/// The `docker run` of `c`. The task's own `env` (`task_env`: names) is
/// passed into the container by name (`-e NAME`, the value coming from
/// the docker CLI's environment, so it is never on the command line),
/// except where `container.env` sets the same name.
pub fn compile<'a>(
    c: &ContainerAction,
    task_env: impl Iterator<Item = &'a str>,
    r: &Renderer,
) -> Result<Compiled, ActionError> {
    let image = r.render(&c.image)?;
    if image.is_empty() {
        return Err(ActionError::Invalid("`container.image` is empty".into()));
    }
    let mut args = Vec::new();
    if let Some(e) = r.render_opt(&c.entrypoint)?.filter(|e| !e.is_empty()) {
        args.extend(["--entrypoint".into(), e]);
    }
    for name in task_env.filter(|n| !c.env.iter().any(|(k, _)| k == n)) {
        args.extend(["-e".into(), name.to_string()]);
    }
    for (k, v) in r.render_map(&c.env)? {
        args.extend(["-e".into(), format!("{k}={v}")]);
    }
    let home = std::env::var("HOME").ok();
    for m in r.render_list(&c.mounts)? {
        args.extend(["-v".into(), mount(r.root, home.as_deref(), &m)?]);
    }
    if let Some(w) = r.render_opt(&c.workdir)?.filter(|w| !w.is_empty()) {
        args.extend(["-w".into(), w]);
    }
    args.push(image);
    match &c.command {
        Some(CommandSpec::Line(t)) => {
            let line = r.render(t)?;
            let words = shlex::split(&line)
                .ok_or_else(|| ActionError::Invalid(format!("cannot split `container.command` into words: {line}")))?;
            args.extend(words);
        }
        Some(CommandSpec::Argv(v)) => args.extend(r.render_list(v)?),
        None => {}
    }
    let mut identity = vec!["container".to_string()];
    identity.extend(args.iter().cloned());
    Ok(Compiled {
        steps: vec![Step::Container(ContainerRun { args })],
        identity,
        ..Compiled::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_are_absolute_from_the_root() {
        let m = |spec| mount("/p", Some("/home/u"), spec).unwrap();
        assert_eq!(m("src:/app/src"), "/p/src:/app/src");
        assert_eq!(m("./data:/data:ro"), "/p/data:/data:ro");
        assert_eq!(m("/abs:/x"), "/abs:/x");
        assert_eq!(m(".:/work"), "/p:/work");
    }

    #[test]
    fn a_tilde_is_the_home_directory() {
        let m = |spec| mount("/p", Some("/home/u/"), spec).unwrap();
        assert_eq!(m("~/.kube:/root/.kube:ro"), "/home/u/.kube:/root/.kube:ro");
        assert_eq!(m("~:/h"), "/home/u:/h");
        assert_eq!(m("~/.cache"), "/home/u/.cache:/home/u/.cache");
        // Only `~` itself and `~/…`: other names stay relative to the root.
        assert_eq!(m("~x:/x"), "/p/~x:/x");
        let err = mount("/p", None, "~/.kube:/k").unwrap_err().to_string();
        assert!(err.contains("HOME is not set"), "{err}");
    }

    #[test]
    fn argv_adds_tty_only_when_asked() {
        let run = ContainerRun {
            args: vec!["img".into(), "true".into()],
        };
        assert_eq!(run.argv("n", false).join(" "), "docker run --rm --name n img true");
        assert_eq!(run.argv("n", true).join(" "), "docker run --rm --name n -i -t img true");
    }
}
