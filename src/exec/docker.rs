//! Running the docker side of typed actions: the buildx check, managed
//! builders, containers that Ctrl-C stops, and "does the image exist".

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::job::Status;
use super::process::{self, Exit, Io, SpawnError};
use crate::action::builder::BuilderSpec;
use crate::action::container::ContainerRun;
use crate::report::Reporter;

/// How to get buildx, for the "not installed" message.
const BUILDX_HELP: &str = "install the Docker buildx plugin: Docker Desktop includes it; on Debian/Ubuntu \
     `apt install docker-buildx-plugin` (Docker's apt repository) or `docker-buildx`; \
     or download it from https://github.com/docker/buildx/releases into ~/.docker/cli-plugins/docker-buildx";

/// A docker step that failed: what to say, and the exit status to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 127 when `docker` is not on PATH (as a shell reports a missing
    /// command, and as a `container` task exits), else 1.
    pub code: i32,
    pub message: String,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { code: 1, message }
    }
}

impl From<SpawnError> for Failure {
    fn from(e: SpawnError) -> Self {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

impl From<Failure> for Status {
    fn from(f: Failure) -> Self {
        Status::Failed {
            code: f.code,
            message: f.message,
        }
    }
}

/// Checks once per run that `docker buildx` works.
pub fn check_buildx(cwd: &Path, env: &HashMap<String, String>) -> Result<(), Failure> {
    static CHECKED: Mutex<Option<Result<(), Failure>>> = Mutex::new(None);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = checked.as_ref() {
        return r.clone();
    }
    let argv: Vec<String> = ["docker", "buildx", "version"].map(String::from).to_vec();
    let result = match process::capture(&argv, cwd, env) {
        Ok((0, _, _)) => Ok(()),
        Ok(_) => Err(Failure::from(format!(
            "`docker buildx` is not installed\n  help: {BUILDX_HELP}"
        ))),
        Err(e) => Err(Failure::from(e)),
    };
    *checked = Some(result.clone());
    result
}

/// Makes sure builder `spec.name` exists with this exact configuration:
/// created if missing, recreated if its section changed since mtr made it.
pub fn setup_builder(
    task: &str,
    spec: &BuilderSpec,
    mtr_dir: &Path,
    cwd: &Path,
    env: &HashMap<String, String>,
    reporter: &Arc<Reporter>,
) -> Result<(), Failure> {
    // Parallel image tasks share a builder: one of them sets it up.
    static ENSURED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut ensured = ENSURED.lock().unwrap_or_else(|e| e.into_inner());
    if ensured.as_ref().is_some_and(|s| s.contains(&spec.name)) {
        return Ok(());
    }
    let dir = mtr_dir.join("builders").join(&spec.name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let config_file = dir.join("buildkitd.toml");
    let digest_file = dir.join("digest");
    let want = spec.digest();
    let inspect: Vec<String> = ["docker", "buildx", "inspect", spec.name.as_str()]
        .map(String::from)
        .to_vec();
    let exists = matches!(process::capture(&inspect, cwd, env), Ok((0, _, _)));
    let recorded = std::fs::read_to_string(&digest_file).unwrap_or_default();
    if exists && recorded.trim() == want {
        ensured.get_or_insert_default().insert(spec.name.clone());
        return Ok(());
    }
    write_atomic(&config_file, &spec.buildkitd_config())?;
    let _ = std::fs::remove_file(&digest_file);
    let mut commands = Vec::new();
    if exists {
        reporter.line(&format!(
            "[{task}] builder `{}` changed since mtr created it (or was not made by mtr): recreating it",
            spec.name
        ));
        commands.push(
            ["docker", "buildx", "rm", spec.name.as_str()]
                .map(String::from)
                .to_vec(),
        );
    }
    commands.extend(spec.create_commands(&config_file.display().to_string()));
    for argv in commands {
        reporter.command(task, &crate::action::shell_join(&argv));
        let exit = process::run(task, &argv, cwd, env, Io::Piped, reporter)?;
        if exit.code != 0 {
            return Err(failure(&argv, &exit).into());
        }
    }
    write_atomic(&digest_file, &want)?;
    ensured.get_or_insert_default().insert(spec.name.clone());
    Ok(())
}

fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    crate::atomic_file::write(path, &[text.as_bytes()]).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// "`docker buildx create` failed (exit status 1): LAST STDERR LINE".
pub fn failure(argv: &[String], exit: &Exit) -> String {
    let what = argv.iter().take(3).cloned().collect::<Vec<_>>().join(" ");
    match &exit.last_err {
        Some(line) => format!("`{what}` failed (exit status {}): {line}", exit.code),
        None => format!("`{what}` failed (exit status {})", exit.code),
    }
}

/// Runs a container to completion; Ctrl-C removes it (`docker rm -f`), so
/// none is left running.
pub fn run_container(
    task: &str,
    run: &ContainerRun,
    interactive: bool,
    cwd: &Path,
    env: &HashMap<String, String>,
    reporter: &Arc<Reporter>,
) -> Result<Exit, SpawnError> {
    let name = container_name(task);
    let tty = interactive && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let argv = run.argv(&name, tty);
    reporter.command(task, &crate::action::shell_join(&argv));
    let rm: Vec<String> = ["docker", "rm", "-f", name.as_str()].map(String::from).to_vec();
    let id = process::on_interrupt(rm.clone());
    let io = if interactive { Io::Terminal } else { Io::Piped };
    let result = process::run(task, &argv, cwd, env, io, reporter);
    process::forget_interrupt(id);
    if process::cancelled() || result.is_err() {
        let _ = process::capture(&rm, cwd, env);
    }
    result
}

/// A container name unique to this run and task: `mtr-TASK-PID-N`.
fn container_name(task: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let safe: String = task
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("mtr-{safe}-{}-{n}", std::process::id())
}

/// Whether the check command (`docker image inspect REF`, `docker buildx
/// imagetools inspect REF`) finds the image.
pub fn image_exists(argv: &[String], cwd: &Path, env: &HashMap<String, String>) -> bool {
    matches!(process::capture(argv, cwd, env), Ok((0, _, _)))
}
