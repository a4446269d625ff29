//! The scheduler: starts each task once its deps succeeded, up to `-j` at
//! a time, interactive tasks alone; stops on the first failure unless
//! `-k`; on Ctrl-C stops every child process group before returning.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Context;
use super::job::{self, DepState, Judged, Outcome, Pending, Status};
use super::process::{self, Signal};
use crate::cache::Cache;
use crate::config::Config;
use crate::config::template::Ref;
use crate::graph::Plan;
use crate::render::Renderer;
use crate::report::Counts;
use crate::state::Update;

/// How long children get to exit after SIGINT/SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// How a run ended.
#[derive(Debug)]
pub struct RunResult {
    pub outcomes: HashMap<String, Outcome>,
    /// The signal that interrupted the run, if any.
    pub interrupted: Option<i32>,
    pub took: Duration,
    /// When each task was started, from the start of the run (`--profile`).
    pub started: HashMap<String, Duration>,
}

impl RunResult {
    /// The process exit status: 0, the first failing command's, 130/143.
    pub fn exit_code(&self, plan: &Plan) -> i32 {
        if let Some(sig) = self.interrupted {
            return 128 + sig;
        }
        plan.order
            .iter()
            .filter_map(|n| match &self.outcomes.get(n)?.status {
                Status::Failed { code, .. } => Some(if *code == 0 { 1 } else { *code }),
                _ => None,
            })
            .next()
            .unwrap_or(0)
    }

    /// Like [`exit_code`](Self::exit_code), without the plan's order
    /// (failures taken by name).
    pub fn exit_code_any(&self) -> i32 {
        if let Some(sig) = self.interrupted {
            return 128 + sig;
        }
        let mut failed: Vec<(&String, i32)> = self
            .outcomes
            .iter()
            .filter_map(|(n, o)| match &o.status {
                Status::Failed { code, .. } => Some((n, if *code == 0 { 1 } else { *code })),
                _ => None,
            })
            .collect();
        failed.sort();
        failed.first().map(|(_, c)| *c).unwrap_or(0)
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for (name, o) in &self.outcomes {
            match o.status {
                Status::Ran | Status::WouldRun => c.ran += 1,
                Status::UpToDate => c.up_to_date += 1,
                Status::Restored => c.restored += 1,
                Status::Failed { .. } | Status::Interrupted => c.failed.push(name.clone()),
                Status::NotRun(_) => c.skipped += 1,
            }
        }
        c.failed.sort();
        c
    }
}

fn dep_state(config: &Config, plan: &Plan, name: &str, done: &HashMap<String, Outcome>) -> DepState {
    let mut s = DepState::default();
    // `tasks.NAME.*` may name any task reached through deps (all of them
    // finished before this task starts); pass on only the ones it names.
    for r in config.tasks[name].templates().into_iter().flat_map(|t| t.refs()) {
        // Keyed by the name as written: it may be an alias.
        if let Ref::TaskHash(written) | Ref::TaskImage(written) = r
            && let Some(real) = config.resolve_task(written)
            && let Some(o) = done.get(real)
        {
            s.infos.insert(written.clone(), o.info.clone());
        }
    }
    for d in &plan.deps[name] {
        let o = &done[d];
        s.infos.insert(d.clone(), o.info.clone());
        if let Some(fp) = o.fingerprint {
            s.fingerprints.push((d.clone(), fp));
        }
        if o.status == Status::WouldRun && s.would_run.is_none() {
            s.would_run = Some(d.clone());
        }
        s.any_ran |= matches!(o.status, Status::Ran | Status::Restored);
    }
    s
}

/// `--dry-run`: judges every task in order, running nothing.
pub fn dry_run(ctx: &Context, plan: &Plan) -> RunResult {
    let start = Instant::now();
    let mut done = HashMap::new();
    let mut started = HashMap::new();
    for name in &plan.order {
        started.insert(name.clone(), start.elapsed());
        let deps = dep_state(&ctx.config, plan, name, &done);
        let outcome = if let Some(bad) = plan.deps[name].iter().find(|d| !done[*d].status_ok()) {
            Outcome::not_run(format!("dependency `{bad}` would fail"))
        } else {
            job::run(ctx, name, &deps, None)
        };
        done.insert(name.clone(), outcome);
    }
    RunResult {
        outcomes: done,
        interrupted: None,
        took: start.elapsed(),
        started,
    }
}

trait StatusOk {
    fn status_ok(&self) -> bool;
}

impl StatusOk for Outcome {
    fn status_ok(&self) -> bool {
        self.status.ok()
    }
}

/// Runs the plan for real.
pub fn run(ctx: Arc<Context>, plan: &Plan) -> std::io::Result<RunResult> {
    let start = Instant::now();
    let mut judged = None;
    if let [name] = plan.order.as_slice()
        && judges_inline(&ctx, name)
    {
        // The common `mtr TASK` without deps: judge it on this thread, and
        // start the runtime, a worker and the signal handlers only if it
        // must run (judging writes at most the task's journal entry, so an
        // interrupt loses nothing: after one the task runs again).
        let deps = dep_state(&ctx.config, plan, name, &HashMap::new());
        match guarded(|| job::judge(&ctx, name, &deps)) {
            Judged::Done(outcome) => return Ok(settled(&ctx, name, *outcome, start)),
            Judged::Pending(pending) => judged = Some(pending),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cache = open_cache(&ctx, plan);
    let result = rt.block_on(run_async(ctx, plan, cache.clone(), start, judged));
    // Pushes still uploading finish here, outside the runtime above.
    if let Some(cache) = cache {
        cache.finish(result.as_ref().map_or(true, |r| r.interrupted.is_some()));
    }
    result
}

/// Whether the task of a one-task plan is judged on the calling thread.
/// That saves the runtime, a worker thread and the signal handlers (~13% of
/// a no-op over 100 files), but a walk that brings in helper threads
/// measured ~10% slower from the main thread (10,000 files). So only a task
/// whose last run had fewer inputs than a walk takes to need helpers
/// qualifies.
fn judges_inline(ctx: &Context, name: &str) -> bool {
    ctx.state
        .tasks
        .get(name)
        .is_some_and(|r| r.parts.input_count() < crate::walk::SPAWN_AFTER)
}

/// Runs `job` as a failed outcome if it panics, so one task's bug does not
/// lose the state of the others.
fn guarded<T>(job: impl FnOnce() -> T) -> T
where
    T: From<Outcome>,
{
    let began = Instant::now();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
        .unwrap_or_else(|_| Outcome::failed("internal error: the task's job panicked".into(), began).into())
}

/// The result of a one-task plan judged without running anything.
fn settled(ctx: &Context, name: &str, outcome: Outcome, start: Instant) -> RunResult {
    report(ctx, name, &outcome);
    let mut done = HashMap::from([(name.to_string(), outcome)]);
    commit(ctx, &mut done);
    RunResult {
        outcomes: done,
        interrupted: None,
        took: start.elapsed(),
        started: HashMap::from([(name.to_string(), Duration::ZERO)]),
    }
}

/// The remote cache for this run, when `[cache]` is set, `--no-cache` is
/// not, and some task of the plan can use it.
fn open_cache(ctx: &Context, plan: &Plan) -> Option<Arc<Cache>> {
    let settings = ctx.config.cache.as_ref()?;
    if ctx.options.no_cache || !plan.order.iter().any(|n| job::cacheable(&ctx.config.tasks[n])) {
        return None;
    }
    let deps = HashMap::new();
    let r = Renderer {
        vars: &ctx.vars,
        task: "",
        root: &ctx.root,
        hash: Some(""),
        deps: &deps,
    };
    match r.render(&settings.remote) {
        Ok(remote) => Cache::open(settings, &remote, &ctx.config.root, ctx.reporter.clone()),
        Err(e) => {
            ctx.reporter
                .warn(&format!("remote cache disabled: `[cache] remote`: {e}"));
            None
        }
    }
}

/// What the workers share: what is ready, running and done.
struct Board {
    /// Ready tasks by plan position, so declaration order breaks ties.
    ready: BTreeSet<usize>,
    /// Per task, how many of its deps have not finished.
    waiting: Vec<usize>,
    /// Per phase (see [`Plan::phases`]), how many of its tasks have not
    /// finished; tasks of a later phase than the first unfinished one wait.
    left: Vec<usize>,
    /// The first phase with unfinished tasks.
    open: usize,
    done: HashMap<String, Outcome>,
    started: HashMap<String, Duration>,
    running: usize,
    interactive_running: bool,
    /// No new task starts (a failure without `-k`, or an interrupt).
    stop: bool,
    /// Workers asleep on `wake`: with none, a finished task makes no
    /// `futex` call (one per task otherwise).
    sleeping: usize,
}

struct Shared {
    board: Mutex<Board>,
    wake: Condvar,
    /// Per task, the plan positions of its dependants.
    dependants: Vec<Vec<usize>>,
    /// Per task, its phase.
    phases: Vec<usize>,
    index: HashMap<String, usize>,
    start: Instant,
    /// The task of a one-task plan, already judged out of date.
    judged: Mutex<Option<Box<Pending>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until a worker or the run loop changes the board.
    fn sleep<'a>(&'a self, mut board: MutexGuard<'a, Board>) -> MutexGuard<'a, Board> {
        board.sleeping += 1;
        let mut board = self.wake.wait(board).unwrap_or_else(|e| e.into_inner());
        board.sleeping -= 1;
        board
    }

    /// Wakes the workers asleep on the board, if any.
    fn wake_sleepers(&self, board: &Board) {
        if board.sleeping > 0 {
            self.wake.notify_all();
        }
    }

    /// Records a finished task; dependants whose last dep it was become ready.
    fn finish(&self, board: &mut Board, name: String, outcome: Outcome) {
        let i = self.index[&name];
        for &j in &self.dependants[i] {
            board.waiting[j] -= 1;
            if board.waiting[j] == 0 {
                board.ready.insert(j);
            }
        }
        board.left[self.phases[i]] -= 1;
        while board.left.get(board.open) == Some(&0) {
            board.open += 1;
        }
        board.done.insert(name, outcome);
    }
}

/// Runs the plan with `jobs` worker threads that take ready tasks from the
/// board themselves (no hop through the event loop per task), while this
/// loop handles signals and the live status line.
async fn run_async(
    ctx: Arc<Context>,
    plan: &Plan,
    cache: Option<Arc<Cache>>,
    start: Instant,
    judged: Option<Box<Pending>>,
) -> std::io::Result<RunResult> {
    let mut signals = Signals::new()?;
    let index: HashMap<String, usize> = plan.order.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); plan.order.len()];
    for (i, n) in plan.order.iter().enumerate() {
        for d in &plan.deps[n] {
            dependants[index[d]].push(i);
        }
    }
    let waiting: Vec<usize> = plan.order.iter().map(|n| plan.deps[n].len()).collect();
    let mut left = vec![0; plan.phases.iter().max().map_or(0, |p| p + 1)];
    plan.phases.iter().for_each(|&p| left[p] += 1);
    let shared = Arc::new(Shared {
        board: Mutex::new(Board {
            ready: (0..plan.order.len()).filter(|i| waiting[*i] == 0).collect(),
            waiting,
            left,
            open: 0,
            done: HashMap::with_capacity(plan.order.len()),
            started: HashMap::with_capacity(plan.order.len()),
            running: 0,
            interactive_running: false,
            stop: false,
            sleeping: 0,
        }),
        wake: Condvar::new(),
        dependants,
        phases: plan.phases.clone(),
        index,
        start,
        judged: Mutex::new(judged),
    });
    // `-B` tasks run whatever their records say: journal them together
    // when the first task starts, rather than with one sync each.
    ctx.store
        .expect(plan.order.iter().filter(|n| ctx.options.force.contains(*n)).cloned());
    let plan_arc = Arc::new(plan.clone());
    let workers = ctx.options.jobs.max(1).min(plan.order.len().max(1));
    let (exited_tx, mut exited) = tokio::sync::mpsc::unbounded_channel::<()>();
    for _ in 0..workers {
        let (ctx, plan, shared, cache, exited) = (
            ctx.clone(),
            plan_arc.clone(),
            shared.clone(),
            cache.clone(),
            exited_tx.clone(),
        );
        std::thread::spawn(move || {
            worker(&ctx, &plan, &shared, cache.as_ref());
            let _ = exited.send(());
        });
    }
    drop(exited_tx);
    let mut interrupted = None;
    let mut tick = tokio::time::interval(Duration::from_millis(LIVE_TICK_MS));
    let mut frame = 0usize;
    let mut left = workers;
    while left > 0 {
        tokio::select! {
            gone = exited.recv() => {
                match gone {
                    Some(()) => left -= 1,
                    None => break,
                }
            }
            sig = signals.recv() => {
                if let Some(sig) = sig {
                    interrupted = interrupted.or(Some(sig));
                    shared.lock().stop = true;
                    shared.wake.notify_all();
                }
            }
            _ = tick.tick(), if ctx.reporter.live => {
                frame += 1;
                let board = shared.lock();
                let line = (!board.interactive_running)
                    .then(|| live_line(&board.started, &board.done, start.elapsed(), frame))
                    .flatten();
                drop(board);
                ctx.reporter.set_live(line);
            }
        }
    }
    ctx.reporter.set_live(None);
    let mut board = shared.lock();
    let mut done = std::mem::take(&mut board.done);
    let started = std::mem::take(&mut board.started);
    drop(board);
    for name in plan
        .order
        .iter()
        .filter(|n| !done.contains_key(*n))
        .cloned()
        .collect::<Vec<_>>()
    {
        let why = if interrupted.is_some() {
            "interrupted"
        } else {
            "the run stopped after a failure"
        };
        done.insert(name, Outcome::not_run(why.into()));
    }
    commit(&ctx, &mut done);
    Ok(RunResult {
        outcomes: done,
        interrupted,
        took: start.elapsed(),
        started,
    })
}

/// One worker: take the next task it may start, run it, record it; until
/// nothing is left (or the run stops).
fn worker(ctx: &Context, plan: &Plan, shared: &Shared, cache: Option<&Arc<Cache>>) {
    let jobs = ctx.options.jobs.max(1);
    let mut board = shared.lock();
    loop {
        if board.stop || process::cancelled() {
            board.stop = true;
            shared.wake_sleepers(&board);
            return;
        }
        let Some(&i) = board.ready.first() else {
            if board.running == 0 {
                // Nothing ready and nothing running: the plan is finished.
                shared.wake_sleepers(&board);
                return;
            }
            board = shared.sleep(board);
            continue;
        };
        // Ready tasks are in plan order, so phase by phase: this one's
        // named task waits for those named before it.
        if plan.phases[i] > board.open {
            board = shared.sleep(board);
            continue;
        }
        let name = plan.order[i].clone();
        if let Some(bad) = plan.deps[&name].iter().find(|d| !board.done[*d].status.ok()) {
            let why = format!("dependency `{bad}` did not succeed");
            ctx.reporter.skipped(&name, &why);
            board.ready.remove(&i);
            shared.finish(&mut board, name, Outcome::not_run(why));
            shared.wake_sleepers(&board);
            continue;
        }
        let interactive = ctx.config.tasks[&name].interactive;
        // An interactive task waits for the others, and nothing new starts
        // meanwhile so it gets its turn.
        if board.interactive_running || board.running >= jobs || (interactive && board.running > 0) {
            board = shared.sleep(board);
            continue;
        }
        board.ready.remove(&i);
        board.running += 1;
        board.interactive_running = interactive;
        board.started.insert(name.clone(), shared.start.elapsed());
        let state = dep_state(&ctx.config, plan, &name, &board.done);
        drop(board);
        let judged = shared.judged.lock().unwrap_or_else(|e| e.into_inner()).take();
        let outcome = guarded(|| match judged {
            Some(pending) => job::carry_out(ctx, &name, *pending, cache),
            None => job::run(ctx, &name, &state, cache),
        });
        report(ctx, &name, &outcome);
        board = shared.lock();
        board.running -= 1;
        if interactive {
            board.interactive_running = false;
        }
        if !outcome.status.ok() && !ctx.options.keep_going {
            board.stop = true;
        }
        shared.finish(&mut board, name, outcome);
        shared.wake_sleepers(&board);
    }
}

/// How often the live status line is redrawn.
const LIVE_TICK_MS: u64 = 100;
/// The live line appears once a task has run this long.
const LIVE_AFTER: Duration = Duration::from_secs(1);

/// `⠹ running build, test · 12.3s` while some task has run for a while.
fn live_line(
    started: &HashMap<String, Duration>,
    done: &HashMap<String, Outcome>,
    now: Duration,
    frame: usize,
) -> Option<String> {
    const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
    let mut running: Vec<(&String, Duration)> = started
        .iter()
        .filter(|(name, _)| !done.contains_key(*name))
        .map(|(name, at)| (name, *at))
        .collect();
    let oldest = running.iter().map(|(_, at)| *at).min()?;
    if now.saturating_sub(oldest) < LIVE_AFTER {
        return None;
    }
    running.sort_by_key(|(_, at)| *at);
    let names: Vec<&str> = running.iter().map(|(n, _)| n.as_str()).collect();
    let shown = if names.len() > 4 {
        format!("{} and {} more", names[..4].join(", "), names.len() - 4)
    } else {
        names.join(", ")
    };
    Some(format!(
        "{} running {shown} · {}",
        SPINNER[frame % SPINNER.len()],
        crate::report::duration(now)
    ))
}

fn report(ctx: &Context, name: &str, o: &Outcome) {
    let r = &ctx.reporter;
    r.finish_task(name);
    match &o.status {
        Status::Ran => r.ran(name, o.took, ""),
        Status::UpToDate => r.up_to_date(name),
        Status::Restored => r.ran(name, o.took, " restored from cache"),
        Status::Failed { message, .. } => r.failed(name, o.took, message),
        Status::Interrupted => r.failed(name, o.took, "interrupted"),
        Status::NotRun(why) => r.skipped(name, why),
        Status::WouldRun => {}
    }
}

/// Stores what this run learned: records of successes, removal of the
/// records of tasks that failed, new stat-cache entries.
fn commit(ctx: &Context, done: &mut HashMap<String, Outcome>) {
    let mut update = Update::default();
    for (name, o) in done.iter_mut() {
        match &o.status {
            Status::Ran | Status::Restored => match o.record.take() {
                Some(rec) => {
                    update.set.insert(name.clone(), *rec);
                }
                None => {
                    update.remove.insert(name.clone());
                }
            },
            Status::Failed { .. } | Status::Interrupted => {
                update.remove.insert(name.clone());
            }
            Status::UpToDate => {
                if let (Some(listing), Some(fp)) = (o.listing.take(), o.fingerprint) {
                    update.listings.insert(name.clone(), (fp, listing));
                }
            }
            _ => {}
        }
        update.files.append(&mut o.files);
    }
    if let Err(e) = ctx.store.commit(&ctx.state, update) {
        ctx.reporter.error(&format!(
            "could not save state in `{}`: {e}\nthe tasks' own work is kept; they will run again next time",
            ctx.store.dir().display()
        ));
    }
}

/// SIGINT/SIGTERM: the first stops every child group (SIGKILL after a
/// grace period); a second kills them at once.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    count: usize,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            count: 0,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Signals> {
        Ok(Signals { count: 0 })
    }

    /// Waits for a signal and acts on it; returns its number when the run
    /// must end (not for a Ctrl-C meant for an interactive task).
    #[cfg(unix)]
    async fn recv(&mut self) -> Option<i32> {
        let sig = tokio::select! {
            _ = self.int.recv() => 2,
            _ = self.term.recv() => 15,
        };
        if sig == 2 && process::foreground() && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            // The terminal sent it to the interactive task too; let it
            // decide. (A SIGTERM, or a SIGINT with no terminal to type it
            // in — an IDE, a supervisor — is passed on below.)
            return None;
        }
        self.count += 1;
        process::cancel();
        // Containers are stopped through docker, not only by signalling the CLI.
        std::thread::spawn(process::run_cleanups);
        if self.count > 1 {
            process::signal_all(Signal::Kill);
        } else {
            process::signal_all(if sig == 2 { Signal::Int } else { Signal::Term });
            tokio::spawn(async {
                tokio::time::sleep(GRACE).await;
                process::signal_all(Signal::Kill);
            });
        }
        Some(sig)
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) -> Option<i32> {
        let _ = tokio::signal::ctrl_c().await;
        self.count += 1;
        process::cancel();
        Some(2)
    }
}
