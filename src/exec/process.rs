//! Child processes: each in its own process group, output forwarded line
//! by line, every live group known so Ctrl-C can stop all of them.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::report::{Reporter, Stream};

/// Set once the run is being interrupted: no new process starts.
pub static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Process groups of the children running now.
static GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// Set while a task owns the terminal (its group is ours, it gets Ctrl-C itself).
pub static FOREGROUND: AtomicBool = AtomicBool::new(false);

pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// Why a process could not run to an exit status.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("`{0}` was not found on PATH")]
    NotFound(String),
    #[error("cannot run `{0}`: {1}")]
    Io(String, std::io::Error),
    #[error("interrupted")]
    Interrupted,
}

/// How a child's stdio is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// Inherit the terminal; the child stays in mtr's process group.
    Terminal,
    /// Pipe stdout/stderr through the reporter (prefixing, masking); stdin null.
    Piped,
}

/// How a child ended.
#[derive(Debug, Clone, Default)]
pub struct Exit {
    /// The exit code (128+N for signal N).
    pub code: i32,
    /// The last non-empty line it wrote to stderr (for failure messages).
    pub last_err: Option<String>,
}

/// Runs `argv` to completion.
pub fn run(
    task: &str,
    argv: &[String],
    cwd: &Path,
    env: &HashMap<String, String>,
    io: Io,
    reporter: &Arc<Reporter>,
) -> Result<Exit, SpawnError> {
    let (program, args) = argv.split_first().ok_or(SpawnError::Interrupted)?;
    if cancelled() {
        return Err(SpawnError::Interrupted);
    }
    let mut expr = duct::cmd(program, args).dir(cwd).full_env(env).unchecked();
    let mut readers = Vec::new();
    let last_err: Arc<Mutex<Option<String>>> = Arc::default();
    if io == Io::Piped {
        let (out_r, out_w) = os_pipe::pipe().map_err(|e| SpawnError::Io(program.clone(), e))?;
        let (err_r, err_w) = os_pipe::pipe().map_err(|e| SpawnError::Io(program.clone(), e))?;
        expr = expr
            .stdin_null()
            .stdout_file(out_w)
            .stderr_file(err_w)
            .before_spawn(|c| {
                own_group(c);
                Ok(())
            });
        for (pipe, stream) in [(out_r, Stream::Out), (err_r, Stream::Err)] {
            let reporter = reporter.clone();
            let task = task.to_string();
            let last = (stream == Stream::Err).then(|| last_err.clone());
            readers.push(std::thread::spawn(move || {
                forward(pipe, &task, stream, &reporter, last)
            }));
        }
    }
    let started = expr.start();
    // Dropping the expression closes our copies of the pipes' write ends,
    // so the readers see EOF when the child exits.
    drop(expr);
    let handle = match started {
        Ok(h) => h,
        Err(e) => {
            for r in readers {
                let _ = r.join();
            }
            return Err(if e.kind() == std::io::ErrorKind::NotFound && !program.contains('/') {
                SpawnError::NotFound(program.clone())
            } else {
                SpawnError::Io(program.clone(), e)
            });
        }
    };
    let pids = handle.pids();
    let group = pids.first().map(|p| *p as i32);
    if io == Io::Piped
        && let Some(g) = group
    {
        register(g);
        // A Ctrl-C that arrived between the check above and registering.
        if cancelled() {
            signal_group(g, Signal::Term);
        }
    } else {
        FOREGROUND.store(true, Ordering::SeqCst);
    }
    let status = handle.wait().map(|o| o.status);
    if io == Io::Piped {
        // What the child left in its group (a background job, which ignores
        // SIGINT) may still run and hold the pipes open: after Ctrl-C none
        // of it outlives the run.
        if cancelled()
            && let Some(g) = group
        {
            signal_group(g, Signal::Kill);
        }
    } else {
        FOREGROUND.store(false, Ordering::SeqCst);
    }
    for r in readers {
        let _ = r.join();
    }
    // Registered until the pipes close, so a Ctrl-C meanwhile reaches the
    // group's leftovers too.
    if io == Io::Piped
        && let Some(g) = group
    {
        unregister(g);
    }
    let status = status.map_err(|e| SpawnError::Io(program.clone(), e))?;
    let last_err = last_err.lock().unwrap_or_else(|e| e.into_inner()).take();
    Ok(Exit {
        code: exit_code(&status),
        last_err,
    })
}

/// Runs a command quietly and returns (exit code, stdout, stderr) — for
/// checks such as `docker image inspect`.
pub fn capture(
    argv: &[String],
    cwd: &Path,
    env: &HashMap<String, String>,
) -> Result<(i32, String, String), SpawnError> {
    let (program, args) = argv.split_first().ok_or(SpawnError::Interrupted)?;
    let out = duct::cmd(program, args)
        .dir(cwd)
        .full_env(env)
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SpawnError::NotFound(program.clone())
            } else {
                SpawnError::Io(program.clone(), e)
            }
        })?;
    Ok((
        exit_code(&out.status),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn forward(
    pipe: os_pipe::PipeReader,
    task: &str,
    stream: Stream,
    reporter: &Reporter,
    last: Option<Arc<Mutex<Option<String>>>>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                reporter.task_output(task, stream, &line);
                if let Some(last) = &last {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim();
                    if !text.is_empty() {
                        *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(reporter.mask(text));
                    }
                }
            }
        }
    }
}

fn exit_code(status: &std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128 + sig;
        }
    }
    status.code().unwrap_or(1)
}

#[cfg(unix)]
fn own_group(c: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    c.process_group(0);
}

#[cfg(not(unix))]
fn own_group(_c: &mut std::process::Command) {}

fn register(group: i32) {
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_default()
        .insert(group);
}

fn unregister(group: i32) {
    if let Some(g) = GROUPS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        g.remove(&group);
    }
}

/// Which signal to send to children's process groups.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    Int,
    Term,
    Kill,
}

/// Sends `sig` to every running child's process group. Returns how many.
pub fn signal_all(sig: Signal) -> usize {
    let groups: Vec<i32> = GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|g| g.iter().copied().collect())
        .unwrap_or_default();
    for g in &groups {
        signal_group(*g, sig);
    }
    groups.len()
}

#[cfg(unix)]
fn signal_group(group: i32, sig: Signal) {
    use nix::sys::signal::{Signal as S, killpg};
    let s = match sig {
        Signal::Int => S::SIGINT,
        Signal::Term => S::SIGTERM,
        Signal::Kill => S::SIGKILL,
    };
    let _ = killpg(nix::unistd::Pid::from_raw(group), s);
}

#[cfg(not(unix))]
fn signal_group(_group: i32, _sig: Signal) {}

/// Whether any child group is still running.
pub fn any_running() -> bool {
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|g| !g.is_empty())
}

/// Flags a process-wide interrupt.
pub fn cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Clears the interrupt flag before the next run (`--watch`).
pub fn reset() {
    CANCELLED.store(false, Ordering::SeqCst);
}

/// Commands to run if the run is interrupted (e.g. `docker rm -f NAME`
/// for a container that is running now), keyed by an id.
static CLEANUPS: Mutex<Vec<(u64, Vec<String>)>> = Mutex::new(Vec::new());

/// Registers `argv` to run on interrupt; returns the id to remove it with.
pub fn on_interrupt(argv: Vec<String>) -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::SeqCst);
    CLEANUPS.lock().unwrap_or_else(|e| e.into_inner()).push((id, argv));
    id
}

pub fn forget_interrupt(id: u64) {
    CLEANUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(i, _)| *i != id);
}

/// Runs every registered cleanup command (quietly, best effort).
pub fn run_cleanups() {
    let all: Vec<Vec<String>> = CLEANUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(_, a)| a.clone())
        .collect();
    for argv in all {
        if let Some((program, args)) = argv.split_first() {
            let _ = std::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
