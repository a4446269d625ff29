//! `--watch`: run the plan, then run it again whenever a file that one of
//! its tasks reads (`inputs`, `watch`, an image's build context) changes.
//!
//! A change while the plan is still running (a dev server, a `docker run`)
//! stops it first — SIGTERM to every child's process group, SIGKILL after a
//! grace period, containers removed — so no process is ever orphaned. The
//! re-run skips whatever the change did not affect, by fingerprint, except
//! the tasks whose `watch` paths changed: those run again whatever their
//! fingerprints say.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::{RecursiveMode, Watcher};

use crate::config::{Action, Config};
use crate::exec::process::{self, Signal};
use crate::exec::scheduler::RunResult;
use crate::graph::Plan;

/// Events closer together than this are one change.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// How long stopped tasks get before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// Which changed paths re-trigger the plan.
pub struct Triggers {
    include: GlobSet,
    /// Outputs of the plan's own tasks never re-trigger it.
    exclude: GlobSet,
    /// The tasks with `watch` paths, and those paths.
    watched: Vec<(String, GlobSet)>,
}

impl Triggers {
    pub fn new(config: &Config, plan: &Plan) -> Triggers {
        let mut include = GlobSetBuilder::new();
        let mut exclude = GlobSetBuilder::new();
        let mut watched = Vec::new();
        let add = |b: &mut GlobSetBuilder, pattern: &str| {
            let p = pattern.trim_start_matches("./").trim_end_matches('/');
            for variant in [p.to_string(), format!("{p}/**")] {
                if let Ok(g) = Glob::new(&variant) {
                    b.add(g);
                }
            }
        };
        for name in &plan.order {
            let task = &config.tasks[name];
            let literal = |t: &crate::config::template::Template| t.as_literal().map(str::to_owned);
            for t in task.inputs.iter().flatten().chain(&task.watch) {
                if let Some(p) = literal(t) {
                    match p.strip_prefix('!') {
                        Some(neg) => add(&mut exclude, neg),
                        None => add(&mut include, &p),
                    }
                }
            }
            if let Action::Image(image) = &task.action
                && task.inputs.is_none()
            {
                let context = image.context.as_ref().and_then(literal).unwrap_or_else(|| ".".into());
                add(&mut include, if context == "." { "**" } else { &context });
            }
            for t in &task.outputs {
                if let Some(p) = literal(t) {
                    add(&mut exclude, &p);
                }
            }
            let mut own = GlobSetBuilder::new();
            task.watch.iter().filter_map(literal).for_each(|p| add(&mut own, &p));
            if !task.watch.is_empty() {
                watched.push((name.clone(), own.build().unwrap_or_else(|_| GlobSet::empty())));
            }
        }
        Triggers {
            include: include.build().unwrap_or_else(|_| GlobSet::empty()),
            exclude: exclude.build().unwrap_or_else(|_| GlobSet::empty()),
            watched,
        }
    }

    /// The tasks whose `watch` paths a change to `rel` is under.
    pub fn watchers(&self, rel: &str) -> impl Iterator<Item = &str> {
        self.watched
            .iter()
            .filter(move |(_, paths)| paths.is_match(rel))
            .map(|(name, _)| name.as_str())
    }

    /// Whether a change to `rel` (root-relative) should re-run the plan.
    pub fn matches(&self, rel: &str) -> bool {
        let first = rel.split('/').next().unwrap_or("");
        if first == ".mtr" || rel.split('/').any(|c| c == ".git") {
            return false;
        }
        self.include.is_match(rel) && !self.exclude.is_match(rel)
    }
}

/// What a run gets: the tasks whose `watch` paths changed since the last.
pub type MakeRun = dyn Fn(BTreeSet<String>) -> std::io::Result<RunResult> + Send + Sync;

/// Runs `make_run` now and again after each relevant change, until Ctrl-C.
/// Returns the exit status of the last run (130 after Ctrl-C).
pub fn run(
    root: &Path,
    triggers: Triggers,
    reporter: &crate::report::Reporter,
    make_run: impl Fn(BTreeSet<String>) -> std::io::Result<RunResult> + Send + Sync + 'static,
) -> std::io::Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(watch_loop(root.to_path_buf(), triggers, reporter, Arc::new(make_run)))
}

async fn watch_loop(
    root: PathBuf,
    triggers: Triggers,
    reporter: &crate::report::Reporter,
    make_run: Arc<MakeRun>,
) -> std::io::Result<i32> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(std::io::Error::other)?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(std::io::Error::other)?;
    let mut ctrl_c = CtrlC::new()?;
    let mut watched = BTreeSet::new();
    // Notes the tasks whose `watch` paths `path` is under; whether it is
    // relevant at all.
    let seen = |path: &Path, watched: &mut BTreeSet<String>| {
        let relevant = relevant(&root, &triggers, path);
        if relevant {
            watched.extend(triggers.watchers(&rel(&root, path)).map(str::to_owned));
        }
        relevant
    };
    loop {
        process::reset();
        let run = make_run.clone();
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
        let forced = std::mem::take(&mut watched);
        // The scheduler has its own runtime: run it on a plain thread.
        std::thread::spawn(move || {
            let _ = done_tx.send(run(forced));
        });
        let mut stopping = false;
        let result = loop {
            tokio::select! {
                result = &mut done_rx => break result.map_err(std::io::Error::other)?,
                path = rx.recv() => {
                    let Some(path) = path else { continue };
                    if seen(&path, &mut watched) && !stopping {
                        stopping = true;
                        reporter.line(&format!("mtr: `{}` changed; stopping the running tasks", rel(&root, &path)));
                        stop_children();
                    }
                }
                _ = ctrl_c.recv() => {
                    // The scheduler sees the same Ctrl-C and stops its children.
                    let _ = (&mut done_rx).await;
                    return Ok(130);
                }
            }
        };
        let result = result?;
        if result.interrupted.is_some() {
            return Ok(130);
        }
        let last_code = result.exit_code_any();
        reporter.summary(&result.counts(), result.took);
        if !stopping {
            reporter.line("mtr: watching for changes (Ctrl-C to stop)");
            // Wait for a relevant change.
            loop {
                tokio::select! {
                    path = rx.recv() => {
                        match path {
                            Some(p) if seen(&p, &mut watched) => {
                                reporter.line(&format!("mtr: `{}` changed", rel(&root, &p)));
                                break;
                            }
                            Some(_) => {}
                            None => return Ok(last_code),
                        }
                    }
                    _ = ctrl_c.recv() => return Ok(if last_code == 0 { 130 } else { last_code }),
                }
            }
        }
        // Debounce: let a burst of writes (an editor's save, a git checkout) settle.
        while let Ok(Some(path)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
            seen(&path, &mut watched);
        }
    }
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn relevant(root: &Path, triggers: &Triggers, path: &Path) -> bool {
    path.starts_with(root) && triggers.matches(&rel(root, path))
}

/// Stops the current run: SIGTERM to every child group, containers
/// removed, SIGKILL after the grace period.
fn stop_children() {
    process::cancel();
    process::signal_all(Signal::Term);
    std::thread::spawn(|| {
        process::run_cleanups();
        std::thread::sleep(GRACE);
        process::signal_all(Signal::Kill);
    });
}

/// Ctrl-C (SIGINT or SIGTERM) for the whole watch.
struct CtrlC {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl CtrlC {
    #[cfg(unix)]
    fn new() -> std::io::Result<CtrlC> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(CtrlC {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<CtrlC> {
        Ok(CtrlC {})
    }

    #[cfg(unix)]
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
