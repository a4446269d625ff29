//! What mtr prints while it runs: task output (whole lines, prefixed when
//! tasks overlap, secrets masked), one status line per task, a summary.
//!
//! Task output goes to mtr's stdout/stderr as the task wrote it; mtr's own
//! lines go to stderr, so stdout holds only the tasks' data.
//!
//! Under GitHub Actions (`GITHUB_ACTIONS=true`) tasks run in parallel but
//! each one's output must stay inside its own `::group::`: a task's lines
//! are held until it finishes, then printed as one group on stdout.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// Which stream a task wrote a line to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// How much mtr says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Serialises all output so lines from parallel tasks never tear.
#[derive(Debug)]
pub struct Reporter {
    pub color: bool,
    pub verbosity: Verbosity,
    /// Width of the task-name column when output lines are prefixed.
    pub prefix: Option<usize>,
    pub github: bool,
    masks: Mutex<Vec<String>>,
    /// GitHub Actions: each running task's output, until it finishes.
    held: Mutex<HashMap<String, Vec<u8>>>,
    /// Output kept for the remote cache, per task (see [`Reporter::start_capture`]).
    captures: Mutex<HashMap<String, Vec<u8>>>,
    /// Whether a live status line may be drawn (stderr is a terminal).
    pub live: bool,
    /// The live status line shown now, kept under every other line.
    live_line: Mutex<Option<String>>,
    /// Whether stdout is a terminal (see [`Reporter::task_output`]).
    stdout_terminal: bool,
    lock: Mutex<()>,
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

impl Reporter {
    pub fn new(color: bool, verbosity: Verbosity) -> Reporter {
        Reporter {
            color,
            verbosity,
            prefix: None,
            github: crate::github::active(),
            masks: Mutex::new(Vec::new()),
            held: Mutex::new(HashMap::new()),
            captures: Mutex::new(HashMap::new()),
            live: false,
            live_line: Mutex::new(None),
            stdout_terminal: std::io::stdout().is_terminal(),
            lock: Mutex::new(()),
        }
    }

    /// Writes whole lines to a stream, keeping the live status line (if
    /// any) below them: cleared first, drawn again after.
    fn emit(&self, stream: Stream, bytes: &[u8]) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let live = self.live_line.lock().unwrap_or_else(|e| e.into_inner());
        if live.is_some() {
            let _ = std::io::stderr().write_all(b"\r\x1b[2K");
        }
        let _ = match stream {
            Stream::Out => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|_| out.flush())
            }
            Stream::Err => std::io::stderr().lock().write_all(bytes),
        };
        if let Some(text) = live.as_ref() {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }

    /// Shows (or with `None` clears) the live status line on the terminal.
    pub fn set_live(&self, text: Option<String>) {
        if !self.live {
            return;
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut live = self.live_line.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        if live.is_some() {
            let _ = err.write_all(b"\r\x1b[2K");
        }
        if let Some(t) = &text {
            let _ = err.write_all(self.paint(DIM, t).as_bytes());
        }
        let _ = err.flush();
        *live = text.map(|t| self.paint(DIM, &t));
    }

    /// Values to print as `***` from now on. Output is masked line by
    /// line, so each line of a multi-line secret (a key file) is masked
    /// on its own too.
    pub fn set_masks(&self, secrets: Vec<String>) {
        let mut masks: Vec<String> = Vec::new();
        for s in secrets {
            for line in s.lines().map(str::trim).filter(|l| !l.is_empty() && *l != s) {
                masks.push(line.to_string());
            }
            masks.push(s);
        }
        let mut seen = std::collections::HashSet::new();
        masks.retain(|m| !m.is_empty() && seen.insert(m.clone()));
        // Longest first, so a secret that contains another is masked whole.
        masks.sort_by_key(|s| std::cmp::Reverse(s.len()));
        *self.masks.lock().unwrap_or_else(|e| e.into_inner()) = masks;
    }

    /// Also masks `secrets` from now on (values known only once a task's
    /// environment is rendered).
    pub fn add_masks(&self, secrets: impl IntoIterator<Item = String>) {
        let mut all = self.masks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let before = all.len();
        all.extend(secrets.into_iter().filter(|s| !s.is_empty()));
        if all.len() > before {
            self.set_masks(all);
        }
    }

    /// [`mask`](Self::mask) for bytes that need not be UTF-8 (task output).
    pub fn mask_bytes<'a>(&self, bytes: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let masks = self.masks.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::borrow::Cow::Borrowed(bytes);
        for m in masks.iter().map(|m| m.as_bytes()) {
            if !out.windows(m.len()).any(|w| w == m) {
                continue;
            }
            let mut masked = Vec::with_capacity(out.len());
            let mut rest: &[u8] = &out;
            while let Some(at) = rest.windows(m.len()).position(|w| w == m) {
                masked.extend_from_slice(&rest[..at]);
                masked.extend_from_slice(b"***");
                rest = &rest[at + m.len()..];
            }
            masked.extend_from_slice(rest);
            out = std::borrow::Cow::Owned(masked);
        }
        out
    }

    /// Replaces every secret value in `text` by `***`.
    pub fn mask(&self, text: &str) -> String {
        let masks = self.masks.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for m in masks.iter() {
            if out.contains(m.as_str()) {
                out = out.replace(m.as_str(), "***");
            }
        }
        out
    }

    fn paint(&self, color: &str, text: &str) -> String {
        if self.color {
            format!("{color}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// One line a task wrote (with its newline, if any).
    ///
    /// The bytes pass through as they are (binary output included), only
    /// secrets masked. A line without its newline (the last one, or a piece
    /// of a very long one) gets one wherever something else could follow it
    /// on the same line: when lines are prefixed, on stderr (mtr's own lines
    /// follow), on a terminal. So `mtr TASK > file` holds exactly what the
    /// task wrote to stdout.
    pub fn task_output(&self, task: &str, stream: Stream, line: &[u8]) {
        let line = self.mask_bytes(line);
        self.capture(task, stream, &line);
        if self.github {
            self.hold(task, &line);
            return;
        }
        let mut buf = Vec::with_capacity(line.len() + 32);
        if let Some(width) = self.prefix {
            let name = format!("{task:<width$} | ");
            buf.extend_from_slice(self.paint(CYAN, &name).as_bytes());
        }
        buf.extend_from_slice(&line);
        let shared = self.prefix.is_some() || stream == Stream::Err || self.stdout_terminal;
        if !buf.ends_with(b"\n") && shared {
            buf.push(b'\n');
        }
        self.emit(stream, &buf);
    }

    /// Starts keeping `task`'s output (masked) so the remote cache can
    /// replay it where the task is restored instead of run.
    pub fn start_capture(&self, task: &str) {
        let mut captures = self.captures.lock().unwrap_or_else(|e| e.into_inner());
        captures.insert(task.to_string(), Vec::new());
    }

    /// The output kept since [`start_capture`](Self::start_capture): one
    /// record per line, `o ` (stdout) or `e ` (stderr), the line, `\n`.
    pub fn take_capture(&self, task: &str) -> Vec<u8> {
        let mut captures = self.captures.lock().unwrap_or_else(|e| e.into_inner());
        captures.remove(task).unwrap_or_default()
    }

    fn capture(&self, task: &str, stream: Stream, line: &[u8]) {
        let mut captures = self.captures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(buf) = captures.get_mut(task) {
            buf.extend_from_slice(if stream == Stream::Out { b"o " } else { b"e " });
            buf.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
            buf.push(b'\n');
        }
    }

    /// Prints a log kept by [`take_capture`](Self::take_capture) as if
    /// `task` wrote it now (a line in no known format goes to stdout).
    pub fn replay(&self, task: &str, log: &[u8]) {
        for record in log.split_inclusive(|b| *b == b'\n') {
            let (stream, line) = match record {
                [b'e', b' ', rest @ ..] => (Stream::Err, rest),
                [b'o', b' ', rest @ ..] => (Stream::Out, rest),
                other => (Stream::Out, other),
            };
            self.task_output(task, stream, line);
        }
    }

    /// Keeps a line of `task`'s output for its group (GitHub Actions).
    fn hold(&self, task: &str, line: &[u8]) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let buf = held.entry(task.to_string()).or_default();
        buf.extend_from_slice(line);
        if !buf.ends_with(b"\n") {
            buf.push(b'\n');
        }
    }

    /// A task finished: under GitHub Actions, print its held output as one
    /// `::group::` (nothing when it printed nothing).
    pub fn finish_task(&self, task: &str) {
        let Some(buf) = self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(task) else {
            return;
        };
        let mut group = format!("::group::{task}\n").into_bytes();
        group.extend_from_slice(&buf);
        group.extend_from_slice(b"::endgroup::\n");
        self.emit(Stream::Out, &group);
    }

    /// A line of mtr's own on stderr.
    pub fn line(&self, text: &str) {
        let mut text = self.mask(text);
        text.push('\n');
        self.emit(Stream::Err, text.as_bytes());
    }

    /// The command a task is about to run.
    pub fn command(&self, task: &str, text: &str) {
        if self.verbosity >= Verbosity::Normal {
            let line = self.paint(BOLD, &format!("[{task}] {text}"));
            if self.github {
                self.hold(task, self.mask(&line).as_bytes());
            } else {
                self.line(&line);
            }
        }
    }

    pub fn explain(&self, task: &str, text: &str) {
        self.line(&self.paint(YELLOW, &format!("[{task}] {text}")));
    }

    pub fn warn(&self, text: &str) {
        if self.github {
            self.line(&crate::github::command("warning", None, text));
        }
        self.line(&format!("{} {text}", self.paint(YELLOW, "warning:")));
    }

    pub fn error(&self, text: &str) {
        self.line(&format!("{} {text}", self.paint(RED, "error:")));
    }

    pub fn ran(&self, task: &str, took: Duration, note: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.line(&format!(
                "{} {task}{note} {}",
                self.paint(GREEN, "✓"),
                self.paint(DIM, &format!("({})", duration(took)))
            ));
        }
    }

    pub fn up_to_date(&self, task: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.line(&self.paint(DIM, &format!("· {task} up to date")));
        }
    }

    pub fn failed(&self, task: &str, took: Duration, why: &str) {
        if self.github {
            self.line(&crate::github::command(
                "error",
                Some(&format!("task {task} failed")),
                why,
            ));
        }
        self.line(&format!(
            "{} {task} failed: {why} {}",
            self.paint(RED, "✗"),
            self.paint(DIM, &format!("({})", duration(took)))
        ));
    }

    pub fn skipped(&self, task: &str, why: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.line(&self.paint(DIM, &format!("- {task} skipped: {why}")));
        }
    }

    /// The final one-line summary.
    pub fn summary(&self, counts: &Counts, took: Duration) {
        if self.verbosity == Verbosity::Quiet && counts.failed.is_empty() {
            return;
        }
        self.line(&format!("mtr: {}", summary_parts(counts, took, |t| self.paint(RED, t))));
    }
}

/// The summary line without colour, e.g. `2 ran, 1 up to date in 1.52s`.
pub fn summary_text(counts: &Counts, took: Duration) -> String {
    summary_parts(counts, took, str::to_string)
}

fn summary_parts(counts: &Counts, took: Duration, red: impl Fn(&str) -> String) -> String {
    let mut parts = Vec::new();
    if !counts.failed.is_empty() {
        let names = counts
            .failed
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(red(&format!("{} failed ({names})", counts.failed.len())));
    }
    if counts.ran > 0 {
        parts.push(format!("{} ran", counts.ran));
    }
    if counts.up_to_date > 0 {
        parts.push(format!("{} up to date", counts.up_to_date));
    }
    if counts.restored > 0 {
        parts.push(format!("{} restored from cache", counts.restored));
    }
    if counts.skipped > 0 {
        parts.push(format!("{} not run", counts.skipped));
    }
    if parts.is_empty() {
        parts.push("nothing to do".into());
    }
    format!("{} in {}", parts.join(", "), duration(took))
}

/// Tallies for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub ran: usize,
    pub up_to_date: usize,
    pub restored: usize,
    pub skipped: usize,
    pub failed: Vec<String>,
}

/// A duration as people read it: `12ms`, `1.52s`, `2m03s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
