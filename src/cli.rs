//! The command line (clap derive; doc comments are the `--help` text).
//! Built-ins are flags, never subcommands, so any task name is usable.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  mtr                      list the tasks of the montage.toml in scope
  mtr test                 run `test` and its deps, skipping what is up to date
  mtr dev-test --explain   say why each task runs or is skipped
  mtr build -n             show the plan without running anything
  mtr release VERSION=v1.4 set a variable for this run
  mtr -C examples/app dev  run in another project
  mtr -B lint              run `lint` even if it is up to date

Docs: README.md (montage.toml reference) — https://github.com/mtr-dev/mtr";

/// mtr — a declarative task runner.
///
/// Runs the tasks of `montage.toml` and their dependencies, in parallel
/// where the graph allows, and skips every task whose inputs did not change
/// since it last succeeded.
#[derive(Debug, Parser)]
#[command(name = "mtr", version, about, long_about, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// Tasks to run (with no task: the default task, or the list), and
    /// variable assignments `NAME=VALUE`
    #[arg(value_name = "TASK|VAR=VALUE")]
    pub args: Vec<String>,

    /// Use this config file instead of searching for montage.toml
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    pub file: Option<PathBuf>,

    /// Start the search for montage.toml in DIR
    #[arg(short = 'C', long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print the plan: each task, whether it would run and why; run nothing
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,

    /// Say why each task runs or is skipped
    #[arg(long)]
    pub explain: bool,

    /// Run the named tasks even if they are up to date
    #[arg(short = 'B', long)]
    pub force: bool,

    /// How many tasks run at once [default: number of CPUs]
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,

    /// After a failure, still run what does not depend on it
    #[arg(short = 'k', long = "keep-going")]
    pub keep_going: bool,

    /// After the run, re-run what a change to inputs or watch paths affects
    #[arg(short = 'w', long)]
    pub watch: bool,

    /// List the tasks
    #[arg(short = 'l', long)]
    pub list: bool,

    /// With --list (or --vars): print JSON
    #[arg(long)]
    pub json: bool,

    /// Print the task graph (of TASK, or of all tasks)
    #[arg(long, value_name = "TASK", num_args = 0..=1, default_missing_value = "")]
    pub graph: Option<String>,

    /// Format for --graph
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,

    /// Write a JSON summary of the run to FILE (for CI)
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,

    /// Write the run as Chrome trace-event JSON to FILE (open in Perfetto)
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,

    /// Do not read or write the remote cache in this run
    #[arg(long = "no-cache")]
    pub no_cache: bool,

    /// Print a shell completion script
    #[arg(long, value_enum, value_name = "SHELL")]
    pub completions: Option<clap_complete::Shell>,

    /// Show each variable's value and where it came from
    #[arg(long)]
    pub vars: bool,

    /// Check what the tasks need (docker, buildx, builders, registries,
    /// kubectl) and say how to fix what is missing
    #[arg(long)]
    pub doctor: bool,

    /// Set a variable (same as NAME=VALUE)
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,

    /// Print only errors and task output
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: commands in full, skipped tasks' reasons
    #[arg(short, long)]
    pub verbose: bool,

    /// When to use colours (NO_COLOR is respected)
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
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
