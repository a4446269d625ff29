//! `mtr` / `mtr --list`: the tasks, grouped, with descriptions — the
//! `make help` every project writes by hand.

use serde::Serialize;

use crate::config::{Config, Task};

/// The human listing (stdout).
pub fn text(config: &Config) -> String {
    let visible: Vec<&Task> = config.tasks.values().filter(|t| !t.hidden()).collect();
    let width = visible.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let default = config
        .project
        .default
        .as_ref()
        .map(|(d, _)| config.resolve_task(d).unwrap_or(d));
    let mut groups: Vec<(Option<&str>, Vec<&Task>)> = Vec::new();
    for t in &visible {
        let g = t.group.as_deref();
        match groups.iter_mut().find(|(name, _)| *name == g) {
            Some((_, tasks)) => tasks.push(t),
            None => groups.push((g, vec![t])),
        }
    }
    // Ungrouped tasks first, then groups in first-seen order.
    groups.sort_by_key(|(g, _)| g.is_some());
    let mut out = String::new();
    let name = config.display_name();
    let count = visible.len();
    out.push_str(&format!("{name} — {count} task{}\n", if count == 1 { "" } else { "s" }));
    if visible.is_empty() {
        out.push_str("\n(no tasks yet: add [tasks.NAME] sections to montage.toml)\n");
        return out;
    }
    for (group, tasks) in &groups {
        out.push('\n');
        if let Some(g) = group {
            out.push_str(&format!("{g}\n"));
        }
        for t in tasks {
            let mut line = format!("  {:<width$}", t.name);
            let mut notes = Vec::new();
            if let Some(d) = &t.description {
                notes.push(d.clone());
            }
            if default == Some(t.name.as_str()) {
                notes.push("(default)".into());
            }
            if !t.aliases.is_empty() {
                notes.push(format!("[aliases: {}]", t.aliases.join(", ")));
            }
            if let Some(dep) = &t.deprecated {
                notes.push(if dep.is_empty() {
                    "(deprecated)".into()
                } else {
                    format!("(deprecated: {dep})")
                });
            }
            if !notes.is_empty() {
                line.push_str("  ");
                line.push_str(&notes.join(" "));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[derive(Serialize)]
struct JsonListing<'a> {
    project: String,
    default: Option<&'a str>,
    tasks: Vec<JsonTask<'a>>,
}

#[derive(Serialize)]
struct JsonTask<'a> {
    name: &'a str,
    description: Option<&'a str>,
    group: Option<&'a str>,
    deps: Vec<&'a str>,
    aliases: &'a [String],
    action: &'static str,
    interactive: bool,
    hidden: bool,
    deprecated: Option<&'a str>,
}

/// The machine-readable listing (`--list --json`), hidden tasks included.
pub fn json(config: &Config) -> String {
    let listing = JsonListing {
        project: config.display_name(),
        // The task's own name, also when the default is given as an alias.
        default: config
            .project
            .default
            .as_ref()
            .map(|(d, _)| config.resolve_task(d).unwrap_or(d)),
        tasks: config
            .tasks
            .values()
            .map(|t| JsonTask {
                name: &t.name,
                description: t.description.as_deref(),
                group: t.group.as_deref(),
                deps: t.deps.iter().map(|(d, _)| d.as_str()).collect(),
                aliases: &t.aliases,
                action: t.action.kind(),
                interactive: t.interactive,
                hidden: t.hidden(),
                deprecated: t.deprecated.as_deref(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&listing).unwrap_or_default() + "\n"
}
