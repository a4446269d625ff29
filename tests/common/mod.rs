//! The test harness shared by integration test binaries: a temporary
//! project built file by file, the real `mtr` binary run in it (again and
//! again, to check skips), and the filters that make its output stable for
//! snapshots.
//!
//! ```ignore
//! let p = Project::new().file("montage.toml", "...").file("src/a.txt", "a");
//! p.run(&["build"]).success();
//! assert!(p.run(&["build"]).success().up_to_date("build"));
//! ```

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code, reason = "shared by several test binaries, each using a part")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The `mtr` binary under test.
pub const MTR: &str = env!("CARGO_BIN_EXE_mtr");

/// Variables of the test's own environment that would change what mtr
/// prints (the tests may run under GitHub Actions).
const SCRUBBED_ENV: &[&str] = &["GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"];

/// A project in a temporary directory, removed when dropped.
pub struct Project {
    /// Held for its `Drop`, which removes the directory.
    dir: tempfile::TempDir,
    /// The canonical root, as mtr prints it.
    root: PathBuf,
}

impl Default for Project {
    fn default() -> Self {
        Project::new()
    }
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("mtr-test-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let root = dir
            .path()
            .canonicalize()
            .expect("cannot canonicalize the temporary directory");
        Project { dir, root }
    }

    /// Adds a file (parent directories are created).
    pub fn file(self, rel: &str, contents: &str) -> Project {
        self.write(rel, contents);
        self
    }

    /// Adds an executable script.
    #[cfg(unix)]
    pub fn script(self, rel: &str, contents: &str) -> Project {
        self.write(rel, contents);
        self.chmod(rel, 0o755);
        self
    }

    /// Adds a directory.
    pub fn dir(self, rel: &str) -> Project {
        std::fs::create_dir_all(self.path(rel)).unwrap();
        self
    }

    /// The project root (canonical, as mtr prints it).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The files in `.mtr/` but `delta`, which a commit may or may not
    /// have left (it holds small changes to `state`), and retired journals
    /// (`journal-*.done`: a commit's last step renames its journal so, and
    /// the next run that begins a task removes them).
    pub fn mtr_dir_entries_but_delta(&self) -> Vec<String> {
        let mut names = self.mtr_dir_entries();
        names.retain(|n| n != "delta" && !retired_journal(n));
        names
    }

    /// The names of the entries in `.mtr/`, sorted.
    pub fn mtr_dir_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(".mtr"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Writes (or overwrites) a file.
    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write `{}`: {e}", path.display()));
    }

    pub fn read(&self, rel: &str) -> String {
        let path = self.path(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    pub fn remove(&self, rel: &str) {
        let path = self.path(rel);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap_or_else(|e| panic!("cannot remove `{}`: {e}", path.display()));
        }
    }

    /// Makes `rel` a symlink to `target` (replacing what is there).
    #[cfg(unix)]
    pub fn symlink(&self, target: &str, rel: &str) {
        let path = self.path(rel);
        let _ = std::fs::remove_file(&path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::os::unix::fs::symlink(target, &path).unwrap();
    }

    #[cfg(unix)]
    pub fn chmod(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Hands the whole project to `uid:gid` (symlinks themselves, not
    /// their targets).
    #[cfg(unix)]
    pub fn chown_all(&self, uid: u32, gid: u32) {
        self.chown_all_of(".", uid, gid);
    }

    /// Hands `rel` and everything under it to `uid:gid`.
    #[cfg(unix)]
    pub fn chown_all_of(&self, rel: &str, uid: u32, gid: u32) {
        fn walk(path: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
            let m = path.symlink_metadata().unwrap();
            if m.is_dir() {
                for e in std::fs::read_dir(path).unwrap() {
                    walk(&e.unwrap().path(), uid, gid);
                }
            }
        }
        walk(&self.path(rel), uid, gid);
    }

    pub fn mtime(&self, rel: &str) -> SystemTime {
        self.path(rel).metadata().unwrap().modified().unwrap()
    }

    /// Sets a file's modification time (as `touch -d` would).
    pub fn set_mtime(&self, rel: &str, time: SystemTime) {
        let file = std::fs::File::options().write(true).open(self.path(rel)).unwrap();
        file.set_modified(time).unwrap();
    }

    /// `mtr ARGS` in the root, ready to adjust before running.
    pub fn mtr(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(MTR);
        cmd.args(args).current_dir(&self.root).env("NO_COLOR", "1");
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        Run {
            cmd,
            root: self.root.clone(),
        }
    }

    /// Runs `mtr ARGS` in the root and waits for it.
    pub fn run(&self, args: &[&str]) -> Output {
        self.mtr(args).output()
    }

    /// Waits (at most `timeout`) until `rel` exists and is not empty.
    pub fn wait_for_file(&self, rel: &str, timeout: Duration) -> bool {
        wait_until(timeout, || std::fs::metadata(self.path(rel)).is_ok_and(|m| m.len() > 0))
    }
}

/// A journal its run's commit retired (`journal-PID-N.done`), which the
/// next run that begins a task removes: no longer a live journal.
pub fn retired_journal(name: &str) -> bool {
    name.starts_with("journal-") && name.ends_with(".done")
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One `mtr` invocation, before it runs.
pub struct Run {
    cmd: Command,
    root: PathBuf,
}

impl Run {
    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Run {
        self.cmd.env_remove(key);
        self
    }

    /// Runs from `dir` (relative to the project root, or absolute).
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Run {
        self.cmd.current_dir(self.root.join(dir));
        self
    }

    pub fn output(mut self) -> Output {
        let out = self
            .cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{MTR}`: {e}"));
        Output::new(out, self.root)
    }

    /// Runs mtr as another user (tests that need permissions to bite
    /// even when they run as root).
    #[cfg(unix)]
    pub fn user(mut self, uid: u32, gid: u32) -> Run {
        use std::os::unix::process::CommandExt;
        self.cmd.uid(uid).gid(gid);
        self
    }

    /// Starts mtr without waiting (its output is captured).
    pub fn spawn(mut self) -> Child {
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{MTR}`: {e}"))
    }
}

/// What an `mtr` invocation printed and how it exited.
#[derive(Debug)]
pub struct Output {
    /// The exit status (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    root: PathBuf,
}

impl Output {
    pub fn new(out: std::process::Output, root: PathBuf) -> Output {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            root,
        }
    }

    /// Asserts exit status 0.
    #[track_caller]
    pub fn success(&self) -> &Output {
        self.code(0)
    }

    /// Asserts the exit status.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Output {
        assert_eq!(self.code, code, "unexpected exit status\n{self}");
        self
    }

    /// Whether mtr reported that `task` ran (`✓ task (...)`).
    pub fn ran(&self, task: &str) -> bool {
        let prefix = format!("✓ {task} (");
        self.stderr.lines().any(|l| l.starts_with(&prefix))
    }

    /// Whether mtr reported `task` as up to date.
    pub fn up_to_date(&self, task: &str) -> bool {
        let line = format!("· {task} up to date");
        self.stderr.lines().any(|l| l == line)
    }

    /// Whether mtr reported `task` as failed.
    pub fn failed(&self, task: &str) -> bool {
        let prefix = format!("✗ {task} failed");
        self.stderr.lines().any(|l| l.starts_with(&prefix))
    }

    /// Asserts that `task` ran.
    #[track_caller]
    pub fn assert_ran(&self, task: &str) -> &Output {
        assert!(self.ran(task), "expected `{task}` to run\n{self}");
        self
    }

    /// Asserts that `task` was skipped as up to date.
    #[track_caller]
    pub fn assert_up_to_date(&self, task: &str) -> &Output {
        assert!(self.up_to_date(task), "expected `{task}` to be up to date\n{self}");
        self
    }

    /// Asserts that stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Output {
        assert!(
            self.stderr.contains(text),
            "expected stderr to contain {text:?}\n{self}"
        );
        self
    }

    /// Exit status, stdout and stderr, with the temporary root shown as
    /// `[ROOT]`, for a snapshot (durations are filtered by [`filters`]).
    pub fn snapshot(&self) -> String {
        let mut out = format!("exit: {}\n", self.code);
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !text.is_empty() {
                out.push_str(&format!("--- {name}\n{}", redact(text, &self.root)));
                if !text.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- exit status: {}\n--- stdout\n{}--- stderr\n{}---",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Replaces the project root in `text` by `[ROOT]`. mtr prints the root
/// canonical (symlinks resolved), as the current directory always is.
pub fn redact(text: &str, root: &Path) -> String {
    text.replace(&root.display().to_string(), "[ROOT]")
}

/// insta filters for what varies between runs: durations.
pub fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        // `(12ms)`, `(1.52s)`, `(2m03s)` after a status line, `in 1.52s` in the summary.
        (r"\b\d+(\.\d+)?(ms|s)\b", "[TIME]"),
        (r"\b\d+m\d{2}s\b", "[TIME]"),
    ]
}

/// Snapshots an [`Output`] (exit status, stdout, stderr) with the temporary
/// root and durations filtered. (`#[macro_use] mod common;` brings it in.)
macro_rules! assert_output {
    ($name:expr, $output:expr) => {
        insta::with_settings!({ filters => $crate::common::filters() }, {
            insta::assert_snapshot!($name, $output.snapshot());
        })
    };
}

/// Whether a process is gone (or a zombie nobody has reaped yet).
#[cfg(target_os = "linux")]
pub fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
pub fn process_gone(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
}

/// Waits for a spawned mtr, killing it (and failing) after `timeout`.
pub fn wait_with_timeout(child: Child, root: &Path, timeout: Duration) -> Output {
    wait_for_exit(child, root, timeout).unwrap_or_else(|out| panic!("mtr did not exit within {timeout:?}\n{out}"))
}

/// Waits for a spawned mtr; after `timeout` kills it and returns `Err`
/// with what it printed, so the caller can clean up before failing.
pub fn wait_for_exit(mut child: Child, root: &Path, timeout: Duration) -> Result<Output, Output> {
    let exited = wait_until(timeout, || child.try_wait().ok().flatten().is_some());
    if !exited {
        let _ = child.kill();
    }
    let out = Output::new(child.wait_with_output().unwrap(), root.to_path_buf());
    if exited { Ok(out) } else { Err(out) }
}
