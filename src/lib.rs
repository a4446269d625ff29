//! mtr — a declarative task runner.
//!
//! The pipeline, in the order a run goes through it:
//! [`cli`] → [`config`] (discover, load, vars, templates) → [`graph`] (the
//! plan) → [`exec`] (scheduler, jobs, processes) using [`inputs`],
//! [`hashing`], [`fingerprint`], [`state`] and [`action`]; [`report`] and
//! [`listing`] are what users read.
//!
//! Besides running: [`graph_view`] (`--graph`), [`vars_view`] (`--vars`),
//! [`doctor`] (`--doctor`), [`completions`] (`--completions`); after a run,
//! [`summary`] (`--summary`), [`profile`] (`--profile`) and [`github`]
//! (GitHub Actions).

pub mod action;
pub mod app;
mod atomic_file;
pub mod build_context;
pub mod cache;
pub mod cli;
pub mod completions;
pub mod config;
mod cwd;
pub mod dir_stamps;
mod dirents;
pub mod dockerignore;
pub mod doctor;
pub mod error;
pub mod exec;
pub mod explain;
pub mod fingerprint;
pub mod github;
pub mod graph;
pub mod graph_view;
pub mod hashing;
pub mod inputs;
pub mod listing;
mod open_dirs;
mod parallel;
pub mod plan_checks;
pub mod profile;
pub mod render;
pub mod report;
pub mod state;
pub mod summary;
pub mod vars_view;
pub mod walk;
pub mod watch;
