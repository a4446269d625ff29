#!/usr/bin/env bash
# mtr's benchmark: how fast is the up-to-date check, next to make, ninja,
# go-task, just, turbo (when installed) and the git/find/b3sum floors?
# Writes docs/benchmarks.md.  Run it as `mtr bench` (builds first) or:
#
#   bench/run.sh                     everything (~15 min on 2 cores, first run
#                                    adds ~3 min to generate 1.5 GB of trees)
#   QUICK=1 bench/run.sh             smoke test: 1 round, 1-2 runs each
#   SIZES="100 10000" bench/run.sh   other tree sizes (the largest gets the
#                                    memory and state-load measurements)
#   MTR=/path/to/mtr bench/run.sh    another binary (default: the release build)
#
# What runs, in order:
#   1. peers installed into bench/work/peers by the shared harness
#      (../shared/bench/lib/setup_peers.sh: PyPI ninja, go-task-bin,
#      rust-just; npm turbo; cargo b3sum; apt hyperfine)
#   2. trees: ../shared/bench/gen_tree.py N (+ prepare_workload.py, which also
#      renders its montage.toml template) and bench/gen_many.py, all under
#      bench/work/trees (git-ignored; reused while their parameters match)
#   3. ../shared/bench/lib/bench.py with MTR=...: no-op, 1 input changed and
#      cold, every tool interleaved in hyperfine rounds
#   4. bench/extra.py: peak memory, state load time, the command and the
#      one-file hash alone, and the 1,000-task graph
#   5. bench/report.py: docs/benchmarks.md from both result files
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${BENCH_SHARED:-$ROOT/../shared/bench}
WORK=${BENCH_WORK:-$ROOT/bench/work}
SIZES=${SIZES:-"100 1000 10000 100000"}
OUT=${BENCH_REPORT:-$ROOT/docs/benchmarks.md}
export BENCH_PEERS_DIR=${BENCH_PEERS_DIR:-$WORK/peers}

say() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

[ -f "$SHARED/lib/bench.py" ] || { say "the shared harness is not at $SHARED (set BENCH_SHARED)"; exit 1; }
if [ -z "${MTR:-}" ]; then
  say "building the release binary (a no-op when it is up to date)"
  (cd "$ROOT" && cargo build --release --locked) >&2
  MTR=${CARGO_TARGET_DIR:-$ROOT/target}/release/mtr
fi
MTR=$(cd "$(dirname "$MTR")" && pwd)/$(basename "$MTR")
"$MTR" --version 2>/dev/null | grep -q '^mtr ' || { say "$MTR --version does not say mtr"; exit 1; }
export MTR
mkdir -p "$WORK/trees" "$WORK/results"

say "peers: $BENCH_PEERS_DIR"
bash "$SHARED/lib/setup_peers.sh" 2>&1 | sed 's/^/  /' >&2

workloads=()
for n in $SIZES; do
  w=gen-$n
  say "$w: generating (or reusing) the $n-file tree"
  python3 "$SHARED/gen_tree.py" "$n" "$WORK/trees/$w" >&2
  python3 "$SHARED/lib/prepare_workload.py" "$WORK/trees/$w" >&2
  workloads+=("$w")
done
say "many: generating (or reusing) the 1,000-task tree"
python3 "$ROOT/bench/gen_many.py" "$WORK/trees/many" >&2

largest=${workloads[${#workloads[@]}-1]}
say "peer harness: ${workloads[*]} (mtr: $MTR)"
python3 "$SHARED/lib/bench.py" --workdir "$WORK/trees" --workloads "${workloads[@]}" \
  --out "$WORK/results/peers.md" --json-out "$WORK/results/peers.json" >/dev/null
say "extra scenarios"
python3 "$ROOT/bench/extra.py" --shared "$SHARED" --work "$WORK" --mtr "$MTR" \
  --largest "$largest" --mutate-trees "${workloads[@]}" --many many --out "$WORK/results/extra.json"
python3 "$ROOT/bench/report.py" --peers "$WORK/results/peers.json" --extra "$WORK/results/extra.json" \
  --notes "$ROOT/bench/notes.md" --out "$OUT"
say "wrote $OUT"
