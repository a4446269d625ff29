//! Running `docker`/`kubectl` for the doctor: found on PATH, with the
//! tasks' environment and a time limit, output captured.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one `docker`/`kubectl` call may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// What a command said.
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The first line of stderr (else stdout): the message worth showing.
    pub fn message(&self) -> String {
        let first = |s: &str| s.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned);
        first(&self.stderr)
            .or_else(|| first(&self.stdout))
            .unwrap_or_else(|| "no output".into())
    }
}

/// The first `program` on `path`.
pub fn which(program: &str, path: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// Runs a command to completion or until [`COMMAND_TIMEOUT`].
pub fn run(argv: &[&str], env: &HashMap<String, String>, cwd: &Path) -> Output {
    let failed = |stderr: String| Output {
        ok: false,
        stdout: String::new(),
        stderr,
    };
    let Some((program, args)) = argv.split_first() else {
        return failed("no command".into());
    };
    let child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot run `{program}`: {e}")),
    };
    // Read both pipes on threads so a chatty command cannot block on a full pipe.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    match status {
        Some(s) => Output {
            ok: s.success(),
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        },
        // Not joined: a grandchild may still hold the pipes open.
        None => failed(format!(
            "`{}` did not answer within {}s",
            argv.join(" "),
            COMMAND_TIMEOUT.as_secs()
        )),
    }
}
