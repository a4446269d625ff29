//! What is checked when the plan is made, before anything runs (exit 2,
//! each error pointing into the file): every variable the plan's tasks use
//! has a value, and what only the values can tell (several platforms
//! without `push`, a `push` that is not a boolean, a glob a template makes
//! invalid).

use std::collections::HashMap;

use crate::config::vars::Vars;
use crate::config::{Config, ConfigError};
use crate::error::Error;
use crate::graph::Plan;
use crate::render::used_vars;

/// Every variable a task of the plan uses must have a value before
/// anything runs (this also runs each needed `sh` once), those of the
/// `[builders]` section its image task uses included.
pub fn vars(config: &Config, vars: &Vars, plan: &Plan) -> Result<(), Error> {
    let deps = HashMap::new();
    let root = config.root.display().to_string();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut reported = std::collections::HashSet::new();
    for name in &plan.order {
        let task = &config.tasks[name];
        let mut templates = task.templates();
        templates.extend(config.env.iter().map(|(_, t)| t));
        let mut uses: Vec<(String, Option<&str>)> = used_vars(templates).into_iter().map(|v| (v, None)).collect();
        let r = plan_renderer(vars, name, &root, &deps);
        if let Some(b) = managed_builder(config, task, &r) {
            uses.extend(used_vars(b.templates()).into_iter().map(|v| (v, Some(b.name.as_str()))));
        }
        for (var, builder) in uses {
            if !seen.insert(var.clone()) {
                continue;
            }
            // Name the variable that has no value, which may be one that
            // `var` uses rather than `var` itself.
            if let Err(missing) = vars.get(&var)
                && reported.insert(missing.name.clone())
            {
                let def = vars.def(&missing.name);
                let through = if missing.name == var {
                    String::new()
                } else {
                    format!(" through `{var}`")
                };
                let user = match builder {
                    Some(b) => format!("`[builders.{b}]`, the builder of task `{name}`"),
                    None => format!("task `{name}`"),
                };
                let mut e = ConfigError::new(
                    "no-value",
                    format!("variable `{}` has no value (used by {user}{through})", missing.name),
                )
                .help(match def.and_then(|d| d.description.as_ref()) {
                    Some(desc) => format!("{desc}\n{}", missing.detail),
                    None => missing.detail.clone(),
                })
                .with_source(&config.source);
                if let Some(d) = def {
                    e = e.label(d.span.clone(), "declared here");
                }
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(errors))
    }
}

/// Renders a task's templates when the plan is made: variables have their
/// values, `{{ hash }}` is a stand-in, dependencies have not run.
fn plan_renderer<'a>(
    vars: &'a Vars,
    task: &'a str,
    root: &'a str,
    deps: &'a HashMap<String, crate::render::DepInfo>,
) -> crate::render::Renderer<'a> {
    crate::render::Renderer {
        vars,
        task,
        root,
        hash: Some("000000000000"),
        deps,
    }
}

/// The `[builders]` section an image task uses, if it names a declared one
/// (a templated name whose value is missing names none: that variable is
/// reported for the task itself).
fn managed_builder<'c>(
    config: &'c Config,
    task: &crate::config::Task,
    r: &crate::render::Renderer,
) -> Option<&'c crate::config::Builder> {
    let crate::config::Action::Image(image) = &task.action else {
        return None;
    };
    let name = image.builder.as_ref()?;
    let name = match name.as_literal() {
        Some(n) => n.to_string(),
        None => r.render(name).ok()?,
    };
    config.builders.get(&name)
}

/// What can only be checked with the variables' values, before anything
/// runs: several platforms without `push` (`PLATFORMS=linux/arm64` may
/// narrow a build), a `push` template that is not `true` or `false`, a
/// glob that a template makes invalid. Each error points at its template.
pub fn rendered(config: &Config, vars: &Vars, plan: &Plan) -> Result<(), Error> {
    let deps = HashMap::new();
    let root = config.root.display().to_string();
    let mut errors = Vec::new();
    for name in &plan.order {
        let task = &config.tasks[name];
        let r = plan_renderer(vars, name, &root, &deps);
        if let crate::config::Action::Image(image) = &task.action {
            if let Err(e) = crate::action::image::check_when_planned(name, image, &r) {
                errors.push(e.with_source(&config.source));
            }
            // A literal empty name was reported when the file was loaded.
            if image.name.as_literal().is_none() && r.render(&image.name).is_ok_and(|n| n.trim().is_empty()) {
                errors.push(crate::config::load::empty_image_name_error(name, &image.name).with_source(&config.source));
            }
        }
        // Literal globs were checked when the file was loaded.
        for glob in task.inputs.iter().flatten().chain(&task.outputs).chain(&task.watch) {
            if glob.as_literal().is_some() {
                continue;
            }
            // `{{ tasks.NAME.… }}` is known only once NAME has run.
            let Ok(text) = r.render(glob) else {
                continue;
            };
            if let Err(why) = crate::inputs::check_glob(&text) {
                let text = masked(vars, &text);
                let from: Vec<String> = used_vars([glob]).iter().map(|v| format!("`{v}`")).collect();
                errors.push(
                    ConfigError::new("glob", format!("invalid glob `{text}` in task `{name}`: {why}"))
                        .label(glob.span.clone(), format!("renders to `{text}`"))
                        .maybe_help((!from.is_empty()).then(|| format!("check the value of {}", from.join(", "))))
                        .with_source(&config.source),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(errors))
    }
}

/// `text` with the secrets' values masked as the reporter masks them (it
/// is not made yet): every line of a multi-line secret, the longest first.
fn masked(vars: &Vars, text: &str) -> String {
    let masks = crate::report::Reporter::new(false, crate::report::Verbosity::Quiet);
    masks.set_masks(vars.secrets());
    masks.mask(text)
}
