#!/usr/bin/env bash
# Remote cache benchmark (README "Remote cache"): restoring a 50 MB output
# tree from a registry on loopback versus re-running a task that takes 10 s.
#
#   bench/cache/run.sh [MTR_BINARY]      (default: target/release/mtr)
#
# Starts Debian's `docker-registry` on a free loopback port with its storage
# under bench/cache/work/, makes two checkouts of one project ("ci" and
# "laptop", each with its own .mtr/), and times:
#   1. ci:     `mtr build`             the task runs (10 s) and pushes
#   2. laptop: `mtr build`             restored from the registry
#   3. laptop: `mtr build --no-cache`  with its outputs deleted: a local run
# Each restore is repeated RUNS times (outputs deleted in between).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MTR=${1:-${MTR:-$ROOT/target/release/mtr}}
MTR=$(realpath "$MTR")
RUNS=${RUNS:-5}
WORK=$ROOT/bench/cache/work
REGISTRY=$(command -v docker-registry || echo /usr/bin/docker-registry)
[ -x "$REGISTRY" ] || { echo "bench: docker-registry is not installed (apt-get install docker-registry)" >&2; exit 1; }
[ -x "$MTR" ] || { echo "bench: no mtr binary at $MTR (cargo build --release)" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/storage
http:
  addr: 127.0.0.1:$PORT
EOF
"$REGISTRY" serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
trap 'kill $REGISTRY_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break
    sleep 0.1
done

# 50 MiB of incompressible output: 50 directories of 10 files of 100 KiB.
make_checkout() {
    local dir=$1
    mkdir -p "$dir/src"
    echo "input" >"$dir/src/input.txt"
    cat >"$dir/montage.toml" <<EOF
[cache]
remote = "oci://127.0.0.1:$PORT/bench/mtr-cache"
insecure = true

[tasks.build]
inputs = ["src/**"]
outputs = ["out"]
run = [
    "sleep 10",
    "for d in \$(seq 50); do mkdir -p out/d\$d; for f in \$(seq 10); do head -c 102400 /dev/urandom > out/d\$d/f\$f.bin; done; done",
    "echo built 500 files",
]
EOF
}

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

make_checkout "$WORK/ci"
make_checkout "$WORK/laptop"
export DOCKER_CONFIG=$WORK/docker-config NO_COLOR=1

t0=$(now); (cd "$WORK/ci" && "$MTR" build -q); t1=$(now)
push_run=$(elapsed "$t0" "$t1")
size=$(du -sm "$WORK/ci/out" | cut -f1)

restores=()
for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/laptop/out" "$WORK/laptop/.mtr"
    t0=$(now); (cd "$WORK/laptop" && "$MTR" build -q >/dev/null); t1=$(now)
    restores+=("$(elapsed "$t0" "$t1")")
done
cmp -s <(cd "$WORK/ci/out" && find . -type f -exec sha256sum {} + | sort) \
       <(cd "$WORK/laptop/out" && find . -type f -exec sha256sum {} + | sort) \
    || { echo "bench: restored tree differs" >&2; exit 1; }

rm -rf "$WORK/laptop/out" "$WORK/laptop/.mtr"
t0=$(now); (cd "$WORK/laptop" && "$MTR" build -q --no-cache >/dev/null); t1=$(now)
local_run=$(elapsed "$t0" "$t1")

sorted=$(printf '%s\n' "${restores[@]}" | sort -n)
median=$(echo "$sorted" | sed -n "$(((RUNS + 1) / 2))p")
echo "output tree:                ${size} MiB in 500 files"
echo "run + push (ci):            ${push_run} s"
echo "re-run locally (--no-cache): ${local_run} s"
echo "restore from registry:      median ${median} s of ${RUNS} (all: ${restores[*]})"
