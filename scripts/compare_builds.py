#!/usr/bin/env python3
"""Two builds of quopt side by side: `quopt bench` of each on the same model, interleaved.

    python3 scripts/compare_builds.py BASE_BUILD NEW_BUILD MODEL [--set KEY=VALUE ...] [--rounds 5]
                                      [--steps 2] [--threads 1]

For a change that cannot be switched at run time (a kernel, a tuning constant), build the commit before
it in a second tree (git worktree add ../before HEAD~1; cmake --preset cpu; cmake --build build/cpu
--target quopt) and compare. Each round runs both builds one after the other, the order alternating,
with the same thread count; printed are NEW / BASE for tokens per CPU-second and for peak RSS
(/usr/bin/time), median (min-max) over the rounds.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys


def bench(build, a):
    cmd = ["/usr/bin/time", "-f", "MAXRSS %M", os.path.join(build, "quopt"), "bench", a.model,
           "--steps", str(a.steps), "--warmup", "1"]
    for s in a.set:
        cmd += ["--set", s]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit(f"compare_builds.py: `{' '.join(cmd)}` failed:\n{p.stdout[-3000:]}")
    tok = float(re.search(r"([\d.eE+-]+) tokens per CPU-second", p.stdout).group(1))
    rss = float(re.search(r"MAXRSS (\d+)", p.stdout).group(1))
    return tok, rss


def spread(xs):
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("model")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    tok, rss = [], []
    for r in range(a.rounds):
        order = [a.base, a.new] if r % 2 == 0 else [a.new, a.base]
        res = {b: bench(b, a) for b in order}
        tok.append(res[a.new][0] / res[a.base][0])
        rss.append(res[a.new][1] / res[a.base][1])
        print(f"round {r + 1}: tokens/CPU-s base {res[a.base][0]:.1f}, new {res[a.new][0]:.1f}; "
              f"peak RSS base {res[a.base][1] / 1024:.0f} MB, new {res[a.new][1] / 1024:.0f} MB", flush=True)
    print(f"new / base over {a.rounds} interleaved rounds, {a.threads} thread(s): tokens per CPU-second "
          f"{spread(tok)}, peak RSS {spread(rss)}")


if __name__ == "__main__":
    main()
