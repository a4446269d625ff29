//! mtr — a declarative task runner.
//!
//! The pipeline, in the order a run goes through it:
//! [`cli`] → [`config`] (discover, load, vars, templates) → [`graph`] (the
//! plan) → [`exec`] (scheduler, jobs, processes) using [`inputs`],
//! [`hashing`], [`fingerprint`], [`state`] and [`action`]; [`report`] and
//! [`listing`] are what users read.

pub mod action;
pub mod app;
pub mod build_context;
pub mod cli;
pub mod config;
pub mod dockerignore;
pub mod error;
pub mod exec;
pub mod explain;
pub mod fingerprint;
pub mod graph;
pub mod hashing;
pub mod inputs;
pub mod listing;
pub mod render;
pub mod report;
pub mod state;
