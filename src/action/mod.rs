//! Actions compile to steps: pure functions from a task's settings to the
//! commands it runs. `--dry-run`, tests and real runs share this code.

pub mod builder;
pub mod container;
pub mod deploy;
pub mod image;
pub mod run;

use std::path::PathBuf;

use crate::config::{Action, Config, Task};
use crate::render::{RenderError, Renderer};

/// One thing a task does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A `run` line, through the project shell.
    Shell(String),
    /// A program and its arguments, started directly.
    Exec(Vec<String>),
    /// Create a directory if missing (e.g. a local buildx cache).
    MkDir(PathBuf),
    /// Fail plainly when the `docker buildx` plugin is missing.
    RequireBuildx,
    /// Create (or recreate, when its section changed) a managed builder.
    EnsureBuilder(Box<builder::BuilderSpec>),
    /// `docker run`, named at start so Ctrl-C can stop the container.
    Container(container::ContainerRun),
    /// A `kubectl` rollout.
    Deploy(Box<deploy::DeployPlan>),
}

impl Step {
    /// How the step reads in a plan or a log.
    pub fn describe(&self) -> String {
        match self {
            Step::Shell(line) => line.clone(),
            Step::Exec(argv) => shell_join(argv),
            Step::MkDir(path) => format!("mkdir -p {}", quote(&path.display().to_string())),
            Step::RequireBuildx => "docker buildx version".into(),
            Step::EnsureBuilder(b) => {
                let config = format!(".mtr/builders/{}/buildkitd.toml", b.name);
                let create: Vec<String> = b.create_commands(&config).iter().map(|a| shell_join(a)).collect();
                format!("{}  # if missing or changed", create.join(" && "))
            }
            Step::Container(c) => shell_join(&c.argv("mtr-…", false)),
            Step::Deploy(d) => d.describe(),
        }
    }
}

/// A task's action, compiled.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    pub steps: Vec<Step>,
    /// What identifies the action in the fingerprint.
    pub identity: Vec<String>,
    /// `image` tasks: the first reference built (`tasks.NAME.image`).
    pub image: Option<String>,
    /// `image` tasks: a command that succeeds while the image still exists.
    pub exists: Option<Vec<String>>,
    /// `image` tasks: the build context (default inputs).
    pub context: Option<image::BuildContext>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{0}")]
    Invalid(String),
}

/// Compiles `task`'s action with templates rendered by `r`.
pub fn compile(config: &Config, task: &Task, r: &Renderer) -> Result<Compiled, ActionError> {
    match &task.action {
        Action::None => Ok(Compiled::default()),
        Action::Run(lines) => run::compile(config, lines, r),
        Action::Image(i) => image::compile(config, i, r, dir(task, r)?.as_str()),
        Action::Container(c) => container::compile(c, task.env.iter().map(|(k, _)| k.as_str()), r),
        Action::Deploy(d) => deploy::compile(d, r),
    }
}

fn dir(task: &Task, r: &Renderer) -> Result<String, ActionError> {
    Ok(r.render_opt(&task.dir)?
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| ".".into()))
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%^".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// An argv as one shell-quoted line.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}
