//! GitHub Actions: workflow commands (`::error::`, `::warning::`) and the
//! Markdown table of the run appended to `$GITHUB_STEP_SUMMARY`.
//!
//! The `::group::` folding of task output lives in [`crate::report`], which
//! holds each task's lines until it finishes.

use std::io::Write;

use crate::summary::{Run, TaskStatus};

/// Whether mtr runs inside GitHub Actions.
pub fn active() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// A workflow command line such as `::error title=T::message`, escaped as
/// the runner expects (a message may span lines).
pub fn command(kind: &str, title: Option<&str>, message: &str) -> String {
    let data = message.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    match title {
        Some(t) => {
            let t = t
                .replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A")
                .replace(':', "%3A")
                .replace(',', "%2C");
            format!("::{kind} title=mtr%3A {t}::{data}")
        }
        None => format!("::{kind}::{data}"),
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
        run.reporter.mask(&crate::report::summary_text(&run.result.counts(), run.result.took))
    ));
    out.push_str("| Task | Status | Duration | Why |\n|---|---|---|---|\n");
    for name in &run.plan.order {
        let Some(o) = run.result.outcomes.get(name) else { continue };
        let status = TaskStatus::of(&o.status);
        let icon = match status {
            TaskStatus::Ran => "✅",
            TaskStatus::UpToDate => "⏭️",
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
            status.as_str(),
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
}
