//! The command line (clap derive; doc comments are the `--help` text).
//! Built-ins are flags, never subcommands, so any task name is usable.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  mtr                         list the tasks (or run the project's `default` task)
  mtr test                    run `test` and what it depends on; skip what is up to date
  mtr build test -j 4         run two tasks, at most 4 at once
  mtr release VERSION=v1.4.0  set a variable for this run
  mtr deploy -n               show the plan (what would run, and why); run nothing
  mtr test --explain          say why each task runs or is skipped
  mtr -B lint                 run `lint` even if it is up to date
  mtr --graph test            the graph of `test` and its deps (Graphviz dot)
  mtr --vars                  each variable, its value and where it came from
  mtr --doctor                check docker, buildx, registries and kubectl for the tasks

Shell completion (task names included):
  bash: source <(mtr --completions bash)        zsh: source <(mtr --completions zsh)
  fish: mtr --completions fish | source

Exit status: 0 success; the failed command's status on failure; 2 for usage and
config errors; 130 after Ctrl-C.
Docs: README.md (montage.toml reference) — https://github.com/mtr-dev/mtr";

const RUN: &str = "Running tasks";
const CONFIG: &str = "Finding montage.toml";
const INFO: &str = "Information (instead of running tasks)";
const REPORTS: &str = "Reports";
const OUTPUT: &str = "Output";

/// mtr — a declarative task runner: runs the tasks of montage.toml and
/// their dependencies, and skips what is up to date.
///
/// mtr reads `montage.toml` (in this directory or the nearest parent), runs
/// the tasks you name and everything they depend on — in parallel where the
/// graph allows — and skips every task whose inputs did not change since it
/// last succeeded. With no task it runs the project's `default` task, or
/// lists the tasks.
#[derive(Debug, Parser)]
#[command(name = "mtr", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// Tasks to run (each with its deps) and variables to set as `NAME=VALUE`
    #[arg(value_name = "TASK|VAR=VALUE")]
    pub args: Vec<String>,

    /// Print the plan: each task, whether it would run and why; run nothing
    #[arg(short = 'n', long = "dry-run", help_heading = RUN)]
    pub dry_run: bool,

    /// Say why each task runs or is skipped (which input changed, ...)
    #[arg(long, help_heading = RUN)]
    pub explain: bool,

    /// Run the named tasks even if they are up to date (not their deps)
    #[arg(short = 'B', long, help_heading = RUN)]
    pub force: bool,

    /// Run the named tasks at the same time (default: one after another, in the order given)
    #[arg(short = 'p', long, help_heading = RUN)]
    pub parallel: bool,

    /// How many tasks run at once [default: number of CPUs]
    #[arg(short = 'j', long, value_name = "N", help_heading = RUN, value_parser = at_least_one)]
    pub jobs: Option<usize>,

    /// After a failure, still run what does not depend on it
    #[arg(short = 'k', long = "keep-going", help_heading = RUN)]
    pub keep_going: bool,

    /// After the run, re-run what a change to inputs or watch paths affects
    #[arg(short = 'w', long, help_heading = RUN)]
    pub watch: bool,

    /// Set a variable (same as a `NAME=VALUE` argument)
    #[arg(long = "set", value_name = "NAME=VALUE", help_heading = RUN)]
    pub set: Vec<String>,

    /// Do not read or write the remote cache in this run
    #[arg(long = "no-cache", help_heading = RUN)]
    pub no_cache: bool,

    /// Use this config file instead of searching for montage.toml
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true, help_heading = CONFIG)]
    pub file: Option<PathBuf>,

    /// Start the search for montage.toml in DIR
    #[arg(short = 'C', long = "dir", value_name = "DIR", help_heading = CONFIG)]
    pub dir: Option<PathBuf>,

    /// List the tasks, grouped, with descriptions
    #[arg(short = 'l', long, help_heading = INFO)]
    pub list: bool,

    /// With --list or --vars: print JSON
    #[arg(long, help_heading = INFO)]
    pub json: bool,

    /// Print the task graph: of TASK and its deps, or of every task
    #[arg(long, value_name = "TASK", num_args = 0..=1, default_missing_value = "", help_heading = INFO)]
    pub graph: Option<String>,

    /// Format for --graph: Graphviz `dot` or a Mermaid flowchart
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot, value_name = "FORMAT", help_heading = INFO)]
    pub format: GraphFormat,

    /// Show each variable's value and where it came from
    #[arg(long, help_heading = INFO)]
    pub vars: bool,

    /// Check what the tasks (or the named ones) need: docker, buildx,
    /// builders, registries, kubectl; say how to fix what is missing
    #[arg(long, help_heading = INFO)]
    pub doctor: bool,

    /// Print a completion script for SHELL (it completes task names too)
    #[arg(long, value_enum, value_name = "SHELL", help_heading = INFO)]
    pub completions: Option<clap_complete::Shell>,

    /// Write a JSON summary of the run to FILE (for CI; see docs/summary-schema.md)
    #[arg(long, value_name = "FILE", help_heading = REPORTS)]
    pub summary: Option<PathBuf>,

    /// Write the run as Chrome trace-event JSON to FILE (open it in https://ui.perfetto.dev)
    #[arg(long, value_name = "FILE", help_heading = REPORTS)]
    pub profile: Option<PathBuf>,

    /// Print only errors and task output
    #[arg(short, long, conflicts_with = "verbose", help_heading = OUTPUT)]
    pub quiet: bool,

    /// Print more: why each task runs or is skipped (as --explain)
    #[arg(short, long, help_heading = OUTPUT)]
    pub verbose: bool,

    /// When to use colours (NO_COLOR is respected)
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", help_heading = OUTPUT)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl Cli {
    /// Splits positional arguments into task names and `NAME=VALUE` pairs.
    pub fn split_args(&self) -> (Vec<String>, Vec<(String, String)>) {
        let mut tasks = Vec::new();
        let mut assignments = Vec::new();
        for arg in self.args.iter().chain(&self.set) {
            match arg.split_once('=') {
                Some((name, value)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                    assignments.push((name.to_string(), value.to_string()));
                }
                _ => tasks.push(arg.clone()),
            }
        }
        (tasks, assignments)
    }
}

/// `-j N`: a count of tasks, 1 or more.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("at least 1 task must be able to run".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
