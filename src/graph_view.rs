//! `--graph [TASK]`: the task graph as Graphviz `dot` or a Mermaid
//! flowchart — every task, or the named tasks and what they depend on.
//!
//! Output is deterministic: tasks in declaration order, each task's edges
//! in the order of its `deps`. An edge `a -> b` reads "a depends on b", as
//! in Turborepo's and Bazel's graphs.

use std::collections::HashSet;

use crate::cli::GraphFormat;
use crate::config::{Action, Config, Task};
use crate::graph::Plan;

/// The graph of `roots` and their deps (every task when `roots` is empty).
pub fn render(config: &Config, roots: &[String], format: GraphFormat) -> String {
    let tasks: Vec<&Task> = if roots.is_empty() {
        config.tasks.values().collect()
    } else {
        let plan = Plan::new(config, roots);
        config
            .tasks
            .values()
            .filter(|t| plan.deps.contains_key(&t.name))
            .collect()
    };
    match format {
        GraphFormat::Dot => dot(config, &tasks),
        GraphFormat::Mermaid => mermaid(config, &tasks),
    }
}

/// Each task's deps, aliases resolved, without repeats.
fn deps<'a>(config: &'a Config, task: &'a Task) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    task.deps
        .iter()
        .filter_map(|(d, _)| config.resolve_task(d))
        .filter(|d| seen.insert(*d))
        .collect()
}

fn dot(config: &Config, tasks: &[&Task]) -> String {
    let mut out = String::from("digraph mtr {\n");
    out.push_str("  // an edge a -> b: task a depends on task b\n");
    out.push_str("  node [shape=box];\n");
    for t in tasks {
        let mut attrs = Vec::new();
        if matches!(t.action, Action::None) {
            // An aggregate only runs its deps.
            attrs.push("shape=ellipse".to_string());
        }
        if let Some(d) = &t.description {
            attrs.push(format!("tooltip={}", dot_quote(d)));
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        out.push_str(&format!("  {}{attrs};\n", dot_quote(&t.name)));
    }
    for t in tasks {
        for d in deps(config, t) {
            out.push_str(&format!("  {} -> {};\n", dot_quote(&t.name), dot_quote(d)));
        }
    }
    out.push_str("}\n");
    out
}

fn dot_quote(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
    )
}

fn mermaid(config: &Config, tasks: &[&Task]) -> String {
    // Task names may hold `:` and `-`, which Mermaid ids cannot: ids are
    // `t` + the task's position in the file, names are labels.
    let id = |name: &str| format!("t{}", config.tasks.get_index_of(name).unwrap_or_default());
    let mut out = String::from("flowchart TD\n");
    out.push_str("  %% an edge a --> b: task a depends on task b\n");
    for t in tasks {
        let label = mermaid_label(&t.name);
        if matches!(t.action, Action::None) {
            out.push_str(&format!("  {}([\"{label}\"])\n", id(&t.name)));
        } else {
            out.push_str(&format!("  {}[\"{label}\"]\n", id(&t.name)));
        }
    }
    for t in tasks {
        for d in deps(config, t) {
            out.push_str(&format!("  {} --> {}\n", id(&t.name), id(d)));
        }
    }
    out
}

fn mermaid_label(s: &str) -> String {
    s.replace('"', "#quot;")
}
