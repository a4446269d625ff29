//! Child processes: each in its own process group, output forwarded line
//! by line, every live group known so Ctrl-C can stop all of them.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use crate::report::{Reporter, Stream};

/// Set once the run is being interrupted: no new process starts.
pub static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Process groups of the children running now.
static GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// The pid of the task that owns the terminal now (0: none). It is in
/// mtr's process group, so a Ctrl-C at the terminal reaches it directly;
/// other signals (SIGTERM from CI or `docker stop`) are passed on to it.
static FOREGROUND: AtomicI32 = AtomicI32::new(0);

/// Whether a task owns the terminal now.
pub fn foreground() -> bool {
    FOREGROUND.load(Ordering::SeqCst) != 0
}

pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// Why a process could not run to an exit status.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("`{0}` was not found on PATH")]
    NotFound(String),
    #[error("cannot run `{0}`: permission denied (is it executable?)")]
    NotExecutable(String),
    #[error("cannot run `{0}`: {1}")]
    Io(String, std::io::Error),
    #[error("interrupted")]
    Interrupted,
}

impl SpawnError {
    /// Why `program` did not start, from the error of its spawn.
    fn of_spawn(program: &str, e: std::io::Error) -> SpawnError {
        match e.kind() {
            std::io::ErrorKind::NotFound if !program.contains('/') => SpawnError::NotFound(program.into()),
            std::io::ErrorKind::PermissionDenied => SpawnError::NotExecutable(program.into()),
            _ => SpawnError::Io(program.into(), e),
        }
    }

    /// The exit status to report, as a shell does: 127 for a program
    /// that is not installed, 126 for one that cannot be executed, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            SpawnError::NotFound(_) => 127,
            SpawnError::NotExecutable(_) => 126,
            _ => 1,
        }
    }
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
    let path = find_program(program, env).ok_or_else(|| SpawnError::NotFound(program.clone()))?;
    // std's `Command` straight (posix_spawn: `process_group` keeps it on
    // the vfork path), its environment exactly `env`.
    let mut cmd = std::process::Command::new(exe_for_dir(path).map_err(|e| SpawnError::Io(program.clone(), e))?);
    cmd.args(args).env_clear().envs(env);
    crate::cwd::set_for_child(&mut cmd, cwd);
    if io == Io::Piped {
        use std::process::Stdio;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        own_group(&mut cmd);
    }
    // Only the child holds the pipes' write ends, so reading sees EOF when
    // the child (and what it left running) exits.
    let mut child = cmd.spawn().map_err(|e| SpawnError::of_spawn(program, e))?;
    drop(cmd);
    let mut last_err = None;
    let status = match (child.stdout.take(), child.stderr.take()) {
        (Some(out), Some(err)) => {
            let group = child.id() as i32;
            // Registered until the pipes close, so a Ctrl-C reaches what the
            // child left in its group (a background job) too.
            register(group);
            // A Ctrl-C that arrived between the check above and registering.
            if cancelled() {
                signal_group(group, Signal::Term);
            }
            let out = std::fs::File::from(std::os::fd::OwnedFd::from(out));
            let err = std::fs::File::from(std::os::fd::OwnedFd::from(err));
            last_err = pump(out, err, task, reporter);
            let status = child.wait();
            unregister(group);
            status
        }
        _ => {
            FOREGROUND.store(child.id() as i32, Ordering::SeqCst);
            // A SIGTERM that arrived before it was known.
            if cancelled() {
                signal_foreground(Signal::Term);
            }
            let status = child.wait();
            FOREGROUND.store(0, Ordering::SeqCst);
            status
        }
    };
    let status = status.map_err(|e| SpawnError::Io(program.clone(), e))?;
    Ok(Exit {
        code: exit_code(&status),
        last_err,
    })
}

/// The executable `program` names: itself when it has a `/`, else the
/// first match on the child's PATH. Looked up once per run and cached, so
/// starting a process costs one `execve`, not one per PATH entry.
fn find_program(program: &str, env: &HashMap<String, String>) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        return Some(program.into());
    }
    static FOUND: Mutex<Option<HashMap<(String, String), std::path::PathBuf>>> = Mutex::new(None);
    let path_var = env.get("PATH").cloned().unwrap_or_default();
    let key = (path_var, program.to_string());
    if let Some(p) = FOUND
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&key))
    {
        return Some(p.clone());
    }
    let found = std::env::split_paths(&key.0)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))?;
    FOUND
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_default()
        .insert(key, found.clone());
    Some(found)
}

/// A relative path with a `/` names a file relative to mtr's working
/// directory, not the child's (`dir`): made absolute before the child
/// changes directory. A bare name is left alone.
fn exe_for_dir(path: std::path::PathBuf) -> std::io::Result<std::path::PathBuf> {
    if path.is_relative() && path.components().count() > 1 {
        path.canonicalize()
    } else {
        Ok(path)
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Runs a command quietly and returns (exit code, stdout, stderr) — for
/// checks such as `docker image inspect`.
pub fn capture(
    argv: &[String],
    cwd: &Path,
    env: &HashMap<String, String>,
) -> Result<(i32, String, String), SpawnError> {
    let (program, args) = argv.split_first().ok_or(SpawnError::Interrupted)?;
    let mut cmd = duct::cmd(program, args);
    if !crate::cwd::is_current(cwd) {
        // As in [`crate::cwd::set_for_child`].
        cmd = cmd.dir(cwd);
    }
    let out = cmd
        .full_env(env)
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| SpawnError::of_spawn(program, e))?;
    Ok((
        exit_code(&out.status),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A line is passed on whole up to this length (see [`pump`]).
pub const MAX_LINE: usize = 16 << 20;

/// Forwards both pipes of a child line by line until both close, in this
/// thread (no reader threads to start per process); returns the last
/// non-empty stderr line.
fn pump(out: std::fs::File, err: std::fs::File, task: &str, reporter: &Reporter) -> Option<String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::io::Read;
    use std::os::fd::AsFd;

    let mut streams = [
        (out, Stream::Out, Vec::new(), true),
        (err, Stream::Err, Vec::new(), true),
    ];
    let mut last_err = None;
    let mut chunk = vec![0u8; 64 * 1024];
    while streams.iter().any(|s| s.3) {
        let mut fds: Vec<PollFd> = streams
            .iter()
            .filter(|s| s.3)
            .map(|s| PollFd::new(s.0.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut k = 0;
        for (pipe, stream, buf, open) in streams.iter_mut() {
            if !*open {
                continue;
            }
            let is_ready = ready[k];
            k += 1;
            if !is_ready {
                continue;
            }
            let n = match pipe.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                *open = false;
                if !buf.is_empty() {
                    emit(reporter, task, *stream, buf, &mut last_err);
                    buf.clear();
                }
                continue;
            }
            let start = buf.len();
            buf.extend_from_slice(&chunk[..n]);
            // Whole lines only: parallel tasks' lines never tear. Only the
            // new bytes are searched, so a long line is not scanned again
            // on every read.
            if let Some(end) = buf[start..].iter().rposition(|b| *b == b'\n') {
                let rest = buf.split_off(start + end + 1);
                for line in buf.split_inclusive(|b| *b == b'\n') {
                    emit(reporter, task, *stream, line, &mut last_err);
                }
                *buf = rest;
            } else if buf.len() >= MAX_LINE {
                // A longer line (or binary output without newlines) goes
                // on in pieces: memory stays bounded whatever a task writes.
                emit(reporter, task, *stream, buf, &mut last_err);
                buf.clear();
            }
        }
    }
    last_err
}

fn emit(reporter: &Reporter, task: &str, stream: Stream, line: &[u8], last_err: &mut Option<String>) {
    reporter.task_output(task, stream, line);
    if stream == Stream::Err {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if !text.is_empty() {
            *last_err = Some(reporter.mask(text));
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
    signal_foreground(sig);
    groups.len()
}

/// Sends `sig` to the task that owns the terminal, if one does.
fn signal_foreground(sig: Signal) {
    #[cfg(unix)]
    if let Some(pid) = std::num::NonZeroI32::new(FOREGROUND.load(Ordering::SeqCst)) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid.get()), sig.to_nix());
    }
    #[cfg(not(unix))]
    let _ = sig;
}

#[cfg(unix)]
fn signal_group(group: i32, sig: Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), sig.to_nix());
}

#[cfg(unix)]
impl Signal {
    fn to_nix(self) -> nix::sys::signal::Signal {
        use nix::sys::signal::Signal as S;
        match self {
            Signal::Int => S::SIGINT,
            Signal::Term => S::SIGTERM,
            Signal::Kill => S::SIGKILL,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_program_path_is_taken_from_mtr_s_directory() {
        assert_eq!(exe_for_dir("sh".into()).unwrap(), Path::new("sh"));
        assert_eq!(exe_for_dir("/bin/sh".into()).unwrap(), Path::new("/bin/sh"));
        let here = std::env::current_dir().unwrap();
        assert_eq!(exe_for_dir("./Cargo.toml".into()).unwrap(), here.join("Cargo.toml"));
    }

    /// The process group is read from `/proc` (field 5 of `stat`), so no
    /// `ps` is needed on the machine.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_gets_exactly_the_environment_given_its_own_group_and_both_streams() {
        let reporter = Arc::new(Reporter::new(false, crate::report::Verbosity::Quiet));
        reporter.start_capture("t");
        let env = HashMap::from([
            ("FOO".to_string(), "bar".to_string()),
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let argv: Vec<String> = [
            "sh",
            "-c",
            "echo \"$FOO-${HOME:-none}-$(basename \"$PWD\")\"; [ \"$(cut -d ' ' -f 5 /proc/$$/stat)\" = $$ ] && echo own group; echo oops >&2; exit 3",
        ]
        .map(String::from)
        .to_vec();
        let exit = run("t", &argv, dir.path(), &env, Io::Piped, &reporter).unwrap();
        assert_eq!(exit.code, 3);
        assert_eq!(exit.last_err.as_deref(), Some("oops"));
        let name = dir.path().file_name().unwrap().to_string_lossy().into_owned();
        let log = String::from_utf8(reporter.take_capture("t")).unwrap();
        assert_eq!(log, format!("o bar-none-{name}\no own group\ne oops\n"));
    }
}
