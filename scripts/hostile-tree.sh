#!/bin/sh
# Inputs too big for a regular test (see tests/cli/hostile.rs for the rest):
#
#  1. a 2 GB input file (sparse): hashed as a stream, peak memory stays flat
#     (measured with /usr/bin/time -v), and the stat cache skips it after;
#  2. that file changing while mtr hashes it and while the task runs: the
#     run is never recorded against content it did not see;
#  3. 100,000 input files: first run, no-op run, one file changed.
#
#   scripts/hostile-tree.sh [WORKDIR]      (default: a new temp dir)
# Needs: a release build (made here), GNU time at /usr/bin/time, awk.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
MTR="${CARGO_TARGET_DIR:-$PWD/target}/release/mtr"
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK"
cd "$WORK"
echo "work dir: $WORK"

fail() { echo "FAIL: $*" >&2; exit 1; }

# Runs mtr under /usr/bin/time; prints "<label>: <seconds> s, <peak KB> KB".
measure() {
    label=$1; shift
    /usr/bin/time -f "%e %M" -o time.out "$MTR" "$@" > mtr.out 2>&1 || { cat mtr.out; fail "$label"; }
    read -r secs kb < time.out
    echo "$label: ${secs} s, peak RSS ${kb} KB"
}

# --- 1. a 2 GB input -------------------------------------------------------
rm -rf big && mkdir big && cd big
cat > montage.toml <<'EOF'
[tasks.big]
inputs = ["big.bin"]
run = "true"
EOF
truncate -s 2G big.bin
measure "2 GB input, hashed" big
kb=$(cut -d' ' -f2 < time.out)
[ "$kb" -lt 100000 ] || fail "peak RSS ${kb} KB while hashing 2 GB: not streaming"
measure "2 GB input, again (stat cache)" big
grep -q "up to date" mtr.out || fail "the unchanged 2 GB input was not skipped"

# --- 2. changing while hashed / while the task runs --------------------------
# A writer appends to the file every 10 ms while mtr hashes it.
( i=0; while [ $i -lt 300 ]; do printf x >> big.bin; sleep 0.01; i=$((i+1)); done ) &
writer=$!
"$MTR" big > change.out 2>&1 || true
wait $writer
echo "while a writer appended: $(grep -E 'kept changing|changed while|✓|✗' change.out | tr '\n' ' ')"
"$MTR" --dry-run big > plan.out 2>&1
grep -q "big: would run" plan.out || { cat change.out plan.out; fail "a fingerprint of content mtr did not run on was recorded"; }
"$MTR" big > /dev/null 2>&1
"$MTR" --dry-run big | grep -q "big: up to date" || fail "not recorded once the file stood still"
# Edited in place (same size) while the task runs.
cat > montage.toml <<'EOF'
[tasks.big]
inputs = ["big.bin"]
run = "sleep 1"
EOF
"$MTR" big > /dev/null 2>&1
( sleep 0.5; printf y | dd of=big.bin bs=1 seek=1000 conv=notrunc 2>/dev/null ) &
"$MTR" -B big > during.out 2>&1
wait
grep -q "changed while \`big\` ran" during.out || { cat during.out; fail "an input edited during the run went unnoticed"; }
"$MTR" --dry-run big | grep -q "big: would run" || fail "the run was recorded though its input changed under it"
echo "an in-place edit during the run: not recorded, runs again"
cd ..

# --- 3. 100,000 input files --------------------------------------------------
rm -rf many && mkdir many && cd many
cat > montage.toml <<'EOF'
[tasks.many]
inputs = ["src/**"]
run = "true"
EOF
i=0; while [ $i -lt 1000 ]; do mkdir -p src/$i; i=$((i+1)); done
awk 'BEGIN { for (i = 0; i < 100000; i++) { f = sprintf("src/%d/%d.txt", i % 1000, i); print i > f; close(f) } }'
measure "100,000 files, first run" many
measure "100,000 files, no-op" many
grep -q "up to date" mtr.out || fail "the unchanged tree was not skipped"
echo changed > src/500/500.txt
measure "100,000 files, one changed" --explain many
grep -q "modified \`src/500/500.txt\`" mtr.out || { cat mtr.out; fail "the changed file was not named"; }
cd ..
echo "all checks passed"
