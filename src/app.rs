//! `mtr` from arguments to exit status: find and load the config, pick the
//! tasks, resolve variables, then list, plan or run.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use crate::cli::{Cli, ColorChoice};
use crate::config::diagnostic::did_you_mean;
use crate::config::vars::{self, Vars};
use crate::config::{Config, discover, load};
use crate::error::Error;
use crate::exec::job::Status;
use crate::exec::{Context, Options, scheduler};
use crate::graph::Plan;
use crate::report::{Reporter, Verbosity};
use crate::state::Store;

/// Runs mtr with the process arguments; returns the exit status.
pub fn main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == crate::completions::TASKS_FLAG) {
        crate::completions::print_tasks(&args[2..]);
        return 0;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let color = use_color(cli.color);
    match run(&cli, color) {
        Ok(()) => 0,
        Err(e) => {
            print_error(&e, color);
            e.exit_code()
        }
    }
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
        }
    }
}

fn print_error(e: &Error, color: bool) {
    let handler = if color {
        miette::GraphicalReportHandler::new()
    } else {
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
    };
    if crate::github::active() {
        match e {
            Error::Config(errors) => errors
                .iter()
                .for_each(|err| eprintln!("{}", crate::github::config_error(err))),
            Error::Usage { message, .. } | Error::Internal(message) => {
                eprintln!("{}", crate::github::command("error", None, message))
            }
            Error::Exit(_) => {}
        }
    }
    match e {
        Error::Config(errors) => {
            for err in errors {
                let mut out = String::new();
                let _ = handler.render_report(&mut out, err);
                eprintln!("{out}");
            }
            if errors.len() > 1 {
                eprintln!("mtr: {} errors", errors.len());
            }
        }
        Error::Usage { message, help } => {
            eprintln!("error: {message}");
            if let Some(h) = help {
                eprintln!("  help: {h}");
            }
        }
        Error::Internal(message) => eprintln!("error: {message}"),
        Error::Exit(_) => {}
    }
}

/// The montage.toml in scope: `-f FILE`, else the nearest from `-C DIR` or
/// the current directory up.
pub fn config_path(cli: &Cli) -> Result<PathBuf, Error> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::Internal(format!("cannot read the current directory: {e}")))?;
    let start: PathBuf = cli.dir.as_ref().map(|d| cwd.join(d)).unwrap_or(cwd);
    // A mistyped `-C DIR` must not silently find the config above it.
    if let Some(dir) = &cli.dir
        && !start.is_dir()
    {
        return Err(Error::usage(format!("directory `{}` does not exist", dir.display())));
    }
    let Some(file) = discover::find(cli.file.as_deref(), &start) else {
        return Err(Error::Usage {
            message: format!(
                "no `{}` found in `{}` or any parent directory",
                discover::FILE_NAME,
                start.display()
            ),
            help: Some("create one (see the README's montage.toml reference), or name one with `-f FILE`".into()),
        });
    };
    if !file.is_file() {
        return Err(Error::usage(format!("config file `{}` does not exist", file.display())));
    }
    Ok(file)
}

fn run(cli: &Cli, color: bool) -> Result<(), Error> {
    if let Some(shell) = cli.completions {
        print!("{}", crate::completions::script(shell));
        return Ok(());
    }
    let path = config_path(cli)?;
    let (names, assignments) = cli.split_args();
    // The state is read while the config is parsed, when tasks will run.
    let state = (!names.is_empty() && cli.graph.is_none() && !cli.vars && !cli.doctor && !cli.list)
        .then(|| early_state(&path))
        .flatten();
    let config = load::load(&path).map_err(Error::Config)?;
    crate::cwd::enter(&config.root);
    if let Some(task) = &cli.graph {
        let roots: Vec<String> = std::iter::once(task)
            .filter(|t| !t.is_empty())
            .chain(&names)
            .cloned()
            .collect();
        let roots = resolve_tasks(&config, &roots)?;
        print!("{}", crate::graph_view::render(&config, &roots, cli.format));
        return Ok(());
    }
    if cli.vars || cli.doctor {
        return inspect(cli, &config, &assignments, color);
    }
    if cli.list || (names.is_empty() && config.project.default.is_none()) {
        let text = if cli.json {
            crate::listing::json(&config)
        } else {
            crate::listing::text(&config)
        };
        print!("{text}");
        return Ok(());
    }
    let names = if names.is_empty() {
        vec![config.project.default.clone().map(|(d, _)| d).unwrap_or_default()]
    } else {
        names
    };
    let tasks = resolve_tasks(&config, &names)?;
    let (env, dotenv) = vars::environment(&config.root, &config.project.dotenv).map_err(Error::usage)?;
    let dotenv: Vec<(String, String)> = dotenv
        .into_iter()
        .map(|(k, _)| {
            let v = env.get(&k).cloned().unwrap_or_default();
            (k, v)
        })
        .collect();
    let vars = Vars::new(&config, &assignments, env.clone()).map_err(Error::from)?;
    let mut plan = Plan::new(&config, &tasks);
    if cli.parallel {
        plan.all_at_once();
    }
    crate::plan_checks::vars(&config, &vars, &plan)?;
    crate::plan_checks::rendered(&config, &vars, &plan)?;
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let mut reporter = Reporter::new(color, verbosity);
    // One task needs no CPU count (finding it out reads cgroup files).
    let jobs = cli.jobs.unwrap_or_else(|| match plan.order.len() {
        0 | 1 => 1,
        _ => crate::walk::parallelism(),
    });
    if jobs > 1 && can_overlap(&plan) {
        reporter.prefix = plan.order.iter().map(String::len).max();
    }
    reporter.set_masks(vars.secrets());
    // A live status line only on a terminal, never in CI logs or pipes.
    reporter.live = !reporter.github && verbosity != Verbosity::Quiet && std::io::stderr().is_terminal();
    let reporter = Arc::new(reporter);
    let store = Store::new(&config.root);
    let (state, warning) = match state.and_then(|s| s.join().ok()) {
        Some((root, loaded)) if root == config.root => loaded,
        _ => store.load(),
    };
    if let Some(w) = warning {
        reporter.warn(&w);
    }
    let options = Options {
        dry_run: cli.dry_run,
        explain: cli.explain || cli.verbose,
        force: if cli.force {
            tasks.iter().cloned().collect()
        } else {
            Default::default()
        },
        keep_going: cli.keep_going,
        jobs,
        no_cache: cli.no_cache,
        watched: Default::default(),
    };
    let root = config.root.display().to_string();
    let ctx = Context {
        config: Arc::new(config),
        vars: Arc::new(vars),
        state,
        store,
        reporter: reporter.clone(),
        options,
        env,
        dotenv,
        root,
    };
    let started = std::time::SystemTime::now();
    if cli.dry_run {
        let result = scheduler::dry_run(&ctx, &plan);
        print!("{}", reporter.mask(&plan_text(&plan, &result.outcomes)));
        return after_run(cli, &ctx.config, &plan, &result, started, &reporter, true);
    }
    if cli.watch {
        return watch(ctx, plan);
    }
    let config = ctx.config.clone();
    let ctx = Arc::new(ctx);
    let result = scheduler::run(ctx.clone(), &plan).map_err(|e| Error::Internal(e.to_string()))?;
    reporter.summary(&result.counts(), result.took);
    let status = after_run(cli, &config, &plan, &result, started, &reporter, false);
    // The process exits next: freeing the config, state and outcomes of
    // every task one by one would only delay it.
    std::mem::forget((ctx, config, plan, result));
    status
}

/// A loaded state and the warning about it, if any.
type Loaded = (crate::state::State, Option<String>);

/// Starts loading the state of the project `config_file` belongs to (its
/// directory, as the config loader makes it the root), on another thread
/// while the config is loaded; `None` when that would not pay. A thread
/// takes ~0.1 ms to start: as long as loading a 128 KB state or parsing an
/// 8 KB config (~1,000 tasks: a 1 MB state, an 80 KB config, ~1 ms even
/// from `.mtr/config`). A state of 1 MB or more always goes to a thread.
fn early_state(config_file: &std::path::Path) -> Option<std::thread::JoinHandle<(PathBuf, Loaded)>> {
    const LARGE_STATE: u64 = 1 << 20;
    const STATE_WORTH_A_THREAD: u64 = 128 << 10;
    const CONFIG_WORTH_A_THREAD: u64 = 8 << 10;
    let root = config_file
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let state = Store::new(&root).size();
    let overlaps =
        state >= STATE_WORTH_A_THREAD && std::fs::metadata(config_file).is_ok_and(|m| m.len() >= CONFIG_WORTH_A_THREAD);
    if state < LARGE_STATE && !overlaps {
        return None;
    }
    Some(std::thread::spawn(move || {
        let root = std::fs::canonicalize(&root).unwrap_or(root);
        let loaded = Store::new(&root).load();
        (root, loaded)
    }))
}

/// The reports of a finished run (`--summary`, `--profile`, the GitHub
/// step summary), then the run's exit status.
fn after_run(
    cli: &Cli,
    config: &Config,
    plan: &Plan,
    result: &scheduler::RunResult,
    started: std::time::SystemTime,
    reporter: &Reporter,
    dry_run: bool,
) -> Result<(), Error> {
    let exit_code = result.exit_code(plan);
    let run = crate::summary::Run {
        config,
        plan,
        result,
        started,
        exit_code,
        dry_run,
        reporter,
    };
    match (
        crate::summary::write_reports(&run, cli.summary.as_deref(), cli.profile.as_deref()),
        exit_code,
    ) {
        (Ok(()), 0) => Ok(()),
        (Err(e), 0) => Err(Error::Internal(e)),
        (Err(e), code) => {
            reporter.error(&e);
            Err(Error::Exit(code))
        }
        (Ok(()), code) => Err(Error::Exit(code)),
    }
}

/// `--watch`: the run, then again after each relevant change (with the
/// state reloaded, so what the change did not affect is skipped).
fn watch(first: Context, plan: Plan) -> Result<(), Error> {
    let triggers = crate::watch::Triggers::new(&first.config, &plan);
    let root = first.config.root.clone();
    let reporter = first.reporter.clone();
    let template = Context {
        state: Default::default(),
        options: Options {
            force: Default::default(),
            ..first.options.clone()
        },
        config: first.config.clone(),
        vars: first.vars.clone(),
        store: first.store.clone(),
        reporter: first.reporter.clone(),
        env: first.env.clone(),
        dotenv: first.dotenv.clone(),
        root: first.root.clone(),
    };
    let first = std::sync::Mutex::new(Some(first));
    let plan = Arc::new(plan);
    let make_run = move |watched| {
        let ctx = match first.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(ctx) => ctx,
            None => {
                let (state, warning) = template.store.load();
                if let Some(w) = warning {
                    template.reporter.warn(&w);
                }
                Context {
                    state,
                    options: template.options.clone(),
                    config: template.config.clone(),
                    vars: template.vars.clone(),
                    store: template.store.clone(),
                    reporter: template.reporter.clone(),
                    env: template.env.clone(),
                    dotenv: template.dotenv.clone(),
                    root: template.root.clone(),
                }
            }
        };
        let ctx = Context {
            options: Options { watched, ..ctx.options },
            ..ctx
        };
        scheduler::run(Arc::new(ctx), &plan)
    };
    match crate::watch::run(&root, triggers, &reporter, make_run) {
        Ok(0) => Ok(()),
        Ok(code) => Err(Error::Exit(code)),
        Err(e) => Err(Error::Internal(format!("--watch: {e}"))),
    }
}

/// Task names (or aliases) as task names, without repeats; an unknown
/// name is a usage error with a did-you-mean.
fn resolve_tasks(config: &Config, names: &[String]) -> Result<Vec<String>, Error> {
    let mut tasks = Vec::new();
    for name in names {
        match config.resolve_task(name) {
            Some(t) => {
                if !tasks.iter().any(|x| x == t) {
                    tasks.push(t.to_string());
                }
            }
            None => {
                let candidates = config
                    .tasks
                    .keys()
                    .map(String::as_str)
                    .chain(config.aliases.keys().map(String::as_str));
                return Err(Error::Usage {
                    message: format!("unknown task `{name}`"),
                    help: Some(
                        did_you_mean(name, candidates).unwrap_or_else(|| "run `mtr --list` to see the tasks".into()),
                    ),
                });
            }
        }
    }
    Ok(tasks)
}

/// `--vars` and `--doctor`: they resolve variables, but run no task.
fn inspect(cli: &Cli, config: &Config, assignments: &[(String, String)], color: bool) -> Result<(), Error> {
    let (env, _) = vars::environment(&config.root, &config.project.dotenv).map_err(Error::usage)?;
    let vars = Vars::new(config, assignments, env).map_err(Error::from)?;
    if cli.vars {
        let reporter = Reporter::new(false, Verbosity::Normal);
        let text = if cli.json {
            crate::vars_view::json(&vars, &reporter)
        } else {
            crate::vars_view::text(&vars, &reporter)
        };
        print!("{text}");
        return Ok(());
    }
    // `mtr --doctor TASK...` checks what those tasks (and their deps) need.
    let (names, _) = cli.split_args();
    let scope: Option<std::collections::HashSet<String>> = if names.is_empty() {
        None
    } else {
        Some(
            Plan::new(config, &resolve_tasks(config, &names)?)
                .order
                .into_iter()
                .collect(),
        )
    };
    let checks = crate::doctor::checks(config, &vars, scope.as_ref());
    let (text, healthy) = crate::doctor::report(&checks, color && std::io::stdout().is_terminal());
    print!("{text}");
    if healthy { Ok(()) } else { Err(Error::Exit(1)) }
}

/// Whether two tasks of the plan may run at the same time (then output
/// lines get a task-name prefix). Two tasks are independent exactly when
/// some level of the graph holds more than one task.
fn can_overlap(plan: &Plan) -> bool {
    // Tasks of different phases (named tasks run in order) never overlap;
    // within one, deps of an earlier phase have finished.
    let phase: HashMap<&str, usize> = plan
        .order
        .iter()
        .map(String::as_str)
        .zip(plan.phases.iter().copied())
        .collect();
    let mut level: HashMap<&str, (usize, usize)> = HashMap::new();
    for name in &plan.order {
        let p = phase[name.as_str()];
        let l = plan.deps[name]
            .iter()
            .filter(|d| phase[d.as_str()] == p)
            .map(|d| level[d.as_str()].1 + 1)
            .max()
            .unwrap_or(0);
        level.insert(name, (p, l));
    }
    let mut per_level: HashMap<(usize, usize), usize> = HashMap::new();
    level.values().any(|l| {
        let n = per_level.entry(*l).or_default();
        *n += 1;
        *n > 1
    })
}

/// The dry-run plan: each task, run or skip and why, and its commands.
fn plan_text(plan: &Plan, outcomes: &HashMap<String, crate::exec::job::Outcome>) -> String {
    let mut out = String::new();
    for name in &plan.order {
        let o = &outcomes[name];
        match &o.status {
            Status::UpToDate => out.push_str(&format!("{name}: up to date\n")),
            Status::WouldRun => {
                out.push_str(&format!("{name}: would run: {}\n", o.reason));
                for step in &o.steps {
                    out.push_str(&format!("    {step}\n"));
                }
            }
            Status::Failed { message, .. } => out.push_str(&format!("{name}: would fail: {message}\n")),
            Status::NotRun(why) => out.push_str(&format!("{name}: would not run: {why}\n")),
            Status::Ran | Status::Restored | Status::Interrupted => {}
        }
    }
    out
}
