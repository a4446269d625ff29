//! Integration tests of the mtr core (SPEC sections 1, 2, 3 and 5): the real
//! binary on temporary projects, one module per feature under `tests/cli/`,
//! all through the builder in `tests/common/`.
//!
//! Snapshots live in `tests/cli/snapshots/`; after a deliberate change of
//! what users read, `INSTA_UPDATE=always cargo test --test cli` rewrites
//! them, and `git diff` is the review.

#[macro_use]
mod common;

mod cli {
    mod config_errors;
    mod discovery;
    mod exit_status;
    mod hostile;
    mod listing;
    mod live;
    mod output;
    mod parallel;
    mod reliability;
    mod secrets;
    mod state_faults;
    mod templates;
    mod up_to_date;
}
