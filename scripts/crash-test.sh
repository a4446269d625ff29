#!/bin/sh
# kill -9 of mtr at random moments, many times: the state always loads and
# no task whose last run did not finish is ever skipped (see
# `kill_9_at_random_moments_never_leaves_a_stale_or_broken_state` in
# tests/cli/reliability.rs, which runs 20 trials in `cargo test`).
#
#   scripts/crash-test.sh [TRIALS]        default 300
#   MTR_CRASH_SEED=N scripts/crash-test.sh   replays one sequence
set -eu
cd "$(dirname "$0")/.."
MTR_CRASH_TRIALS="${1:-300}" exec cargo test --release --test cli \
    kill_9_at_random_moments_never_leaves_a_stale_or_broken_state -- --nocapture
