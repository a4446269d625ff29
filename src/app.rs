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
use crate::config::{Config, ConfigError, discover, load};
use crate::error::Error;
use crate::exec::job::Status;
use crate::exec::{Context, Options, scheduler};
use crate::graph::Plan;
use crate::render::used_vars;
use crate::report::{Reporter, Verbosity};
use crate::state::Store;

/// Runs mtr with the process arguments; returns the exit status.
pub fn main() -> i32 {
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

fn run(cli: &Cli, color: bool) -> Result<(), Error> {
    if cli.watch
        || cli.graph.is_some()
        || cli.summary.is_some()
        || cli.profile.is_some()
        || cli.completions.is_some()
        || cli.vars
        || cli.doctor
    {
        return Err(Error::usage("this flag is not available in this build yet"));
    }
    let cwd =
        std::env::current_dir().map_err(|e| Error::Internal(format!("cannot read the current directory: {e}")))?;
    let start: PathBuf = cli.dir.as_ref().map(|d| cwd.join(d)).unwrap_or(cwd);
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
    let config = load::load(&file).map_err(Error::Config)?;
    let (names, assignments) = cli.split_args();
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
    let mut tasks = Vec::new();
    for name in &names {
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
    let (env, dotenv) = vars::environment(&config.root, &config.project.dotenv).map_err(Error::usage)?;
    let dotenv: Vec<(String, String)> = dotenv
        .into_iter()
        .map(|(k, _)| {
            let v = env.get(&k).cloned().unwrap_or_default();
            (k, v)
        })
        .collect();
    let vars = Vars::new(&config, &assignments, env.clone()).map_err(Error::from)?;
    let plan = Plan::new(&config, &tasks);
    check_vars(&config, &vars, &plan)?;
    check_platforms(&config, &vars, &plan)?;
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let mut reporter = Reporter::new(color, verbosity);
    let jobs = cli
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if jobs > 1 && can_overlap(&plan) {
        reporter.prefix = plan.order.iter().map(String::len).max();
    }
    reporter.set_masks(vars.secrets());
    let reporter = Arc::new(reporter);
    let store = Store::new(&config.root);
    let (state, warning) = store.load();
    if let Some(w) = warning {
        reporter.warn(&w);
    }
    let options = Options {
        dry_run: cli.dry_run,
        explain: cli.explain,
        force: if cli.force {
            tasks.iter().cloned().collect()
        } else {
            Default::default()
        },
        keep_going: cli.keep_going,
        jobs,
    };
    let root = config.root.display().to_string();
    let ctx = Context {
        config,
        vars,
        state,
        store,
        reporter: reporter.clone(),
        options,
        env,
        dotenv,
        root,
    };
    if cli.dry_run {
        let result = scheduler::dry_run(&ctx, &plan);
        print!("{}", reporter.mask(&plan_text(&plan, &result.outcomes)));
        return Ok(());
    }
    let result = scheduler::run(Arc::new(ctx), &plan).map_err(|e| Error::Internal(e.to_string()))?;
    reporter.summary(&result.counts(), result.took);
    match result.exit_code(&plan) {
        0 => Ok(()),
        code => Err(Error::Exit(code)),
    }
}

/// Every variable a task of the plan uses must have a value before
/// anything runs (this also runs each needed `sh` once).
fn check_vars(config: &Config, vars: &Vars, plan: &Plan) -> Result<(), Error> {
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for name in &plan.order {
        let task = &config.tasks[name];
        let mut templates = task.templates();
        templates.extend(config.env.iter().map(|(_, t)| t));
        for var in used_vars(templates) {
            if !seen.insert(var.clone()) {
                continue;
            }
            if let Err(missing) = vars.get(&var) {
                let def = vars.def(&var);
                let mut e = ConfigError::new(
                    "no-value",
                    format!("variable `{var}` has no value (used by task `{name}`)"),
                )
                .help(match def.and_then(|d| d.description.as_ref()) {
                    Some(desc) => format!("{desc}\n{}", missing.detail),
                    None => missing.detail.clone(),
                })
                .with_source(&config.source);
                if let Some(d) = def {
                    e = e.label(d.span.clone(), "declared here");
                }
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(errors))
    }
}

/// Several platforms without `push` fail when the plan is made, with the
/// variables' values known (`PLATFORMS=linux/arm64` may narrow a build).
fn check_platforms(config: &Config, vars: &Vars, plan: &Plan) -> Result<(), Error> {
    let deps = HashMap::new();
    let root = config.root.display().to_string();
    let mut errors = Vec::new();
    for name in &plan.order {
        if let crate::config::Action::Image(image) = &config.tasks[name].action {
            let r = crate::render::Renderer {
                vars,
                task: name,
                root: &root,
                hash: Some(""),
                deps: &deps,
            };
            if let Err(e) = crate::action::image::check_platforms(name, image, &r) {
                errors.push(e.with_source(&config.source));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(errors))
    }
}

/// Whether two tasks of the plan may run at the same time (then output
/// lines get a task-name prefix). Two tasks are independent exactly when
/// some level of the graph holds more than one task.
fn can_overlap(plan: &Plan) -> bool {
    let mut level: HashMap<&str, usize> = HashMap::new();
    for name in &plan.order {
        let l = plan.deps[name].iter().map(|d| level[d.as_str()] + 1).max().unwrap_or(0);
        level.insert(name, l);
    }
    let mut per_level: HashMap<usize, usize> = HashMap::new();
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
            Status::Ran | Status::Interrupted => {}
        }
    }
    out
}
