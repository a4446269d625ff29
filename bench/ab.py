#!/usr/bin/env python3
"""Interleaved A/B timing: each round runs every command once, in turn, so a
noisy machine slows them alike. Prints the median and 25th percentile (ms).

    bench/ab.py RUNS DIR [--prepare CMD] -- CMD_A ... ';;' CMD_B ... [';;' CMD_C ...]

e.g. bench/ab.py 100 bench/work/trees/gen-10000 -- /tmp/mtr-old stamp ';;' target/release/mtr stamp
Output goes to /dev/null; 3 warm-up rounds are not counted. `--prepare` runs
CMD (a shell command, untimed) before each run, in the directory the run's
`-C DIR` names (else DIR): binaries whose state formats differ each need a
copy of the tree, e.g.

    bench/ab.py 100 . --prepare 'bash ../shared/bench/lib/prep.sh mutate' -- \
        /tmp/mtr-old -C /tmp/a stamp ';;' target/release/mtr -C /tmp/b stamp
"""
import os
import shlex
import statistics
import subprocess
import sys
import time


def main():
    args = sys.argv[3:]
    prepare = None
    if args[:1] == ["--prepare"] and len(args) > 1:
        prepare, args = args[1], args[2:]
    if len(sys.argv) < 5 or args[:1] != ["--"]:
        sys.exit(__doc__)
    runs, where = int(sys.argv[1]), os.path.abspath(sys.argv[2])
    cmds = [shlex.split(c) for c in " ".join(args[1:]).split(";;")]
    dirs = [os.path.join(where, c[c.index("-C") + 1]) if "-C" in c[:-1] else where for c in cmds]
    # A program named by a relative path is found from here, not from DIR.
    cmds = [[os.path.abspath(c[0]) if "/" in c[0] else c[0], *c[1:]] for c in cmds]
    os.chdir(where)
    null = os.open(os.devnull, os.O_WRONLY)
    quiet = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    times = [[] for _ in cmds]
    for r in range(runs + 3):
        for i, c in enumerate(cmds):
            if prepare:
                subprocess.run(prepare, shell=True, cwd=dirs[i], check=True)
            t = time.perf_counter()
            pid = os.posix_spawnp(c[0], c, os.environ, file_actions=quiet)
            os.waitpid(pid, 0)
            if r >= 3:
                times[i].append((time.perf_counter() - t) * 1000)
    for c, t in zip(cmds, times):
        t.sort()
        print(f"{statistics.median(t):9.3f} ms  p25 {t[len(t) // 4]:9.3f}  {' '.join(c)}")


if __name__ == "__main__":
    main()
