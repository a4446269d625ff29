//! `--summary FILE`: the run as JSON for CI (schema in
//! `docs/summary-schema.md`), and [`Run`], what every after-the-run report
//! (summary, profile, GitHub step summary) reads.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Config;
use crate::exec::job::{Outcome, Status};
use crate::exec::scheduler::RunResult;
use crate::graph::Plan;
use crate::report::Reporter;

/// Bumped when a field changes meaning or disappears (adding one does not).
pub const SCHEMA_VERSION: u32 = 1;

/// A finished run, as the reports see it.
pub struct Run<'a> {
    pub config: &'a Config,
    pub plan: &'a Plan,
    pub result: &'a RunResult,
    /// Wall-clock time the run started.
    pub started: SystemTime,
    pub exit_code: i32,
    pub dry_run: bool,
    /// Masks secrets in every text written.
    pub reporter: &'a Reporter,
}

/// A task's status in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Ran,
    UpToDate,
    /// Outputs restored from the remote cache instead of running.
    Restored,
    Failed,
    NotRun,
    Interrupted,
    WouldRun,
}

impl TaskStatus {
    pub fn of(status: &Status) -> TaskStatus {
        match status {
            Status::Ran => TaskStatus::Ran,
            Status::UpToDate => TaskStatus::UpToDate,
            Status::Restored => TaskStatus::Restored,
            Status::WouldRun => TaskStatus::WouldRun,
            Status::Failed { .. } => TaskStatus::Failed,
            Status::Interrupted => TaskStatus::Interrupted,
            Status::NotRun(_) => TaskStatus::NotRun,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Ran => "ran",
            TaskStatus::UpToDate => "up-to-date",
            TaskStatus::Restored => "restored",
            TaskStatus::Failed => "failed",
            TaskStatus::NotRun => "not-run",
            TaskStatus::Interrupted => "interrupted",
            TaskStatus::WouldRun => "would-run",
        }
    }

    /// As people write it (Markdown tables).
    pub fn words(self) -> &'static str {
        match self {
            TaskStatus::UpToDate => "up to date",
            TaskStatus::Restored => "restored from cache",
            TaskStatus::NotRun => "not run",
            TaskStatus::WouldRun => "would run",
            other => other.as_str(),
        }
    }
}

/// Why a task ended as it did, in one line: the failure for a failed task,
/// otherwise why it ran or was skipped.
pub fn why(o: &Outcome) -> String {
    match &o.status {
        Status::Failed { message, .. } => message.clone(),
        Status::NotRun(why) => why.clone(),
        _ => o.reason.to_string(),
    }
}

#[derive(Serialize)]
struct Summary<'a> {
    schema: u32,
    mtr_version: &'static str,
    project: String,
    root: String,
    requested: &'a [String],
    dry_run: bool,
    started: String,
    started_unix_ms: u128,
    duration_ms: u128,
    exit_status: i32,
    interrupted: bool,
    counts: Counts,
    tasks: Vec<Task<'a>>,
}

#[derive(Serialize)]
struct Counts {
    ran: usize,
    up_to_date: usize,
    restored: usize,
    failed: usize,
    not_run: usize,
    interrupted: usize,
}

#[derive(Serialize)]
struct Task<'a> {
    name: &'a str,
    status: &'static str,
    reason: String,
    error: Option<String>,
    deps: &'a [String],
    start_ms: Option<u128>,
    duration_ms: Option<u128>,
    fingerprint: Option<String>,
    exit_status: Option<i32>,
}

/// The summary as pretty JSON (with a final newline).
pub fn json(run: &Run) -> String {
    let mask = |s: &str| run.reporter.mask(s);
    let mut counts = Counts {
        ran: 0,
        up_to_date: 0,
        restored: 0,
        failed: 0,
        not_run: 0,
        interrupted: 0,
    };
    let mut tasks = Vec::new();
    for name in &run.plan.order {
        let Some(o) = run.result.outcomes.get(name) else {
            continue;
        };
        let status = TaskStatus::of(&o.status);
        match status {
            TaskStatus::Ran | TaskStatus::WouldRun => counts.ran += 1,
            TaskStatus::UpToDate => counts.up_to_date += 1,
            TaskStatus::Restored => counts.restored += 1,
            TaskStatus::Failed => counts.failed += 1,
            TaskStatus::NotRun => counts.not_run += 1,
            TaskStatus::Interrupted => counts.interrupted += 1,
        }
        let started = run.result.started.get(name);
        tasks.push(Task {
            name,
            status: status.as_str(),
            reason: mask(&o.reason.to_string()),
            error: match &o.status {
                Status::Failed { message, .. } => Some(mask(message)),
                _ => None,
            },
            deps: &run.plan.deps[name],
            start_ms: started.map(Duration::as_millis),
            duration_ms: started.map(|_| o.took.as_millis()),
            fingerprint: o.fingerprint.as_ref().map(crate::fingerprint::hex),
            exit_status: match &o.status {
                Status::Ran => Some(0),
                Status::Failed { code, .. } => Some(*code),
                _ => None,
            },
        });
    }
    let summary = Summary {
        schema: SCHEMA_VERSION,
        mtr_version: env!("CARGO_PKG_VERSION"),
        project: run.config.display_name(),
        root: run.config.root.display().to_string(),
        requested: &run.plan.requested,
        dry_run: run.dry_run,
        started: rfc3339(run.started),
        started_unix_ms: run
            .started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0),
        duration_ms: run.result.took.as_millis(),
        exit_status: run.exit_code,
        interrupted: run.result.interrupted.is_some(),
        counts,
        tasks,
    };
    serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n"
}

/// Writes what the command line asked for after a run: `--summary`,
/// `--profile`, and under GitHub Actions the step summary (not for a
/// dry run). Every file is attempted; the error names each that failed.
pub fn write_reports(run: &Run, summary: Option<&Path>, profile: Option<&Path>) -> Result<(), String> {
    let mut errors = Vec::new();
    for (path, what, text) in [
        (summary, "summary", summary.map(|_| json(run))),
        (profile, "profile", profile.map(|_| crate::profile::json(run))),
    ] {
        if let (Some(path), Some(text)) = (path, text)
            && let Err(e) = write(&crate::cwd::from_start(path), &text)
        {
            errors.push(format!("cannot write the {what} to `{}`: {e}", path.display()));
        }
    }
    if run.reporter.github
        && !run.dry_run
        && let Err(e) = crate::github::write_step_summary(run)
    {
        errors.push(format!("cannot append to `$GITHUB_STEP_SUMMARY`: {e}"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Writes `text` to `path`, creating missing parent directories
/// (`--summary reports/run.json` in a fresh CI checkout).
fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

/// UTC time as `2024-05-01T12:34:56.789Z` (no date crate needed for this).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn case(unix: u64, want: &str) {
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(unix)), want);
    }

    #[test]
    fn formats_utc_times() {
        case(0, "1970-01-01T00:00:00.000Z");
        case(951_782_400, "2000-02-29T00:00:00.000Z");
        case(1_714_566_896, "2024-05-01T12:34:56.000Z");
        case(4_102_444_799, "2099-12-31T23:59:59.000Z");
    }
}
