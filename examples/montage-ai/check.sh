#!/usr/bin/env bash
# Checks the montage-ai example without Docker or a cluster:
#   1. the Python tests (unittest; pytest too when it is installed),
#   2. the command line (`python -m montage_ai`, exit 2 on an unknown style),
#   3. every kustomization renders offline (`kubectl kustomize`): this
#      example's deploy/k3s and the repository's deploy/buildkit and
#      deploy/registry, with the objects mtr relies on.
# Usage: examples/montage-ai/check.sh   (from any directory)
# Env:   PYTHON=python3.12 to pick the interpreter;
#        REQUIRE_KUBECTL=1 to fail, not skip, when kubectl is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
cd "$here"

# Never leave __pycache__ or .pytest_cache in the tree.
export PYTHONDONTWRITEBYTECODE=1

step() { printf '== %s\n' "$*"; }
fail() { printf 'check.sh: %s\n' "$*" >&2; exit 1; }

step "unittest"
PYTHONPATH=src "$python" -m unittest discover -s tests -q

if "$python" -c 'import pytest' 2>/dev/null; then
    step "pytest"
    "$python" -m pytest -q -p no:cacheprovider
else
    step "pytest: not installed, skipped (pip install 'pytest>=7')"
fi

step "python -m montage_ai"
out="$(PYTHONPATH=src "$python" -m montage_ai run --style hitchcock --clips 12 7.5 20)"
grep -q '^montage-ai plan: style hitchcock, 3 clips' <<<"$out" || fail "unexpected plan output: $out"
status=0
PYTHONPATH=src "$python" -m montage_ai run --style no-such-style >/dev/null 2>&1 || status=$?
[[ $status -eq 2 ]] || fail "an unknown style should exit 2, got $status"

if ! command -v kubectl >/dev/null 2>&1; then
    [[ "${REQUIRE_KUBECTL:-0}" == 1 ]] && fail "kubectl was not found on PATH"
    step "kubectl kustomize: kubectl not found, skipped"
    exit 0
fi

# render DIR PATTERN...: DIR renders, and its output matches every PATTERN.
render() {
    local dir="$1" rendered
    shift
    step "kubectl kustomize ${dir#"$repo"/}"
    rendered="$(kubectl kustomize "$dir")" || fail "kubectl kustomize $dir failed"
    for pattern in "$@"; do
        grep -qE -- "$pattern" <<<"$rendered" || fail "${dir#"$repo"/}: no line matches /$pattern/"
    done
}

# mtr's cluster-deploy swaps this image repository and waits for this Deployment.
render "$here/deploy/k3s" \
    '^kind: Namespace$' '^  name: montage-ai-worker$' '^  namespace: montage-ai$' \
    'image: ghcr\.io/mfahsold/montage-ai:latest$' '^ +name: montage-ai$'
render "$repo/deploy/buildkit" \
    '^  name: buildkitd$' 'image: moby/buildkit:v0\.16\.0$' 'tcp://0\.0\.0\.0:1234' '^    port: 1234$'
render "$repo/deploy/registry" \
    'image: registry:2' 'nodePort: 30500' 'storage: 20Gi' 'REGISTRY_STORAGE_DELETE_ENABLED'
render "$repo/deploy"

step "ok"
