//! The validated configuration: what `montage.toml` means, with spans kept
//! for later diagnostics (plan-time errors point into the file too).

use std::ops::Range;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::diagnostic::Source;
use super::template::Template;

pub const DEFAULT_SHELL: [&str; 2] = ["sh", "-ec"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// The `montage.toml` that was loaded (this and the next two are not
    /// in `config::cache`: they are set when it is loaded).
    #[serde(skip)]
    pub file: PathBuf,
    /// The directory holding it: every relative path is relative to this.
    #[serde(skip)]
    pub root: PathBuf,
    #[serde(skip, default = "super::diagnostic::empty_source")]
    pub source: Source,
    pub project: Project,
    pub vars: IndexMap<String, VarDef>,
    pub env: Vec<(String, Template)>,
    pub tasks: IndexMap<String, Task>,
    pub aliases: IndexMap<String, String>,
    pub builders: IndexMap<String, Builder>,
    pub cache: Option<CacheConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Project {
    pub name: Option<String>,
    pub shell: Vec<String>,
    pub dotenv: Vec<String>,
    pub default: Option<(String, Range<usize>)>,
}

impl Project {
    pub fn has_default_shell(&self) -> bool {
        self.shell == DEFAULT_SHELL
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VarDef {
    pub name: String,
    pub default: Option<Template>,
    pub env: Option<String>,
    pub sh: Option<Template>,
    pub description: Option<String>,
    pub volatile: bool,
    pub secret: bool,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub name: String,
    /// Span of the task's key (`[tasks.NAME]`).
    pub span: Range<usize>,
    pub description: Option<String>,
    pub group: Option<String>,
    pub deps: Vec<(String, Range<usize>)>,
    pub action: Action,
    pub inputs: Option<Vec<Template>>,
    pub outputs: Vec<Template>,
    pub env: Vec<(String, Template)>,
    pub dir: Option<Template>,
    pub watch: Vec<Template>,
    pub interactive: bool,
    pub aliases: Vec<String>,
    pub deprecated: Option<String>,
}

impl Task {
    pub fn hidden(&self) -> bool {
        self.name.starts_with('_')
    }

    /// Every template of the task, for reference checks.
    pub fn templates(&self) -> Vec<&Template> {
        let mut all: Vec<&Template> = Vec::with_capacity(8);
        all.extend(self.inputs.iter().flatten());
        all.extend(&self.outputs);
        all.extend(self.env.iter().map(|(_, t)| t));
        all.extend(&self.dir);
        all.extend(&self.watch);
        match &self.action {
            Action::None => {}
            Action::Run(lines) => all.extend(lines),
            action => all.extend(action.templates()),
        }
        all
    }
}

/// What a task does: at most one of these.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Action {
    /// An aggregate: only deps.
    None,
    Run(Vec<Template>),
    Image(Box<ImageAction>),
    Container(Box<ContainerAction>),
    Deploy(Box<DeployAction>),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Run(_) => "run",
            Action::Image(_) => "image",
            Action::Container(_) => "container",
            Action::Deploy(_) => "deploy",
        }
    }

    pub fn templates(&self) -> Vec<&Template> {
        match self {
            Action::None => Vec::new(),
            Action::Run(lines) => lines.iter().collect(),
            Action::Image(i) => i.templates(),
            Action::Container(c) => c.templates(),
            Action::Deploy(d) => d.templates(),
        }
    }
}

/// `docker buildx build` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageAction {
    pub name: Template,
    pub tags: Option<Vec<Template>>,
    pub context: Option<Template>,
    pub dockerfile: Option<Template>,
    pub target: Option<Template>,
    pub platforms: Vec<Template>,
    pub build_args: Vec<(String, Template)>,
    pub cache_from: Vec<Template>,
    pub cache_to: Vec<Template>,
    pub builder: Option<Template>,
    pub ssh: Vec<Template>,
    pub secrets: Vec<Template>,
    /// A boolean or a template that renders to `true`/`false`.
    pub push: Option<Template>,
    pub span: Range<usize>,
}

impl ImageAction {
    fn templates(&self) -> Vec<&Template> {
        let mut all = vec![&self.name];
        all.extend(self.tags.iter().flatten());
        all.extend(&self.context);
        all.extend(&self.dockerfile);
        all.extend(&self.target);
        all.extend(&self.platforms);
        all.extend(self.build_args.iter().map(|(_, t)| t));
        all.extend(&self.cache_from);
        all.extend(&self.cache_to);
        all.extend(&self.builder);
        all.extend(&self.ssh);
        all.extend(&self.secrets);
        all.extend(&self.push);
        all
    }
}

/// `docker run` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerAction {
    pub image: Template,
    pub mounts: Vec<Template>,
    pub command: Option<CommandSpec>,
    pub entrypoint: Option<Template>,
    pub env: Vec<(String, Template)>,
    pub workdir: Option<Template>,
    pub span: Range<usize>,
}

/// A command given as one string (split like a shell would) or as argv.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CommandSpec {
    Line(Template),
    Argv(Vec<Template>),
}

impl ContainerAction {
    fn templates(&self) -> Vec<&Template> {
        let mut all = vec![&self.image];
        all.extend(&self.mounts);
        match &self.command {
            Some(CommandSpec::Line(t)) => all.push(t),
            Some(CommandSpec::Argv(v)) => all.extend(v),
            None => {}
        }
        all.extend(&self.entrypoint);
        all.extend(self.env.iter().map(|(_, t)| t));
        all.extend(&self.workdir);
        all
    }
}

/// `kubectl` rollout settings: one Deployment (`deployment`) or manifests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployAction {
    pub deployment: Option<Template>,
    pub container: Option<Template>,
    pub image: Option<Template>,
    /// Form 2: a string or a list, each a kustomization dir, a YAML file or
    /// a dir of them (empty in form 1).
    pub manifests: Vec<Template>,
    pub images: Vec<(String, Template)>,
    pub namespace: Option<Template>,
    pub context: Option<Template>,
    pub timeout: Option<Template>,
    pub undo_on_failure: Option<Template>,
    pub span: Range<usize>,
}

impl DeployAction {
    fn templates(&self) -> Vec<&Template> {
        let mut all: Vec<&Template> = Vec::new();
        all.extend(&self.deployment);
        all.extend(&self.container);
        all.extend(&self.image);
        all.extend(&self.manifests);
        all.extend(self.images.iter().map(|(_, t)| t));
        all.extend(&self.namespace);
        all.extend(&self.context);
        all.extend(&self.timeout);
        all.extend(&self.undo_on_failure);
        all
    }
}

/// A buildx builder that mtr creates and keeps in sync (`[builders.NAME]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Builder {
    pub name: String,
    pub driver: Option<Template>,
    pub driver_opts: Vec<Template>,
    pub insecure_registries: Vec<Template>,
    pub nodes: Vec<BuilderNode>,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuilderNode {
    pub endpoint: Template,
    pub platforms: Vec<Template>,
}

impl Builder {
    /// Every template of the section.
    pub fn templates(&self) -> Vec<&Template> {
        let mut all: Vec<&Template> = Vec::new();
        all.extend(&self.driver);
        all.extend(&self.driver_opts);
        all.extend(&self.insecure_registries);
        for n in &self.nodes {
            all.push(&n.endpoint);
            all.extend(&n.platforms);
        }
        all
    }
}

/// The shared remote cache (`[cache]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheConfig {
    pub remote: Template,
    pub insecure: bool,
    pub push: bool,
    pub timeout_secs: u64,
}

impl Config {
    /// The task a name or alias refers to.
    pub fn resolve_task<'a>(&'a self, name: &str) -> Option<&'a str> {
        if let Some((k, _)) = self.tasks.get_key_value(name) {
            return Some(k);
        }
        self.aliases.get(name).map(String::as_str)
    }

    /// The project's display name: `[project] name`, else the root's name.
    pub fn display_name(&self) -> String {
        self.project.name.clone().unwrap_or_else(|| {
            self.root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }
}
