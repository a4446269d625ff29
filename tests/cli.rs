//! Integration tests of the mtr core (SPEC sections 1, 2, 3 and 5): the real
//! binary on temporary projects, one module per feature under `tests/cli/`,
//! all through the builder in `tests/common/`.

#[macro_use]
mod common;

mod cli {
    mod config_errors;
    mod discovery;
    mod exit_status;
    mod listing;
    mod parallel;
    mod templates;
    mod up_to_date;
}
