#!/usr/bin/env python3
"""The scenarios of mtr's benchmark that the shared peer harness does not
cover (called by bench/run.sh after it):

  memory     peak RSS (/usr/bin/time) of a no-op and a cold run at the
             largest N, next to the peers' no-op
  state      how long loading `.mtr/state` takes inside a no-op run at the
             largest N (perf samples in `Store::load` x task-clock) and how
             big the file is
  commands   what running the step's command and hashing the changed file
             cost on their own (`touch`, `b3sum` of the mutated file), to
             judge the "1 input changed" target; measured back to back, and
             again with mtr's no-op after the same pause as a mutate run
             (the harness's `prep.sh mutate`, run on a scratch file), in
             rounds that alternate with mtr's own mutate runs
  many       1,000 tasks in 10 layers, 10 own input files each: no-op vs
             `git status -uno` and ninja, and every task run (`true`,
             `-B -j 2`) vs ninja running the same graph

Timing uses the shared harness's interleaved hyperfine rounds.  Output: one
JSON file (--out) that bench/report.py turns into docs/benchmarks.md.
"""
import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time


def log(msg):
    print(f"[extra {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, cwd=None, env=None):
    return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=False).stdout.decode(errors="replace")


def max_rss_kb(argv, cwd, env, prepare=None):
    """Peak RSS of one run, in KB (GNU time's %M)."""
    if prepare:
        subprocess.run(prepare, cwd=cwd, env=env, check=False, stdout=subprocess.DEVNULL)
    out = subprocess.run(["/usr/bin/time", "-f", "RSS %M", *argv], cwd=cwd, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False).stderr.decode()
    m = re.findall(r"RSS (\d+)", out)
    return int(m[-1]) if m else None


def memory(tree, mtr, peers, env, runs):
    log(f"memory: {tree}")
    out = {}
    cold = ["rm", "-rf", ".mtr", ".stamp-mtr"]
    subprocess.run([mtr, "stamp"], cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cases = [("mtr no-op", [mtr, "stamp"], None), ("mtr cold", [mtr, "stamp"], cold)]
    for p in peers:
        if p.id in ("ninja", "make-list", "task-checksum", "git-status-uno", "find-stat") and not p.missing:
            cases.append((p.id + " no-op", p.argv, None))
    for name, argv, prep in cases:
        vals = [v for v in (max_rss_kb(argv, tree, env, prep) for _ in range(1 if prep else runs)) if v]
        out[name] = statistics.median(vals) if vals else None
    # leave mtr's state in place for the next steps
    subprocess.run([mtr, "stamp"], cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def file_offset(binary, addr):
    """The file offset of virtual address `addr` (uprobes want offsets)."""
    for line in sh(["readelf", "-lW", binary]).splitlines():
        f = line.split()
        if len(f) >= 6 and f[0] == "LOAD":
            off, vaddr, size = int(f[1], 16), int(f[2], 16), int(f[5], 16)
            if vaddr <= addr < vaddr + size:
                return addr - vaddr + off
    return None


def state_load(tree, mtr, env, runs):
    """How long `Store::load` (read, checksum, decode) takes inside a no-op:
    timed exactly with a uprobe on its entry and return (perf probe, root
    only); else estimated from perf samples."""
    log(f"state load: {tree}")
    st = os.path.join(tree, ".mtr", "state")
    res = {"state_bytes": os.path.getsize(st) if os.path.exists(st) else None}
    if not shutil.which("perf"):
        res["error"] = "perf not installed"
        return res
    syms = [l.split() for l in sh(["nm", mtr]).splitlines() if "5Store4load" in l]
    off = file_offset(mtr, int(syms[0][0], 16)) if syms else None
    if off is not None:
        sh(["perf", "probe", "-q", "-d", "probe_mtr:*"])
        a = sh(["perf", "probe", "-q", "-x", mtr, "-a", f"mtrload=0x{off:x}"])
        b = sh(["perf", "probe", "-q", "-x", mtr, "-a", f"mtrloadret=0x{off:x}%return"])
        data = os.path.join(tree, ".bench", "probe.data")
        times = []
        for _ in range(max(runs, 3) * 2):
            rec = subprocess.run(["perf", "record", "-q", "-e", "probe_mtr:mtrload", "-e",
                                  "probe_mtr:mtrloadret__return", "-o", data, mtr, "stamp"], cwd=tree, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            if rec.returncode != 0:
                break
            ev = [l.split() for l in sh(["perf", "script", "-i", data, "-F", "time,event"], cwd=tree).splitlines()]
            t = [float(x[0].rstrip(":")) for x in ev if len(x) >= 2]
            if len(t) == 2:
                times.append(t[1] - t[0])
        sh(["perf", "probe", "-q", "-d", "probe_mtr:*"])
        try:
            os.remove(data)
        except OSError:
            pass
        if times:
            res["method"] = "uprobe"
            res["load_ms"] = statistics.median(times) * 1000
            return res
        res["probe_error"] = (a + b).strip()[-200:]
    data = os.path.join(tree, ".bench", "perf.data")
    shares, clocks = [], []
    for _ in range(runs):
        rec = subprocess.run(["perf", "record", "-q", "-F", "15000", "--call-graph", "dwarf,16384", "-o", data,
                              mtr, "stamp"], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, check=False)
        if rec.returncode != 0:
            res["error"] = "perf record failed: " + rec.stderr.decode(errors="replace").strip()[-200:]
            return res
        rep = sh(["perf", "report", "-i", data, "--children", "--sort", "sym", "--stdio", "-g", "none"], cwd=tree)
        m = re.search(r"^\s*([\d.]+)%\s+[\d.]+%\s+\[\.\]\s+mtr::state::store::Store::load\s*$", rep, re.M)
        shares.append(float(m.group(1)) if m else 0.0)
        stat = sh(["perf", "stat", "-x", ",", "-e", "task-clock", mtr, "stamp"], cwd=tree, env=env)
        m = re.search(r"^([\d.]+),msec,task-clock", stat, re.M)
        if m:
            clocks.append(float(m.group(1)))
    try:
        os.remove(data)
    except OSError:
        pass
    if shares and clocks:
        res["method"] = "samples"
        res["load_ms"] = statistics.median(shares) / 100 * statistics.median(clocks)
    return res


def samples_of(outs):
    pooled = collections.defaultdict(list)
    for out in outs:
        for pid, d in out.items():
            pooled[pid] += d["times"]
    return {pid: {"median": statistics.median(t), "min": min(t), "max": max(t), "n": len(t)}
            for pid, t in pooled.items() if t}


def rounds(bench, tree, peers, scenario, runs, warmup, nrounds, rawdir, env, logf):
    outs = []
    for r in range(nrounds):
        k = r % len(peers)
        order = peers[k:] + peers[:k]
        out_json = os.path.join(rawdir, f"{os.path.basename(tree)}-{scenario}-r{r}.json")
        outs.append(bench.run_hyperfine(tree, order, scenario, runs, warmup, out_json, env, logf))
    return samples_of(outs)


class Paused:
    """A peer run after the pause `prep.sh mutate` makes before a mutate
    run (its sleep and its four processes), on a scratch file instead of
    the tree's input, so the no-op stays a no-op. A run right after that
    pause is slower than one back to back (colder caches), so the parts of
    the "1 input changed" budget are measured this way too."""

    def __init__(self, bench, peer, scratch):
        self.peer, self.scratch, self.prep = peer, scratch, bench.PREP

    def __getattr__(self, name):
        return getattr(self.peer, name)

    def prepare(self, scenario):
        return ["env", "-C", self.scratch, self.prep, "mutate"]


class Mutated:
    """A peer run after `prep.sh mutate` on the tree's own input, as in the
    harness's mutate scenario, but timed in rounds alternating with the
    budget's parts (see `commands`): the target then compares runs made
    seconds apart, not minutes (this machine's speed drifts)."""

    def __init__(self, bench, peer):
        self.peer, self.prep = peer, bench.PREP

    def __getattr__(self, name):
        return getattr(self.peer, name)

    def prepare(self, scenario):
        return [self.prep, "mutate"]


def pause_scratch(work):
    """A directory `prep.sh mutate` can run in: a slot file to rewrite."""
    scratch = os.path.join(work, "pause")
    os.makedirs(os.path.join(scratch, ".bench"), exist_ok=True)
    with open(os.path.join(scratch, ".bench", "mutate_target"), "w") as f:
        f.write("slot.txt\n")
    with open(os.path.join(scratch, "slot.txt"), "w") as f:
        f.write("# bench-mutation-slot: " + "0" * 20 + "\n")
    return scratch


def commands(bench, tree, mtr, env, rawdir, logf, quick, scratch):
    """The step's command and the hash of the mutated file, alone; then
    both and mtr's no-op, each after a mutate run's pause."""
    log(f"commands: {tree}")
    target = open(os.path.join(tree, ".bench", "mutate_target")).read().strip()
    b3 = bench.B3SUM
    peers = [bench.Peer("touch", "touch .stamp-probe", ["touch", ".stamp-probe"], kind="floor")]
    if b3:
        peers.append(bench.Peer("b3sum-1", "b3sum of the mutated file",
                                [b3, "--no-names", "--no-mmap", "--num-threads", "1", target], kind="floor"))
    runs, nrounds = (5, 1) if quick else (20, 3)
    res = rounds(bench, tree, peers, "noop", runs, 2, nrounds, rawdir, env, logf)
    paused = [Paused(bench, p, scratch) for p in [bench.Peer("mtr", "mtr no-op", [mtr, "stamp"]), *peers]]
    changed = [Mutated(bench, bench.Peer("mtr", "mtr, one input changed", [mtr, "stamp"]))]
    outs, alongside = [], []
    for r in range(nrounds):
        k = r % len(paused)
        name = os.path.basename(tree)
        outs.append(bench.run_hyperfine(tree, paused[k:] + paused[:k], "paused", runs, 2,
                                        os.path.join(rawdir, f"{name}-paused-r{r}.json"), env, logf))
        alongside.append(bench.run_hyperfine(tree, changed, "changed", runs, 1,
                                             os.path.join(rawdir, f"{name}-changed-r{r}.json"), env, logf))
        # Past the racy window: the next no-op trusts the changed file's
        # hash again (its warm-up records it) instead of reading it.
        time.sleep(2.1)
    res["paused"] = samples_of(outs)
    res["alongside"] = samples_of(alongside)
    try:
        os.remove(os.path.join(tree, ".stamp-probe"))
    except OSError:
        pass
    return res


def many(bench, tree, mtr, env, rawdir, logf, quick):
    log(f"many tasks: {tree}")
    names = open(os.path.join(tree, ".bench", "tasks.txt")).read().split()
    ninja = bench.NINJA
    # First runs: mtr records every task, ninja builds its stamps.
    subprocess.run([mtr, "-q", "all"], cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = sh([mtr, "all"], cwd=tree, env=env).strip().splitlines()
    noop = [bench.Peer("mtr", "mtr all (up to date)", [mtr, "-q", "all"]),
            bench.Peer("git-status-uno", "git status --porcelain -uno",
                       [bench.GIT, "status", "--porcelain", "--untracked-files=no"], kind="floor")]
    forced = [bench.Peer("mtr", "mtr -B -j 2 -p <1000 tasks>", [mtr, "-q", "-B", "-j", "2", "-p", *names])]
    if ninja:
        subprocess.run([ninja, "-f", "stamp.ninja", "all"], cwd=tree, env=env, stdout=subprocess.DEVNULL)
        noop.append(bench.Peer("ninja", "ninja (touch stamps, up to date)", [ninja, "-f", "stamp.ninja", "all"]))
        forced.append(bench.Peer("ninja", "ninja -j 2 (true, every edge)", [ninja, "-f", "true.ninja", "-j", "2", "all"]))
    forced_out = sh([mtr, "-B", "-j", "2", *names], cwd=tree, env=env)
    summary = forced_out.strip().splitlines()[-1] if forced_out.strip() else ""
    res = {
        "tasks": len(names),
        "mtr_noop_summary": last[-1] if last else "",
        "mtr_forced_summary": summary,
        "noop": rounds(bench, tree, noop, "noop", 5 if quick else 10, 2, 1 if quick else 3, rawdir, env, logf),
        "forced": rounds(bench, tree, forced, "forced", 2 if quick else 3, 1, 1 if quick else 3, rawdir, env, logf),
    }
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", required=True, help="the shared bench directory (its lib/bench.py is reused)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--mtr", required=True)
    ap.add_argument("--largest", required=True, help="workload name for memory and state load, e.g. gen-100000")
    ap.add_argument("--mutate-trees", nargs="*", default=[])
    ap.add_argument("--many", default=None, help="the many-tasks tree")
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", default=os.environ.get("QUICK") == "1")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.shared, "lib"))
    import bench  # the shared harness: Peer, run_hyperfine, peer paths

    env = dict(os.environ)
    env.pop("CI", None)
    env.update(GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1", LC_ALL="C", NO_COLOR="1")
    rawdir = os.path.join(args.work, "raw", "extra-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(rawdir, exist_ok=True)
    logf = open(os.path.join(rawdir, "hyperfine.log"), "w")
    mtr = os.path.abspath(args.mtr)
    trees = os.path.join(args.work, "trees")
    largest = os.path.join(trees, args.largest)
    n_inputs = json.load(open(os.path.join(largest, ".bench", "inputs.json")))["files"]
    peers = bench.define_peers(n_inputs)
    result = {"mtr_version": sh([mtr, "--version"]).strip(), "largest": args.largest}
    runs = 1 if args.quick else 3
    result["memory"] = memory(largest, mtr, peers, env, runs)
    result["state"] = state_load(largest, mtr, env, runs)
    result["commands"] = {}
    scratch = pause_scratch(args.work)
    for w in args.mutate_trees:
        result["commands"][w] = commands(bench, os.path.join(trees, w), mtr, env, rawdir, logf,
                                         args.quick, scratch)
    if args.many:
        result["many"] = many(bench, os.path.join(trees, args.many), mtr, env, rawdir, logf, args.quick)
    result["raw"] = os.path.relpath(rawdir, args.work)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
