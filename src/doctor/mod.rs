//! `--doctor`: checks what the tasks of this montage.toml need — the
//! shell, `docker` and its daemon, the buildx plugin, builders, the
//! registries image tasks push to, `kubectl` and its contexts — and says
//! exactly how to fix each problem. Only what some task uses is checked.

mod command;
mod kubectl;
pub mod registry;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;

use command::Output;

use crate::action::image;
use crate::config::vars::Vars;
use crate::config::{Action, Config, Task};
use crate::render::Renderer;

/// How long a registry or buildkitd node gets to answer.
const NET_TIMEOUT: Duration = Duration::from_secs(3);

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    /// Something a task needs is broken; `fix` says what to do.
    Problem {
        what: String,
        fix: String,
    },
    /// Not a problem, but worth knowing (e.g. a builder mtr will create).
    Note(String),
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub subject: String,
    pub verdict: Verdict,
}

/// Runs every check that applies to the tasks in `scope` (every task when
/// `None`); returns them in the order printed.
pub fn checks(config: &Config, vars: &Vars, scope: Option<&HashSet<String>>) -> Vec<Check> {
    let root = config.root.display().to_string();
    let d = Doctor {
        config,
        vars,
        root: &root,
        env: vars.env(),
        scope,
        out: Vec::new(),
    };
    d.run()
}

/// The report as printed, and whether everything is in place.
pub fn report(checks: &[Check], color: bool) -> (String, bool) {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    let mut problems = 0;
    for c in checks {
        match &c.verdict {
            Verdict::Ok(text) => out.push_str(&format!("{} {}: {text}\n", paint("32", "✓"), c.subject)),
            Verdict::Note(text) => out.push_str(&format!("{} {}: {text}\n", paint("2", "-"), c.subject)),
            Verdict::Problem { what, fix } => {
                problems += 1;
                out.push_str(&format!("{} {}: {what}\n", paint("31", "✗"), c.subject));
                for (i, line) in fix.lines().enumerate() {
                    let lead = if i == 0 { "  fix: " } else { "       " };
                    out.push_str(&format!("{lead}{line}\n"));
                }
            }
        }
    }
    if checks.is_empty() {
        out.push_str("nothing to check: no task runs a command, docker or kubectl\n");
    } else if problems == 0 {
        out.push_str("\neverything the tasks need is in place\n");
    } else {
        let s = if problems == 1 { "" } else { "s" };
        out.push_str(&format!("\n{problems} problem{s} found\n"));
    }
    (out, problems == 0)
}

/// The checks being made, and their results so far.
struct Doctor<'a> {
    config: &'a Config,
    vars: &'a Vars,
    root: &'a str,
    env: &'a HashMap<String, String>,
    scope: Option<&'a HashSet<String>>,
    out: Vec<Check>,
}

impl<'a> Doctor<'a> {
    fn run(mut self) -> Vec<Check> {
        let tasks: Vec<&Task> = self
            .config
            .tasks
            .values()
            .filter(|t| self.scope.is_none_or(|s| s.contains(&t.name)))
            .collect();
        let of_kind =
            |kind: &str| -> Vec<&Task> { tasks.iter().copied().filter(|t| t.action.kind() == kind).collect() };
        let (runs, images, containers, deploys) = (
            of_kind("run"),
            of_kind("image"),
            of_kind("container"),
            of_kind("deploy"),
        );
        if let Some(first) = runs.first() {
            self.shell(first);
        }
        if let Some(user) = images.first().or(containers.first()).copied() {
            let docker = self.docker(user);
            let buildx = match images.first() {
                Some(first) if docker => self.buildx(first),
                Some(_) => {
                    self.push("buildx", Verdict::Note("not checked: docker does not work yet".into()));
                    false
                }
                None => false,
            };
            if buildx {
                self.builders(&images);
            } else if !images.is_empty() && !self.config.builders.is_empty() {
                self.push(
                    "builders",
                    Verdict::Note("not checked: they need docker and buildx".into()),
                );
            }
        }
        // The remote cache serves tasks that declare outputs.
        let cached = self.config.cache.is_some() && tasks.iter().any(|t| !t.outputs.is_empty());
        if !images.is_empty() || cached {
            self.registries(&images, cached);
        }
        if let Some(first) = deploys.first() {
            self.kubectl(first, &deploys);
        }
        self.out
    }

    fn push(&mut self, subject: impl Into<String>, verdict: Verdict) {
        self.out.push(Check {
            subject: subject.into(),
            verdict,
        });
    }

    fn problem(&mut self, subject: impl Into<String>, what: impl Into<String>, fix: impl Into<String>) {
        self.push(
            subject,
            Verdict::Problem {
                what: what.into(),
                fix: fix.into(),
            },
        );
    }

    fn renderer(&self, task: &'a str) -> Renderer<'a> {
        Renderer {
            vars: self.vars,
            task,
            root: self.root,
            hash: Some("<hash>"),
            deps: EMPTY.get_or_init(HashMap::new),
        }
    }

    /// Runs `argv` with the tasks' environment, with a time limit.
    fn command(&self, argv: &[&str]) -> Output {
        command::run(argv, self.env, &self.config.root)
    }

    fn which(&self, program: &str) -> Option<PathBuf> {
        command::which(program, self.env.get("PATH").map(String::as_str).unwrap_or(""))
    }

    fn shell(&mut self, task: &Task) {
        let Some(program) = self.config.project.shell.first().cloned() else {
            return;
        };
        match self.which(&program) {
            Some(path) => self.push("shell", Verdict::Ok(format!("`{program}` ({})", path.display()))),
            None => self.problem(
                "shell",
                format!("`{program}` was not found on PATH (it runs task `{}`)", task.name),
                "install it, or set `shell` in [project] to one you have, e.g. shell = [\"bash\", \"-ec\"]",
            ),
        }
    }

    /// `docker` on PATH and its daemon answering; false when unusable.
    fn docker(&mut self, task: &Task) -> bool {
        let Some(path) = self.which("docker") else {
            self.problem(
                "docker",
                format!("`docker` was not found on PATH (needed by task `{}`)", task.name),
                "install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop, then open a new shell",
            );
            return false;
        };
        self.push("docker", Verdict::Ok(path.display().to_string()));
        let out = self.command(&["docker", "version", "--format", "{{.Server.Version}}"]);
        if out.ok {
            let version = out.stdout.trim();
            self.push("docker daemon", Verdict::Ok(format!("answering (server {version})")));
            return true;
        }
        let message = out.message();
        let fix = if message.to_ascii_lowercase().contains("permission denied") {
            "let your user talk to the daemon: `sudo usermod -aG docker $USER`, then log out and in again"
        } else {
            "start it: `sudo systemctl start docker` (Linux) or open Docker Desktop;\n\
             if it runs elsewhere, check `DOCKER_HOST` and `docker context ls`"
        };
        self.problem("docker daemon", format!("not answering: {message}"), fix);
        false
    }

    fn buildx(&mut self, task: &Task) -> bool {
        let out = self.command(&["docker", "buildx", "version"]);
        if out.ok {
            let version = out.stdout.split_whitespace().nth(1).unwrap_or("").to_string();
            self.push("buildx", Verdict::Ok(format!("installed ({version})")));
            return true;
        }
        self.problem(
            "buildx",
            format!(
                "the `docker buildx` plugin is not installed (needed by image task `{}`)",
                task.name
            ),
            "install it: `sudo apt-get install docker-buildx-plugin` (Docker's apt repository)\n\
             or `docker-buildx` (Debian/Ubuntu's own), or put the binary in ~/.docker/cli-plugins/:\n\
             https://github.com/docker/buildx#installing",
        );
        false
    }

    /// Declared `[builders]` (mtr creates them) and builders that image
    /// tasks name without declaring (they must exist).
    fn builders(&mut self, images: &[&'a Task]) {
        // Every declared builder, or with a scope those its image tasks use.
        let used: HashSet<String> = images
            .iter()
            .filter_map(|t| match &t.action {
                Action::Image(img) => self.renderer(&t.name).render_opt(&img.builder).ok().flatten(),
                _ => None,
            })
            .collect();
        let declared: Vec<_> = self
            .config
            .builders
            .values()
            .filter(|b| self.scope.is_none() || used.contains(&b.name))
            .collect();
        for b in declared {
            let subject = format!("builder `{}`", b.name);
            let out = self.command(&["docker", "buildx", "inspect", &b.name]);
            if out.ok {
                let status = out
                    .stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("Status:"))
                    .map(|s| format!(" (status: {})", s.trim()))
                    .unwrap_or_default();
                self.push(subject.clone(), Verdict::Ok(format!("exists{status}")));
            } else {
                self.push(
                    subject.clone(),
                    Verdict::Note("not created yet: mtr creates it before the first build that uses it".into()),
                );
            }
            let r = self.renderer(&b.name);
            for node in &b.nodes {
                let Ok(endpoint) = r.render(&node.endpoint) else {
                    continue;
                };
                let Some(addr) = endpoint.strip_prefix("tcp://") else {
                    continue;
                };
                let (host, port) = registry::address(addr, false);
                match registry::connect(&host, port, NET_TIMEOUT) {
                    Ok(_) => self.push(format!("{subject} node `{endpoint}`"), Verdict::Ok("reachable".into())),
                    Err(e) => self.problem(
                        format!("{subject} node `{endpoint}`"),
                        format!("not reachable: {e}"),
                        format!(
                            "start buildkitd there (`buildkitd --addr {endpoint}`), or fix `endpoint` in [builders.{}]",
                            b.name
                        ),
                    ),
                }
            }
        }
        let mut undeclared: IndexMap<String, String> = IndexMap::new();
        for t in images {
            let Action::Image(img) = &t.action else { continue };
            if let Ok(Some(b)) = self.renderer(&t.name).render_opt(&img.builder)
                && !b.is_empty()
                && !self.config.builders.contains_key(&b)
            {
                undeclared.entry(b).or_insert_with(|| t.name.clone());
            }
        }
        for (b, task) in undeclared {
            let out = self.command(&["docker", "buildx", "inspect", &b]);
            if out.ok {
                self.push(format!("builder `{b}`"), Verdict::Ok("exists".into()));
            } else {
                self.problem(
                    format!("builder `{b}`"),
                    format!("does not exist (task `{task}` builds with it)"),
                    format!(
                        "create it: `docker buildx create --name {b} --driver docker-container --bootstrap`,\n\
                         or declare [builders.{b}] in montage.toml so mtr creates and updates it"
                    ),
                );
            }
        }
    }

    /// Registries that image tasks push to, and the remote cache's.
    fn registries(&mut self, images: &[&'a Task], cached: bool) {
        // registry -> (first task pushing there, that task's builder)
        let mut targets: IndexMap<String, (String, Option<String>)> = IndexMap::new();
        let mut insecure: Vec<String> = Vec::new();
        for b in self.config.builders.values() {
            if let Ok(list) = self.renderer(&b.name).render_list(&b.insecure_registries) {
                insecure.extend(list);
            }
        }
        for t in images {
            let Action::Image(img) = &t.action else { continue };
            let r = self.renderer(&t.name);
            let pushes = match image::flag(&r, &img.push, "push") {
                Ok(p) => p,
                Err(e) => {
                    self.push(
                        format!("task `{}`", t.name),
                        Verdict::Note(format!("cannot tell where it pushes: {e}")),
                    );
                    continue;
                }
            };
            if !pushes {
                continue;
            }
            match r.render(&img.name) {
                Ok(name) => {
                    let builder = r.render_opt(&img.builder).ok().flatten().filter(|b| !b.is_empty());
                    targets
                        .entry(registry::registry_of(&name))
                        .or_insert_with(|| (t.name.clone(), builder));
                }
                Err(e) => self.push(
                    format!("task `{}`", t.name),
                    Verdict::Note(format!("cannot tell where it pushes: {e}")),
                ),
            }
        }
        let mut checked = Vec::new();
        for (reg, (task, builder)) in targets {
            let secure = !insecure.contains(&reg);
            let used_by = format!("task `{task}` pushes there");
            self.registry(&reg, secure, &used_by, builder.as_deref(), &task);
            checked.push((reg, secure));
        }
        if let Some(cache) = self.config.cache.as_ref().filter(|_| cached) {
            match self.renderer("cache").render(&cache.remote) {
                Ok(remote) => {
                    let reg = registry::registry_of_remote(&remote);
                    if !checked.contains(&(reg.clone(), !cache.insecure)) {
                        self.registry(&reg, !cache.insecure, "the remote cache is there", None, "");
                    }
                }
                Err(e) => self.push("remote cache", Verdict::Note(format!("cannot tell its registry: {e}"))),
            }
        }
    }

    fn registry(&mut self, reg: &str, https: bool, used_by: &str, builder: Option<&str>, task: &str) {
        let subject = format!("registry `{reg}`");
        let (host, port) = registry::address(reg, https);
        let answer = match registry::probe(&host, port, NET_TIMEOUT) {
            Ok(a) => a,
            Err(e) => {
                let scheme = if https { "https" } else { "http" };
                self.problem(
                    subject,
                    format!("not reachable ({used_by}): {e}"),
                    format!(
                        "check that the registry runs and that this machine can reach it: `curl {scheme}://{reg}/v2/`\n\
                         (a cluster registry may need a port-forward or a VPN)"
                    ),
                );
                return;
            }
        };
        match (https, answer) {
            (false, registry::Answer::Http { status, .. }) => self.push(
                subject,
                Verdict::Ok(format!("answering over HTTP (insecure, /v2/ said {status})")),
            ),
            (false, registry::Answer::Tls) => self.problem(
                subject,
                format!("is listed as insecure (HTTP) but speaks HTTPS ({used_by})"),
                if task.is_empty() {
                    "set `insecure = false` in [cache]".to_string()
                } else {
                    format!("remove \"{reg}\" from `insecure_registries` in [builders]")
                },
            ),
            (true, registry::Answer::Tls) => self.push(subject, Verdict::Ok("reachable (HTTPS)".into())),
            (true, registry::Answer::Http { registry: true, .. }) => {
                let fix = if task.is_empty() {
                    "set `insecure = true` in [cache]".to_string()
                } else {
                    match builder.filter(|b| self.config.builders.contains_key(*b)) {
                        Some(b) => format!("add \"{reg}\" to `insecure_registries` in [builders.{b}]"),
                        None => format!(
                            "declare a builder that may push over HTTP and use it in task `{task}`:\n\
                             [builders.NAME] with insecure_registries = [\"{reg}\"], and `builder = \"NAME\"`"
                        ),
                    }
                };
                self.problem(
                    subject,
                    format!("speaks plain HTTP, but is not listed as insecure ({used_by})"),
                    fix,
                );
            }
            (true, registry::Answer::Http { status, .. }) => self.push(
                subject,
                Verdict::Note(format!(
                    "reachable, but {host}:{port} answered plain HTTP ({status}) without the registry API header"
                )),
            ),
        }
    }
}

static EMPTY: std::sync::OnceLock<HashMap<String, crate::render::DepInfo>> = std::sync::OnceLock::new();
