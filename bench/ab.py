#!/usr/bin/env python3
"""Interleaved A/B timing: each round runs every command once, in turn, so a
noisy machine slows them alike. Prints the median and 25th percentile (ms).

    bench/ab.py RUNS DIR -- CMD_A ... ';;' CMD_B ... [';;' CMD_C ...]

e.g. bench/ab.py 100 bench/work/trees/gen-10000 -- /tmp/mtr-old stamp ';;' target/release/mtr stamp
Output goes to /dev/null; 3 warm-up rounds are not counted.
"""
import os
import shlex
import statistics
import sys
import time


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit(__doc__)
    runs, where = int(sys.argv[1]), sys.argv[2]
    cmds = [shlex.split(c) for c in " ".join(sys.argv[4:]).split(";;")]
    # A program named by a relative path is found from here, not from DIR.
    cmds = [[os.path.abspath(c[0]) if "/" in c[0] else c[0], *c[1:]] for c in cmds]
    os.chdir(where)
    null = os.open(os.devnull, os.O_WRONLY)
    quiet = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    times = [[] for _ in cmds]
    for r in range(runs + 3):
        for i, c in enumerate(cmds):
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
