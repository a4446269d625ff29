//! Loading `montage.toml` into the model, collecting every error at once.
//!
//! The file is parsed into toml's spanned document tree and walked by hand
//! (no serde derive): that keeps a span for every key and value, so each
//! mistake becomes a diagnostic pointing at it, and one bad field does not
//! hide the next.

use std::collections::HashMap;
use std::fmt::{self, Display};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use miette::NamedSource;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::cache;
use super::diagnostic::{ConfigError, Source, did_you_mean};
use super::model::*;
use super::template::{BUILTINS, Ref, Template, builtin_candidates, is_task_name, is_var_name};

type Value<'i> = Spanned<DeValue<'i>>;

/// What a value is called in messages, e.g. `tasks.build.deps`: formatted
/// only when an error is reported, so a valid config allocates no names.
type What<'a> = &'a dyn Display;

/// `{0}.{1}`, lazily: a field's name under its parent's.
struct Dot<'a>(What<'a>, &'a dyn Display);

impl Display for Dot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

const TOP_KEYS: &[&str] = &["project", "vars", "env", "tasks", "builders", "cache"];
const PROJECT_KEYS: &[&str] = &["name", "shell", "dotenv", "default"];
const VAR_KEYS: &[&str] = &["default", "env", "sh", "description", "volatile", "secret"];
const TASK_KEYS: &[&str] = &[
    "description",
    "group",
    "deps",
    "run",
    "image",
    "container",
    "deploy",
    "inputs",
    "outputs",
    "env",
    "dir",
    "watch",
    "interactive",
    "aliases",
    "deprecated",
];
const ACTION_KEYS: &[&str] = &["run", "image", "container", "deploy"];
const IMAGE_KEYS: &[&str] = &[
    "name",
    "tags",
    "context",
    "dockerfile",
    "target",
    "platforms",
    "build_args",
    "cache_from",
    "cache_to",
    "builder",
    "ssh",
    "secrets",
    "push",
];
const CONTAINER_KEYS: &[&str] = &["image", "mounts", "command", "entrypoint", "env", "workdir"];
const DEPLOY_KEYS: &[&str] = &[
    "deployment",
    "container",
    "image",
    "manifests",
    "images",
    "namespace",
    "context",
    "timeout",
    "undo_on_failure",
];
const BUILDER_KEYS: &[&str] = &["driver", "driver_opts", "insecure_registries", "nodes"];
const NODE_KEYS: &[&str] = &["endpoint", "platforms"];
const CACHE_KEYS: &[&str] = &["remote", "insecure", "push", "timeout"];
const ENV_VALUE_KEYS: &[&str] = &["value", "secret"];

/// Reads and validates `file`. Errors: every problem found, or one IO error.
pub fn load(file: &Path) -> Result<Config, Vec<ConfigError>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![ConfigError::new("io", format!("cannot read `{}`: {e}", file.display()))])?;
    // A file checked out with Windows line ends: a multi-line `run` must
    // not hand `\r` to the shell.
    let text = if text.contains("\r\n") {
        text.replace("\r\n", "\n")
    } else {
        text
    };
    let root = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "montage.toml".into());
    let key = cache::key(&text, &name);
    // Diagnostics name the file as the user can open it from the cwd.
    let shown = super::discover::display(file, &root);
    if let Some(config) = cache::read(&root, &key) {
        return Ok(Config {
            file: file.to_path_buf(),
            root,
            source: Arc::new(NamedSource::new(shown, text).with_language("toml")),
            ..config
        });
    }
    let config = parse_owned(text, &shown, file, &root)?;
    cache::write(&root, &key, &config);
    Ok(config)
}

/// Parses config text; `name` labels diagnostics.
pub fn parse(text: &str, name: &str, file: &Path, root: &Path) -> Result<Config, Vec<ConfigError>> {
    parse_owned(text.to_owned(), name, file, root)
}

/// [`parse`], keeping `text` as the diagnostics' source without a copy.
fn parse_owned(text: String, name: &str, file: &Path, root: &Path) -> Result<Config, Vec<ConfigError>> {
    let source: Source = Arc::new(NamedSource::new(name, text).with_language("toml"));
    let shared = source.clone();
    let text: &str = shared.inner();
    let (doc, parse_errors) = DeTable::parse_recoverable(text);
    let mut l = Loader {
        src: text,
        source: source.clone(),
        errors: Vec::new(),
        alias_spans: HashMap::new(),
    };
    for e in parse_errors {
        let span = e.span().unwrap_or(0..0);
        l.errors
            .push(ConfigError::new("syntax", format!("invalid TOML: {}", e.message().trim())).label(span, "here"));
    }
    if !l.errors.is_empty() {
        return Err(l.finish());
    }
    let config = l.config(doc.get_ref(), file, root, source);
    if let Some(config) = &config {
        validate(&mut l, config);
    }
    match config {
        Some(c) if l.errors.is_empty() => Ok(c),
        _ => Err(l.finish()),
    }
}

struct Loader<'s> {
    src: &'s str,
    source: Source,
    errors: Vec<ConfigError>,
    /// Where each alias is written, by task and position in its `aliases`
    /// (the model keeps only the names).
    alias_spans: HashMap<(String, usize), Range<usize>>,
}

impl Loader<'_> {
    fn finish(self) -> Vec<ConfigError> {
        let source = self.source;
        let mut errors = self.errors;
        errors.sort_by_key(|e| e.labels.first().map(|l| l.0.start).unwrap_or(0));
        errors.into_iter().map(|e| e.with_source(&source)).collect()
    }

    fn error(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    fn wrong_type(&mut self, v: &Value, what: What, expected: &str) {
        self.error(
            ConfigError::new(
                "type",
                format!("`{what}` must be {expected}, not {}", article(v.get_ref().type_str())),
            )
            .label(v.span(), format!("expected {expected}")),
        );
    }

    /// Reports keys of `table` outside `allowed`.
    fn check_keys(&mut self, table: &DeTable, allowed: &[&str], section: What) {
        for key in table.keys() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                self.unknown_key(key, allowed, section);
            }
        }
    }

    fn unknown_key(&mut self, key: &Spanned<std::borrow::Cow<str>>, allowed: &[&str], section: What) {
        let k: &str = key.get_ref();
        let help =
            did_you_mean(k, allowed.iter().copied()).unwrap_or_else(|| format!("known keys: {}", allowed.join(", ")));
        self.error(
            ConfigError::new("unknown-key", format!("unknown key `{k}` in {section}"))
                .label(key.span(), "unknown key")
                .help(help),
        );
    }

    fn table<'a, 'i>(&mut self, v: &'a Value<'i>, what: What) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, what, "a table");
                None
            }
        }
    }

    fn string(&mut self, v: &Value, what: What) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(v, what, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value, what: What) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(v, what, "`true` or `false`");
                None
            }
        }
    }

    /// A string parsed as a template, with errors pointing inside it.
    fn template(&mut self, v: &Value, what: What) -> Option<Template> {
        match v.get_ref() {
            DeValue::String(text) => self.parse_template(text, v.span()),
            _ => {
                self.wrong_type(v, what, "a string");
                None
            }
        }
    }

    fn parse_template(&mut self, text: &str, span: Range<usize>) -> Option<Template> {
        match Template::parse_all(text, span.clone()) {
            Ok(t) => Some(t),
            Err(errors) => {
                for e in errors {
                    let inner = narrow(self.src, &span, text, &e.offset);
                    // A misspelt built-in, e.g. `{{ tasks.b.hsh }}`.
                    let written = text
                        .get(e.offset.clone())
                        .map(|p| p.trim_start_matches("{{").trim_end_matches("}}").trim())
                        .unwrap_or_default();
                    let candidates = builtin_candidates(written);
                    let help = did_you_mean(written, candidates.iter().map(String::as_str))
                        .unwrap_or_else(|| "write `{{ name }}` for a variable, `{{{{` for a literal `{{`".into());
                    self.error(
                        ConfigError::new("template", format!("invalid template: {}", e.message))
                            .label(inner, e.message)
                            .help(help),
                    );
                }
                None
            }
        }
    }

    /// A string, number or boolean as a template (env values may be `8080`).
    fn scalar_template(&mut self, v: &Value, what: What) -> Option<Template> {
        match v.get_ref() {
            DeValue::String(_) => self.template(v, what),
            DeValue::Integer(i) => Some(Template {
                span: v.span(),
                ..Template::literal(i.as_str())
            }),
            DeValue::Float(f) => Some(Template {
                span: v.span(),
                ..Template::literal(f.as_str())
            }),
            DeValue::Boolean(b) => Some(Template {
                span: v.span(),
                ..Template::literal(b.to_string())
            }),
            _ => {
                self.wrong_type(v, what, "a string");
                None
            }
        }
    }

    /// `true`/`false` or a template that renders to one of them; a string
    /// without placeholders must already be one of them.
    fn bool_template(&mut self, v: &Value, what: What) -> Option<Template> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Template {
                span: v.span(),
                ..Template::literal(b.to_string())
            }),
            DeValue::String(_) => {
                let t = self.template(v, what)?;
                match t.as_literal().map(str::trim) {
                    Some(other) if !matches!(other, "" | "true" | "false") => {
                        self.error(
                            ConfigError::new("type", format!("`{what}` must be `true` or `false`, not `{other}`"))
                                .label(v.span(), "expected `true` or `false`")
                                .help("write `true` or `false` without quotes, or a `{{ name }}` template that renders to one"),
                        );
                        None
                    }
                    _ => Some(t),
                }
            }
            _ => {
                self.wrong_type(v, what, "`true`, `false` or a template");
                None
            }
        }
    }

    fn string_list(&mut self, v: &Value, what: What) -> Option<Vec<(String, Range<usize>)>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, what, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            if let Some(s) = self.string(item, what) {
                out.push((s, item.span()));
            }
        }
        Some(out)
    }

    fn template_list(&mut self, v: &Value, what: What) -> Option<Vec<Template>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, what, "an array of strings");
            return None;
        };
        Some(items.iter().filter_map(|i| self.template(i, what)).collect())
    }

    /// A string or an array of strings, as templates.
    fn one_or_many(&mut self, v: &Value, what: What) -> Option<Vec<Template>> {
        match v.get_ref() {
            DeValue::String(_) => self.template(v, what).map(|t| vec![t]),
            DeValue::Array(_) => self.template_list(v, what),
            _ => {
                self.wrong_type(v, what, "a string or an array of strings");
                None
            }
        }
    }

    fn template_map(&mut self, v: &Value, what: What) -> Vec<(String, Template)> {
        let Some(t) = self.table(v, what) else {
            return Vec::new();
        };
        t.iter()
            .filter_map(|(k, v)| {
                let key: &str = k.get_ref();
                self.scalar_template(v, &Dot(what, &key)).map(|t| (key.to_string(), t))
            })
            .collect()
    }

    /// An environment: like [`template_map`](Self::template_map), and a
    /// value may be `{ value = "...", secret = true }` to be masked.
    fn env_map(&mut self, v: &Value, what: What) -> Vec<(String, Template)> {
        let Some(t) = self.table(v, what) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(t.len());
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            let name = Dot(what, &key);
            let DeValue::Table(entry) = v.get_ref() else {
                if let Some(t) = self.scalar_template(v, &name) {
                    out.push((k.get_ref().to_string(), t));
                }
                continue;
            };
            self.check_keys(entry, ENV_VALUE_KEYS, &format_args!("`{name}`"));
            let secret = entry
                .get("secret")
                .and_then(|s| self.boolean(s, &format_args!("{name}.secret")))
                .unwrap_or(false);
            match entry.get("value") {
                Some(value) => {
                    if let Some(t) = self.scalar_template(value, &format_args!("{name}.value")) {
                        out.push((k.get_ref().to_string(), Template { secret, ..t }));
                    }
                }
                None => self.error(
                    ConfigError::new("missing", format!("`{name}` needs a `value`"))
                        .label(v.span(), "no `value`")
                        .help("e.g. { value = \"{{ token }}\", secret = true }"),
                ),
            }
        }
        out
    }

    fn config(&mut self, doc: &DeTable, file: &Path, root: &Path, source: Source) -> Option<Config> {
        self.check_keys(doc, TOP_KEYS, &"the top level");
        let mut config = Config {
            file: file.to_path_buf(),
            root: root.to_path_buf(),
            source,
            project: Project {
                shell: DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
                ..Project::default()
            },
            vars: IndexMap::new(),
            env: Vec::new(),
            tasks: IndexMap::new(),
            aliases: IndexMap::new(),
            builders: IndexMap::new(),
            cache: None,
        };
        if let Some(v) = doc.get("project") {
            self.project(v, &mut config.project);
        }
        if let Some(v) = doc.get("vars")
            && let Some(t) = self.table(v, &"vars")
        {
            for (k, v) in t.iter() {
                if let Some(var) = self.var(k, v) {
                    config.vars.insert(var.name.clone(), var);
                }
            }
        }
        if let Some(v) = doc.get("env") {
            config.env = self.env_map(v, &"env");
        }
        if let Some(v) = doc.get("tasks")
            && let Some(t) = self.table(v, &"tasks")
        {
            config.tasks.reserve_exact(t.len());
            for (k, v) in t.iter() {
                if let Some(task) = self.task(k, v) {
                    config.tasks.insert(task.name.clone(), task);
                }
            }
        }
        for task in config.tasks.values() {
            for alias in &task.aliases {
                config.aliases.entry(alias.clone()).or_insert_with(|| task.name.clone());
            }
        }
        if let Some(v) = doc.get("builders")
            && let Some(t) = self.table(v, &"builders")
        {
            for (k, v) in t.iter() {
                if let Some(b) = self.builder(k, v) {
                    config.builders.insert(b.name.clone(), b);
                }
            }
        }
        if let Some(v) = doc.get("cache") {
            config.cache = self.cache(v);
        }
        Some(config)
    }

    fn project(&mut self, v: &Value, project: &mut Project) {
        let Some(t) = self.table(v, &"project") else {
            return;
        };
        self.check_keys(t, PROJECT_KEYS, &"[project]");
        if let Some(v) = t.get("name") {
            project.name = self.string(v, &"project.name");
        }
        if let Some(v) = t.get("shell") {
            match v.get_ref() {
                DeValue::String(s) => {
                    project.shell = s.split_whitespace().map(str::to_owned).collect();
                }
                _ => {
                    if let Some(list) = self.string_list(v, &"project.shell") {
                        project.shell = list.into_iter().map(|(s, _)| s).collect();
                    }
                }
            }
            if project.shell.is_empty() {
                self.error(
                    ConfigError::new("shell", "`project.shell` is empty")
                        .label(v.span(), "needs a program, e.g. [\"sh\", \"-ec\"]"),
                );
                project.shell = DEFAULT_SHELL.iter().map(|s| s.to_string()).collect();
            }
        }
        if let Some(v) = t.get("dotenv") {
            let list = match v.get_ref() {
                DeValue::String(s) => Some(vec![(s.to_string(), v.span())]),
                _ => self.string_list(v, &"project.dotenv"),
            };
            let list = list.unwrap_or_default();
            // Read before any variable has a value (an `sh` variable sees
            // their values): a template there could never be expanded.
            for (path, span) in &list {
                if path.contains("{{") {
                    self.error(
                        ConfigError::new("dotenv", format!("`project.dotenv` paths are not templated: `{path}`"))
                            .label(span.clone(), "read before variables have values")
                            .help("name the file (`.env`), or list every file: a missing one is skipped"),
                    );
                }
            }
            project.dotenv = list.into_iter().map(|(s, _)| s).collect();
        }
        if let Some(v) = t.get("default") {
            project.default = self.string(v, &"project.default").map(|s| (s, v.span()));
        }
    }

    fn var(&mut self, key: &Spanned<std::borrow::Cow<str>>, v: &Value) -> Option<VarDef> {
        let name = key.get_ref().to_string();
        if !is_var_name(&name) {
            self.error(
                ConfigError::new("var-name", format!("invalid variable name `{name}`"))
                    .label(key.span(), "not a valid name")
                    .help("variable names are letters, digits and `_`, not starting with a digit"),
            );
        }
        let mut var = VarDef {
            name: name.clone(),
            default: None,
            env: None,
            sh: None,
            description: None,
            volatile: false,
            secret: false,
            span: key.span(),
        };
        match v.get_ref() {
            DeValue::Table(t) => {
                self.check_keys(t, VAR_KEYS, &format_args!("variable `{name}`"));
                if let Some(v) = t.get("default") {
                    var.default = self.scalar_template(v, &format_args!("vars.{name}.default"));
                }
                if let Some(v) = t.get("env") {
                    var.env = self.string(v, &format_args!("vars.{name}.env"));
                }
                if let Some(v) = t.get("sh") {
                    var.sh = self.template(v, &format_args!("vars.{name}.sh"));
                }
                if let Some(v) = t.get("description") {
                    var.description = self.string(v, &format_args!("vars.{name}.description"));
                }
                if let Some(v) = t.get("volatile") {
                    var.volatile = self.boolean(v, &format_args!("vars.{name}.volatile")).unwrap_or(false);
                }
                if let Some(v) = t.get("secret") {
                    var.secret = self.boolean(v, &format_args!("vars.{name}.secret")).unwrap_or(false);
                }
            }
            _ => var.default = self.scalar_template(v, &format_args!("vars.{name}")),
        }
        Some(var)
    }

    fn task(&mut self, key: &Spanned<std::borrow::Cow<str>>, v: &Value) -> Option<Task> {
        let name = key.get_ref().to_string();
        if !is_task_name(&name) {
            self.error(
                ConfigError::new("task-name", format!("invalid task name `{name}`"))
                    .label(key.span(), "not a valid task name")
                    .help("task names are letters, digits, `-`, `_` and `:`"),
            );
        }
        let t = self.table(v, &format_args!("tasks.{name}"))?;
        // One pass over the table, as `check_keys` would report unknown
        // keys, then each field by its slot: no hashing per field.
        let mut fields: [Option<&Value>; TASK_KEYS.len()] = [None; TASK_KEYS.len()];
        for (k, v) in t.iter() {
            match TASK_KEYS.iter().position(|a| *a == k.get_ref().as_ref()) {
                Some(i) => fields[i] = Some(v),
                None => self.unknown_key(k, TASK_KEYS, &format_args!("task `{name}`")),
            }
        }
        let get = |key: &str| TASK_KEYS.iter().position(|a| *a == key).and_then(|i| fields[i]);
        let mut task = Task {
            name: name.clone(),
            span: key.span(),
            description: None,
            group: None,
            deps: Vec::new(),
            action: Action::None,
            inputs: None,
            outputs: Vec::new(),
            env: Vec::new(),
            dir: None,
            watch: Vec::new(),
            interactive: false,
            aliases: Vec::new(),
            deprecated: None,
        };
        if let Some(v) = get("description") {
            task.description = self.string(v, &format_args!("tasks.{name}.description"));
        }
        if let Some(v) = get("group") {
            task.group = self.string(v, &format_args!("tasks.{name}.group"));
        }
        if let Some(v) = get("deps") {
            task.deps = self
                .string_list(v, &format_args!("tasks.{name}.deps"))
                .unwrap_or_default();
        }
        if let Some(v) = get("inputs") {
            task.inputs = Some(
                self.template_list(v, &format_args!("tasks.{name}.inputs"))
                    .unwrap_or_default(),
            );
        }
        if let Some(v) = get("outputs") {
            task.outputs = self
                .template_list(v, &format_args!("tasks.{name}.outputs"))
                .unwrap_or_default();
        }
        if let Some(v) = get("env") {
            task.env = self.env_map(v, &format_args!("tasks.{name}.env"));
        }
        if let Some(v) = get("dir") {
            task.dir = self.template(v, &format_args!("tasks.{name}.dir"));
        }
        if let Some(v) = get("watch") {
            task.watch = self
                .template_list(v, &format_args!("tasks.{name}.watch"))
                .unwrap_or_default();
        }
        if let Some(v) = get("interactive") {
            task.interactive = self
                .boolean(v, &format_args!("tasks.{name}.interactive"))
                .unwrap_or(false);
        }
        if let Some(v) = get("aliases") {
            for (alias, span) in self
                .string_list(v, &format_args!("tasks.{name}.aliases"))
                .unwrap_or_default()
            {
                if !is_task_name(&alias) {
                    self.error(
                        ConfigError::new("alias", format!("invalid alias `{alias}` of task `{name}`"))
                            .label(span, "not a valid task name")
                            .help("an alias is a task name: letters, digits, `-`, `_` and `:`"),
                    );
                    continue;
                }
                self.alias_spans.insert((name.clone(), task.aliases.len()), span);
                task.aliases.push(alias);
            }
        }
        if let Some(v) = get("deprecated") {
            task.deprecated = match v.get_ref() {
                DeValue::Boolean(true) => Some(String::new()),
                DeValue::Boolean(false) => None,
                _ => self.string(v, &format_args!("tasks.{name}.deprecated")),
            };
        }
        if ACTION_KEYS.iter().filter(|a| get(a).is_some()).count() > 1 {
            let actions: Vec<(&str, Range<usize>)> = t
                .iter()
                .filter(|(k, _)| ACTION_KEYS.contains(&k.get_ref().as_ref()))
                .map(|(k, _)| {
                    (
                        ACTION_KEYS[ACTION_KEYS.iter().position(|a| *a == k.get_ref().as_ref()).unwrap_or(0)],
                        k.span(),
                    )
                })
                .collect();
            let names: Vec<String> = actions.iter().map(|(a, _)| format!("`{a}`")).collect();
            let mut e = ConfigError::new(
                "actions",
                format!("task `{name}` has more than one action ({})", names.join(", ")),
            )
            .help(
                "a task has at most one of `run`, `image`, `container`, `deploy`; split it into tasks joined by `deps`",
            );
            for (a, span) in &actions {
                e = e.label(span.clone(), format!("`{a}` action"));
            }
            self.error(e);
        }
        if let Some(v) = get("run") {
            task.action = Action::Run(
                self.one_or_many(v, &format_args!("tasks.{name}.run"))
                    .unwrap_or_default(),
            );
        } else if let Some(v) = get("image") {
            if let Some(a) = self.image(v, &name) {
                task.action = Action::Image(Box::new(a));
            }
        } else if let Some(v) = get("container") {
            if let Some(a) = self.container(v, &name) {
                task.action = Action::Container(Box::new(a));
            }
        } else if let Some(v) = get("deploy")
            && let Some(a) = self.deploy(v, &name)
        {
            task.action = Action::Deploy(Box::new(a));
        }
        Some(task)
    }

    fn opt_template(&mut self, t: &DeTable, key: &str, what: What) -> Option<Template> {
        t.get(key).and_then(|v| self.template(v, &format_args!("{what}.{key}")))
    }

    fn opt_list(&mut self, t: &DeTable, key: &str, what: What) -> Vec<Template> {
        t.get(key)
            .and_then(|v| self.one_or_many(v, &format_args!("{what}.{key}")))
            .unwrap_or_default()
    }

    fn image(&mut self, v: &Value, task: &str) -> Option<ImageAction> {
        let what = format!("tasks.{task}.image");
        let t = self.table(v, &what)?;
        self.check_keys(t, IMAGE_KEYS, &format_args!("`{what}`"));
        let Some(name) = self.opt_template(t, "name", &what) else {
            if !t.contains_key("name") {
                self.error(
                    ConfigError::new("missing", format!("`{what}` needs a `name`"))
                        .label(v.span(), "no `name` (the image repository)")
                        .help("e.g. name = \"{{ registry }}/app\""),
                );
            }
            return None;
        };
        if name.as_literal().is_some_and(|n| n.trim().is_empty()) {
            self.error(empty_image_name_error(task, &name));
        }
        Some(ImageAction {
            name,
            tags: t
                .get("tags")
                .map(|v| self.one_or_many(v, &format_args!("{what}.tags")).unwrap_or_default()),
            context: self.opt_template(t, "context", &what),
            dockerfile: self.opt_template(t, "dockerfile", &what),
            target: self.opt_template(t, "target", &what),
            platforms: self.opt_list(t, "platforms", &what),
            build_args: t
                .get("build_args")
                .map(|v| self.template_map(v, &format_args!("{what}.build_args")))
                .unwrap_or_default(),
            cache_from: self.opt_list(t, "cache_from", &what),
            cache_to: self.opt_list(t, "cache_to", &what),
            builder: self.opt_template(t, "builder", &what),
            ssh: self.opt_list(t, "ssh", &what),
            secrets: self.opt_list(t, "secrets", &what),
            push: t
                .get("push")
                .and_then(|v| self.bool_template(v, &format_args!("{what}.push"))),
            span: v.span(),
        })
    }

    fn container(&mut self, v: &Value, task: &str) -> Option<ContainerAction> {
        let what = format!("tasks.{task}.container");
        let t = self.table(v, &what)?;
        self.check_keys(t, CONTAINER_KEYS, &format_args!("`{what}`"));
        let Some(image) = self.opt_template(t, "image", &what) else {
            if !t.contains_key("image") {
                self.error(
                    ConfigError::new("missing", format!("`{what}` needs an `image`"))
                        .label(v.span(), "no `image` to run"),
                );
            }
            return None;
        };
        let command = t.get("command").and_then(|c| match c.get_ref() {
            DeValue::String(_) => self.template(c, &format_args!("{what}.command")).map(CommandSpec::Line),
            _ => self
                .template_list(c, &format_args!("{what}.command"))
                .map(CommandSpec::Argv),
        });
        Some(ContainerAction {
            image,
            mounts: self.opt_list(t, "mounts", &what),
            command,
            entrypoint: self.opt_template(t, "entrypoint", &what),
            env: t
                .get("env")
                .map(|v| self.env_map(v, &format_args!("{what}.env")))
                .unwrap_or_default(),
            workdir: self.opt_template(t, "workdir", &what),
            span: v.span(),
        })
    }

    fn deploy(&mut self, v: &Value, task: &str) -> Option<DeployAction> {
        let what = format!("tasks.{task}.deploy");
        let t = self.table(v, &what)?;
        self.check_keys(t, DEPLOY_KEYS, &format_args!("`{what}`"));
        let d = DeployAction {
            deployment: self.opt_template(t, "deployment", &what),
            container: self.opt_template(t, "container", &what),
            image: self.opt_template(t, "image", &what),
            manifests: self.opt_list(t, "manifests", &what),
            images: t
                .get("images")
                .map(|v| self.template_map(v, &format_args!("{what}.images")))
                .unwrap_or_default(),
            namespace: self.opt_template(t, "namespace", &what),
            context: self.opt_template(t, "context", &what),
            timeout: self.opt_template(t, "timeout", &what),
            undo_on_failure: t
                .get("undo_on_failure")
                .and_then(|v| self.bool_template(v, &format_args!("{what}.undo_on_failure"))),
            span: v.span(),
        };
        let form1 = t.contains_key("deployment");
        let form2 = t.contains_key("manifests");
        let problem = match (form1, form2) {
            (true, true) => Some("has both `deployment` and `manifests`"),
            (false, false) => Some("needs `deployment` (with `container` and `image`) or `manifests`"),
            (true, false) if !(t.contains_key("container") && t.contains_key("image")) => {
                Some("with `deployment` also needs `container` and `image`")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            self.error(
                ConfigError::new("deploy", format!("`{what}` {problem}"))
                    .label(v.span(), "incomplete deploy")
                    .help("form 1: deployment + container + image; form 2: manifests + images"),
            );
        }
        Some(d)
    }

    fn builder(&mut self, key: &Spanned<std::borrow::Cow<str>>, v: &Value) -> Option<Builder> {
        let name = key.get_ref().to_string();
        let what = format!("builders.{name}");
        let t = self.table(v, &what)?;
        self.check_keys(t, BUILDER_KEYS, &format_args!("`[{what}]`"));
        let mut nodes = Vec::new();
        if let Some(nv) = t.get("nodes") {
            if let DeValue::Array(items) = nv.get_ref() {
                for item in items.iter() {
                    let Some(nt) = self.table(item, &format_args!("{what}.nodes")) else {
                        continue;
                    };
                    self.check_keys(nt, NODE_KEYS, &format_args!("a node of `[{what}]`"));
                    let endpoint = self.opt_template(nt, "endpoint", &what);
                    let platforms = self.opt_list(nt, "platforms", &what);
                    match endpoint {
                        Some(endpoint) => nodes.push(BuilderNode { endpoint, platforms }),
                        None if !nt.contains_key("endpoint") => self.error(
                            ConfigError::new("missing", format!("a node of `[{what}]` needs an `endpoint`"))
                                .label(item.span(), "no `endpoint`"),
                        ),
                        None => {}
                    }
                }
            } else {
                self.wrong_type(nv, &format_args!("{what}.nodes"), "an array of tables");
            }
        }
        Some(Builder {
            name,
            driver: self.opt_template(t, "driver", &what),
            driver_opts: self.opt_list(t, "driver_opts", &what),
            insecure_registries: self.opt_list(t, "insecure_registries", &what),
            nodes,
            span: key.span(),
        })
    }

    fn cache(&mut self, v: &Value) -> Option<CacheConfig> {
        let t = self.table(v, &"cache")?;
        self.check_keys(t, CACHE_KEYS, &"[cache]");
        let remote = self.opt_template(t, "remote", &"cache");
        let Some(remote) = remote else {
            if !t.contains_key("remote") {
                self.error(
                    ConfigError::new("missing", "`[cache]` needs `remote`")
                        .label(v.span(), "no `remote`")
                        .help("e.g. remote = \"oci://127.0.0.1:5000/team/mtr-cache\""),
                );
            }
            return None;
        };
        // A literal remote is checked now; a templated one when it is used.
        if let (Some(text), Some(v)) = (remote.as_literal(), t.get("remote"))
            && let Err(why) = crate::cache::reference::Remote::parse(text)
        {
            self.error(
                ConfigError::new("invalid-remote", format!("`[cache] remote`: {why}"))
                    .label(v.span(), "not an OCI repository")
                    .help("e.g. remote = \"oci://127.0.0.1:5000/team/mtr-cache\""),
            );
        }
        let insecure = t.get("insecure").and_then(|v| self.boolean(v, &"cache.insecure"));
        let push = t.get("push").and_then(|v| self.boolean(v, &"cache.push"));
        let timeout = t.get("timeout").and_then(|v| match v.get_ref() {
            DeValue::Integer(i) => i.as_str().parse::<u64>().ok(),
            DeValue::String(s) => parse_seconds(s),
            _ => None,
        });
        if let Some(tv) = t.get("timeout")
            && timeout.is_none()
        {
            self.wrong_type(tv, &"cache.timeout", "seconds or a duration like \"5s\"");
        }
        Some(CacheConfig {
            remote,
            insecure: insecure.unwrap_or(false),
            push: push.unwrap_or(true),
            timeout_secs: timeout.unwrap_or(5),
        })
    }
}

fn parse_seconds(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(m) = s.strip_suffix('m') {
        return m.parse::<u64>().ok().map(|m| m * 60);
    }
    s.strip_suffix('s').unwrap_or(s).parse().ok()
}

fn article(kind: &str) -> String {
    match kind.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

/// Narrows `span` (a whole string value, quotes included) to `offset` inside
/// its text, when the source spells the string without escapes.
fn narrow(src: &str, span: &Range<usize>, text: &str, offset: &Range<usize>) -> Range<usize> {
    let raw = src.get(span.clone()).unwrap_or("");
    match raw.find(text) {
        Some(at) if !text.is_empty() => {
            let start = span.start + at;
            start + offset.start..start + offset.end.min(text.len())
        }
        _ => span.clone(),
    }
}

/// Checks across sections: deps, aliases, variables, templates, globs, cycles.
fn validate(l: &mut Loader, c: &Config) {
    let task_names: Vec<&str> = c.tasks.keys().map(String::as_str).collect();
    // Each alias with the task it names.
    let mut aliases: HashMap<&str, &str> = HashMap::new();
    for task in c.tasks.values() {
        for (i, alias) in task.aliases.iter().enumerate() {
            let span = l
                .alias_spans
                .get(&(task.name.clone(), i))
                .cloned()
                .unwrap_or_else(|| task.span.clone());
            let clash = if c.tasks.contains_key(alias) {
                Some((
                    format!("alias `{alias}` of task `{}` is already the name of a task", task.name),
                    format!("`mtr {alias}` runs task `{alias}`: remove this alias or rename it"),
                ))
            } else if let Some(owner) = aliases.get(alias.as_str()) {
                Some((
                    format!(
                        "alias `{alias}` of task `{}` is already an alias of task `{owner}`",
                        task.name
                    ),
                    format!("`mtr {alias}` runs task `{owner}`: remove one of the two aliases or rename it"),
                ))
            } else {
                aliases.insert(alias, &task.name);
                None
            };
            if let Some((message, help)) = clash {
                l.error(
                    ConfigError::new("alias", message)
                        .label(span, "already taken")
                        .help(help),
                );
            }
        }
    }
    // Tasks by their index in `c.tasks`, so the graph checks below hash
    // and allocate no names.
    let resolve = |name: &str| -> Option<usize> {
        c.tasks
            .get_index_of(name)
            .or_else(|| aliases.get(name).and_then(|t| c.tasks.get_index_of(*t)))
    };
    for task in c.tasks.values() {
        for (dep, span) in &task.deps {
            if resolve(dep).is_none() {
                l.error(
                    ConfigError::new(
                        "unknown-dep",
                        format!("task `{}` depends on unknown task `{dep}`", task.name),
                    )
                    .label(span.clone(), "no task with this name")
                    .maybe_help(did_you_mean(dep, task_names.iter().copied())),
                );
            }
        }
    }
    if let Some((default, span)) = &c.project.default
        && resolve(default).is_none()
    {
        l.error(
            ConfigError::new("unknown-task", format!("default task `{default}` does not exist"))
                .label(span.clone(), "no task with this name")
                .maybe_help(did_you_mean(default, task_names.iter().copied())),
        );
    }
    let var_names: Vec<&str> = c.vars.keys().map(String::as_str).collect();
    // Built-ins are suggested too (`{{ rot }}` → `root`), except where a
    // placeholder is not allowed (`task` and `hash` in a variable).
    let check_var_in = |l: &mut Loader, t: &Template, name: &str, builtins: &[&str]| {
        if !c.vars.contains_key(name) {
            let text = format!("{{{{ {name} }}}}");
            let span = find_ref(l.src, &t.span, name).unwrap_or_else(|| t.span.clone());
            let candidates = var_names.iter().chain(builtins).copied();
            l.error(
                ConfigError::new("unknown-var", format!("unknown variable `{name}`"))
                    .label(span, "not defined in [vars]")
                    .help(did_you_mean(name, candidates).unwrap_or_else(|| {
                        format!("define it under [vars], or write `{{{{{{{{` to keep a literal `{text}`")
                    })),
            );
        }
    };
    let check_var = |l: &mut Loader, t: &Template, name: &str| check_var_in(l, t, name, BUILTINS);
    let in_var: Vec<&str> = BUILTINS
        .iter()
        .copied()
        .filter(|b| !matches!(*b, "task" | "hash"))
        .collect();
    // Variables may only use other variables and process-level built-ins.
    for var in c.vars.values() {
        for t in var.default.iter().chain(&var.sh) {
            for r in t.refs() {
                match r {
                    Ref::Var(name) => check_var_in(l, t, name, &in_var),
                    Ref::Root | Ref::Os | Ref::Arch | Ref::Env(_) => {}
                    other => {
                        let span = find_ref(l.src, &t.span, &other.display()).unwrap_or_else(|| t.span.clone());
                        l.error(
                            ConfigError::new(
                                "template",
                                format!("`{{{{ {} }}}}` cannot be used in a variable", other.display()),
                            )
                            .label(span, "only variables, `root`, `os`, `arch` and `env.NAME` here")
                            .help(
                                "a variable has one value for the whole run, while each task has its own name \
                                 and hash: use this placeholder in the task's own fields instead",
                            ),
                        )
                    }
                }
            }
        }
    }
    var_cycles(l, c);
    for t in c.env.iter().map(|(_, t)| t) {
        for r in t.refs() {
            match r {
                Ref::Var(name) => check_var(l, t, name),
                Ref::TaskHash(_) | Ref::TaskImage(_) => {
                    let span = find_ref(l.src, &t.span, &r.display()).unwrap_or_else(|| t.span.clone());
                    l.error(
                        ConfigError::new(
                            "template",
                            format!("`{{{{ {} }}}}` cannot be used in [env]", r.display()),
                        )
                        .label(span, "use it in a task's `env` instead"),
                    )
                }
                _ => {}
            }
        }
    }
    for b in c.builders.values() {
        for t in b.templates() {
            for r in t.refs() {
                if let Ref::Var(name) = r {
                    check_var(l, t, name);
                }
            }
        }
    }
    let deps: Vec<Vec<usize>> = c
        .tasks
        .values()
        .map(|t| t.deps.iter().filter_map(|(d, _)| resolve(d)).collect())
        .collect();
    let cyclic = cycles(l, c, &deps);
    for (index, task) in c.tasks.values().enumerate() {
        for t in task.templates() {
            for r in t.refs() {
                match r {
                    Ref::Var(name) => check_var(l, t, name),
                    Ref::TaskHash(other) | Ref::TaskImage(other) => {
                        let span = find_ref(l.src, &t.span, &r.display()).unwrap_or_else(|| t.span.clone());
                        let Some(target) = resolve(other) else {
                            l.error(
                                ConfigError::new(
                                    "unknown-task",
                                    format!("`{{{{ {} }}}}` names unknown task `{other}`", r.display()),
                                )
                                .label(span, "no task with this name")
                                .maybe_help(did_you_mean(other, task_names.iter().copied())),
                            );
                            continue;
                        };
                        if matches!(r, Ref::TaskImage(_)) && !matches!(c.tasks[target].action, Action::Image(_)) {
                            l.error(
                                ConfigError::new(
                                    "template",
                                    format!("`{{{{ {} }}}}`: task `{other}` does not build an image", r.display()),
                                )
                                .label(span.clone(), "not an `image` task"),
                            );
                        }
                        if !cyclic && !reaches(index, target, &deps) {
                            l.error(
                                ConfigError::new(
                                    "missing-dep",
                                    format!(
                                        "task `{}` uses `{{{{ {} }}}}` but does not depend on `{other}`",
                                        task.name,
                                        r.display()
                                    ),
                                )
                                .label(span, format!("needs `{other}` to have run first"))
                                .help(format!("add \"{other}\" to the `deps` of `{}`", task.name)),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
        for glob in task.inputs.iter().flatten().chain(&task.outputs).chain(&task.watch) {
            if let Some(text) = glob.as_literal()
                && let Err(e) = crate::inputs::check_glob(text)
            {
                l.error(
                    ConfigError::new("glob", format!("invalid glob `{text}`: {e}"))
                        .label(glob.span.clone(), "invalid glob"),
                );
            }
        }
        // Several platforms without `push` are checked when a plan holds
        // the task (`mtr --list` or another task must still work).
    }
}

/// buildx cannot `--load` a multi-platform image; say so before building.
pub fn multi_platform_error(task: &str, image: &ImageAction) -> ConfigError {
    let span = image
        .platforms
        .first()
        .map(|p| p.span.clone())
        .unwrap_or(image.span.clone());
    ConfigError::new(
        "platforms",
        format!("task `{task}` builds several platforms but does not push"),
    )
    .label(span, "several platforms")
    .help("`docker buildx build --load` cannot load a multi-platform image: set `push = true`, or build one platform")
}

/// An image task whose `name` is empty, written so or (checked when the
/// plan is made) rendered so: `docker buildx build -t :TAG` would fail with
/// a far less helpful message. The hint names the variables it uses.
pub fn empty_image_name_error(task: &str, name: &Template) -> ConfigError {
    let mut vars: Vec<String> = Vec::new();
    for r in name.refs() {
        if let Ref::Var(v) = r
            && !vars.contains(&format!("`{v}`"))
        {
            vars.push(format!("`{v}`"));
        }
    }
    let e = ConfigError::new("image-name", format!("task `{task}`: `image.name` is empty"))
        .label(name.span.clone(), "no image repository");
    if vars.is_empty() {
        e.help("name the image repository, e.g. name = \"{{ registry }}/app\"")
    } else {
        e.help(format!("it renders to nothing: give {} a value", vars.join(", ")))
    }
}

/// The span of `{{ name }}` inside a string value, if spelled plainly.
fn find_ref(src: &str, span: &Range<usize>, name: &str) -> Option<Range<usize>> {
    let raw = src.get(span.clone())?;
    let mut from = 0;
    while let Some(open) = raw[from..].find("{{") {
        let start = from + open;
        let close = raw[start..].find("}}")? + start + 2;
        if raw[start + 2..close - 2].trim() == name {
            return Some(span.start + start..span.start + close);
        }
        from = close;
    }
    None
}

/// Whether task `from` depends on task `to`, directly or through other
/// deps; tasks are indexes into `deps`, each task's resolved deps.
fn reaches(from: usize, to: usize, deps: &[Vec<usize>]) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut stack = deps[from].clone();
    while let Some(next) = stack.pop() {
        if next == to {
            return true;
        }
        if !std::mem::replace(&mut seen[next], true) {
            stack.extend(&deps[next]);
        }
    }
    false
}

/// Reports every dependency cycle with its whole path. True if any.
/// `deps` holds each task's resolved deps, as indexes into `c.tasks`.
fn cycles(l: &mut Loader, c: &Config, deps: &[Vec<usize>]) -> bool {
    // The common case, no cycle, is settled without building names.
    if crate::graph::is_acyclic(deps) {
        return false;
    }
    let name = |i: usize| c.tasks.get_index(i).map(|(k, _)| k.clone()).unwrap_or_default();
    let edges: Vec<(String, String)> = c
        .tasks
        .keys()
        .zip(deps)
        .flat_map(|(t, ds)| ds.iter().map(move |&d| (t.clone(), name(d))))
        .collect();
    let found = crate::graph::find_cycles(c.tasks.keys().cloned().collect(), &edges);
    for cycle in &found {
        let path = cycle.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" → ");
        let mut e = ConfigError::new("cycle", format!("dependency cycle: {path}"))
            .help("a task cannot depend on itself, directly or through other tasks; remove one of these deps");
        for pair in cycle.windows(2) {
            let (from, to) = (&pair[0], &pair[1]);
            if let Some((_, span)) = c.tasks[from]
                .deps
                .iter()
                .find(|(d, _)| d == to || c.tasks.get(to).is_some_and(|t| t.aliases.contains(d)))
            {
                e = e.label(span.clone(), format!("`{from}` depends on `{to}`"));
            }
        }
        l.error(e);
    }
    !found.is_empty()
}

/// Variables whose values refer to each other in a loop.
fn var_cycles(l: &mut Loader, c: &Config) {
    let edges: Vec<(String, String)> = c
        .vars
        .values()
        .flat_map(|v| {
            v.default
                .iter()
                .chain(&v.sh)
                .flat_map(|t| t.refs())
                .filter_map(|r| match r {
                    Ref::Var(n) if c.vars.contains_key(n) => Some((v.name.clone(), n.clone())),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for cycle in crate::graph::find_cycles(c.vars.keys().cloned().collect(), &edges) {
        let path = cycle.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" → ");
        let mut e = ConfigError::new("var-cycle", format!("variables refer to each other in a cycle: {path}"));
        for name in &cycle[..cycle.len() - 1] {
            e = e.label(c.vars[name].span.clone(), format!("`{name}`"));
        }
        l.error(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image name that renders empty is reported (when the plan is
    /// made) naming the variables to set.
    #[test]
    fn an_empty_image_name_names_its_variables() {
        let root = Path::new("/nonexistent");
        let text = "[vars]\nreg = \"\"\n[tasks.img.image]\nname = \"{{ reg }}{{ reg }}\"\n";
        let config = parse(text, "montage.toml", &root.join("montage.toml"), root).unwrap();
        let Action::Image(image) = &config.tasks["img"].action else {
            panic!("not an image task");
        };
        let e = empty_image_name_error("img", &image.name);
        assert_eq!(e.message, "task `img`: `image.name` is empty");
        assert_eq!(e.help.as_deref(), Some("it renders to nothing: give `reg` a value"));
        assert_eq!(e.labels[0].0, text.find("\"{{").unwrap()..text.len() - 1);
    }

    /// A big generated config (a long chain, a wide aggregate, aliases and
    /// `tasks.NAME.hash` references to far-away deps) loads, and its
    /// mistakes are still all reported.
    #[test]
    fn a_large_config_loads_and_reports_every_mistake() {
        let n = 3000;
        let mut text = String::from("[project]\nname = \"big\"\n");
        for i in 0..n {
            text.push_str(&format!(
                "[tasks.t{i}]\ninputs = [\"src/t{i}/**\"]\naliases = [\"a{i}\"]\n"
            ));
            if i > 0 {
                text.push_str(&format!("deps = [\"a{}\"]\n", i - 1));
            }
            if i > 0 {
                text.push_str(&format!("run = \"echo {{{{ tasks.t{}.hash }}}}\"\n", i / 2));
            }
        }
        let all: Vec<String> = (0..n).map(|i| format!("\"t{i}\"")).collect();
        text.push_str(&format!("[tasks.all]\ndeps = [{}]\n", all.join(", ")));
        let root = Path::new("/nonexistent");
        let config =
            parse(&text, "montage.toml", &root.join("montage.toml"), root).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(config.tasks.len(), n + 1);
        let plan = crate::graph::Plan::new(&config, &["all".to_string()]);
        let expected: Vec<String> = (0..n).map(|i| format!("t{i}")).chain(["all".to_string()]).collect();
        assert_eq!(plan.order, expected);
        assert_eq!(plan.deps["t5"], ["t4"]);

        // t1 no longer depends on t0, which it references; t7 names an
        // unknown task.
        let broken = text
            .replacen("aliases = [\"a1\"]\ndeps = [\"a0\"]", "aliases = [\"a1\"]", 1)
            .replacen("deps = [\"a6\"]", "deps = [\"t6x\", \"a6\"]", 1);
        let errors = parse(&broken, "montage.toml", &root.join("montage.toml"), root).unwrap_err();
        let codes: Vec<&str> = errors.iter().map(|e| e.code).collect();
        assert_eq!(codes, ["missing-dep", "unknown-dep"], "{errors:#?}");
        assert_eq!(
            errors[0].message,
            "task `t1` uses `{{ tasks.t0.hash }}` but does not depend on `t0`"
        );
        assert_eq!(errors[1].help.as_deref(), Some("did you mean `t6`?"));
        // t9 and t10 depend on each other.
        let cyclic = text.replacen("deps = [\"a8\"]", "deps = [\"a10\"]", 1);
        let errors = parse(&cyclic, "montage.toml", &root.join("montage.toml"), root).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].message, "dependency cycle: `t9` → `t10` → `t9`");
    }
}
