//! Running a plan: the scheduler, one task's job, child processes.

mod deferred;
pub mod deploy;
pub mod docker;
pub mod job;
pub mod missing_program;
pub mod process;
pub mod scheduler;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::config::Config;
use crate::config::vars::Vars;
use crate::report::Reporter;
use crate::state::{State, Store};

/// How the user asked to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    pub explain: bool,
    /// Tasks to run even when up to date (`-B` applies to the named tasks).
    pub force: HashSet<String>,
    /// Tasks whose `watch` paths changed (`--watch`): they run too.
    pub watched: std::collections::BTreeSet<String>,
    pub keep_going: bool,
    pub jobs: usize,
    /// `--no-cache`: neither read nor write the remote cache.
    pub no_cache: bool,
}

/// Everything a run needs, shared by all its jobs.
#[derive(Debug)]
pub struct Context {
    pub config: Arc<Config>,
    pub vars: Arc<Vars>,
    pub state: State,
    pub store: Store,
    pub reporter: Arc<Reporter>,
    pub options: Options,
    /// The environment children start from: process env plus dotenv.
    pub env: HashMap<String, String>,
    /// Values loaded from dotenv files (part of every task's fingerprint).
    pub dotenv: Vec<(String, String)>,
    pub root: String,
}
