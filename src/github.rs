//! GitHub Actions: workflow commands (`::error::`, `::warning::`) and the
//! Markdown table of the run appended to `$GITHUB_STEP_SUMMARY`.
//!
//! The `::group::` folding of task output lives in [`crate::report`], which
//! holds each task's lines until it finishes.

use std::io::Write;

use crate::config::ConfigError;
use crate::summary::{Run, TaskStatus};

/// Whether mtr runs inside GitHub Actions.
pub fn active() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// A workflow command line such as `::error title=T::message`, escaped as
/// the runner expects (a message may span lines).
pub fn command(kind: &str, title: Option<&str>, message: &str) -> String {
    let props: Vec<(&str, String)> = title.map(|t| ("title", format!("mtr: {t}"))).into_iter().collect();
    annotation(kind, &props, message)
}

/// `::KIND key=value,...::message`, every part escaped.
fn annotation(kind: &str, props: &[(&str, String)], message: &str) -> String {
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let props: Vec<String> = props
        .iter()
        .map(|(k, v)| format!("{k}={}", data(v).replace(':', "%3A").replace(',', "%2C")))
        .collect();
    let sep = if props.is_empty() { "" } else { " " };
    format!("::{kind}{sep}{}::{}", props.join(","), data(message))
}

/// A config error as an annotation on the line of montage.toml it points
/// at (GitHub shows it in the pull request's diff).
pub fn config_error(e: &ConfigError) -> String {
    let mut props = vec![("title", "mtr: config error".to_string())];
    if let (Some(src), Some((span, _))) = (&e.source, e.labels.first()) {
        let before = src.inner().get(..span.start).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        props.insert(0, ("file", workspace_path(src.name())));
        props.insert(1, ("line", line.to_string()));
        props.insert(2, ("col", col.to_string()));
    }
    let message = match &e.help {
        Some(h) => format!("{}\nhelp: {h}", e.message),
        None => e.message.clone(),
    };
    annotation("error", &props, &message)
}

/// A path as GitHub expects it in an annotation: relative to the workspace.
fn workspace_path(path: &str) -> String {
    let workspace = std::env::var_os("GITHUB_WORKSPACE").map(std::path::PathBuf::from);
    let absolute = std::path::Path::new(path)
        .canonicalize()
        .unwrap_or_else(|_| path.into());
    match workspace.and_then(|w| {
        absolute
            .strip_prefix(w.canonicalize().unwrap_or(w))
            .ok()
            .map(|p| p.to_path_buf())
    }) {
        Some(rel) => rel.display().to_string(),
        None => path.to_string(),
    }
}

/// The run as Markdown: a headline and one table row per task.
pub fn markdown(run: &Run) -> String {
    let mut out = String::new();
    let names = run.plan.requested.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>();
    let verdict = if run.exit_code == 0 { "✅" } else { "❌" };
    out.push_str(&format!(
        "### {verdict} mtr {} — {}\n\n",
        names.join(" "),
        run.reporter
            .mask(&crate::report::summary_text(&run.result.counts(), run.result.took))
    ));
    out.push_str("| Task | Status | Duration | Why |\n|---|---|---|---|\n");
    for name in &run.plan.order {
        let Some(o) = run.result.outcomes.get(name) else {
            continue;
        };
        let status = TaskStatus::of(&o.status);
        let icon = match status {
            TaskStatus::Ran => "✅",
            TaskStatus::UpToDate => "⏭️",
            TaskStatus::Restored => "♻️",
            TaskStatus::Failed | TaskStatus::Interrupted => "❌",
            TaskStatus::NotRun => "⏸️",
            TaskStatus::WouldRun => "▶️",
        };
        let took = match status {
            TaskStatus::NotRun => String::new(),
            _ => crate::report::duration(o.took),
        };
        let why = run.reporter.mask(&crate::summary::why(o));
        out.push_str(&format!(
            "| `{name}` | {icon} {} | {took} | {} |\n",
            status.words(),
            cell(&why)
        ));
    }
    out.push('\n');
    out
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

/// Appends the run's table to `$GITHUB_STEP_SUMMARY`, when set.
pub fn write_step_summary(run: &Run) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    file.write_all(markdown(run).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_escaped() {
        assert_eq!(command("warning", None, "a\nb 100%"), "::warning::a%0Ab 100%25");
        assert_eq!(
            command("error", Some("task db:migrate failed"), "exit status 2"),
            "::error title=mtr%3A task db%3Amigrate failed::exit status 2"
        );
    }

    #[test]
    fn config_errors_point_at_their_line() {
        let text = "[tasks.a]\nrun = \"x\"\nbad = 1\n";
        let source = std::sync::Arc::new(miette::NamedSource::new("montage.toml", text.to_string()));
        let e = ConfigError::new("unknown-key", "unknown key `bad` in task `a`")
            .label(20..23, "here")
            .help("did you mean `dir`?")
            .with_source(&source);
        assert_eq!(
            config_error(&e),
            "::error file=montage.toml,line=3,col=1,title=mtr%3A config error::unknown key `bad` in task `a`%0Ahelp: did you mean `dir`?"
        );
    }
}
