#!/usr/bin/env python3
"""Regenerates the measured tables of docs/benchmarks.md by running each benchmark command.

    python3 scripts/benchmarks.py [--quick] [--only SECTION,...] [--build build/cpu]
                                  [--native-build build/native] [--rounds N]

Each table of the page sits between `<!-- generated:NAME -->` and `<!-- end:NAME -->`; this script
replaces exactly those blocks (the prose around them is kept) with what the commands print now, each
with the command line, the machine's core count and load average, the date and the git revision.
Sections: throughput, native, threads, optimizers, checkpoint, parallel, quant, torch, torch_gemm. `torch` and
`torch_gemm` run only when named in --only (they need PyTorch: tests/reference/bench_vs_torch.py creates its
own virtual environment, --venv); `native` runs when --native-build points at a build configured with
-DQUOPT_NATIVE=ON. --quick runs fewer steps and rounds (minutes instead of tens of minutes; the
ratios are noisier). Run it from the repository root on a machine that is otherwise idle.
"""
import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "benchmarks.md")
MPIRUN = ["mpirun", "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])


def run(cmd, env=None, unset=()):
    """Runs cmd (a list) from the repository root with env added and the variables in unset removed;
    returns stdout + stderr, failing loudly."""
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    full_env.update(env or {})
    p = subprocess.run(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit(f"benchmarks.py: `{' '.join(cmd)}` failed with status {p.returncode}:\n{p.stdout[-4000:]}")
    return p.stdout


def shown(cmd, env=None):
    prefix = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    return (prefix + " " if prefix else "") + " ".join(cmd)


def provenance():
    rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                         text=True).stdout.strip() or "unknown"
    load = os.getloadavg()[0]
    return (f"Measured {datetime.date.today().isoformat()} at {rev} on {os.cpu_count()} cores, "
            f"load average {load:.1f} at the start.")


def ratio_summary(values):
    v = sorted(values)
    return f"{statistics.median(v):.2f} ({v[0]:.2f}-{v[-1]:.2f})"


# ---- quopt bench --------------------------------------------------------------------------------
BENCH_MODELS = [  # (model file, extra --set arguments, steps) ; steps are the full run's
    ("inputs/models/olmo2-tiny.toml", [], 5),
    ("inputs/models/olmo2-small.toml", ["train.batch_size=8", "train.micro_batch_size=8"], 2),
]


def bench_cmd(quopt, model, sets, steps):
    cmd = [quopt, "bench", model, "--steps", str(steps)]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def parse_bench(out):
    num = r"([\d.eE+-]+)"
    g = lambda pat: float(re.search(pat, out).group(1))
    return {
        "params": int(re.search(r"\((\d+) parameters\)", out).group(1)),
        "tokens_step": int(re.search(r"(\d+) tokens/step", out).group(1)),
        "tok_s": g(num + r" tokens/s,"),  # not "tokens/step"
        "tok_cpu_s": g(num + r" tokens per CPU-second"),
        "gemm_share": g(r"\(" + num + r"% of the step\)"),
        "gemm_ratio": g(r"bare sgemm rate\): " + num),
    }


def section_throughput(a):
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    rows, cmds = [], []
    for model, sets, steps in BENCH_MODELS:
        steps = max(1, steps // 2) if a.quick else steps
        cmd = bench_cmd(os.path.join(a.build, "quopt"), model, sets, steps)
        cmds.append(shown(cmd, env))
        r = parse_bench(run(cmd, env))
        name = os.path.basename(model)[:-5]
        rows.append(f"| {name} | {r['params'] / 1e6:.2f}M | {r['tokens_step']} | {r['tok_s']:.0f} | "
                    f"{r['tok_cpu_s']:.0f} | {r['gemm_share']:.0f}% | {r['gemm_ratio']:.2f} |")
    return "\n".join([
        "    " + "\n    ".join(cmds), "",
        "| model | params | tokens/step | tokens/s | tokens/CPU-s | GEMM share of the step | "
        "in-training GEMM rate / bare sgemm rate |",
        "|---|---|---|---|---|---|---|", *rows])


def section_native(a):
    if not a.native_build:
        sys.exit("benchmarks.py: the native section needs --native-build DIR (configured with -DQUOPT_NATIVE=ON)")
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    rounds = 3 if a.quick else a.rounds
    rows, cmds = [], []
    for model, sets, steps in BENCH_MODELS:
        steps = max(1, steps // 2) if a.quick else steps
        base_cmd = bench_cmd(os.path.join(a.build, "quopt"), model, sets, steps)
        nat_cmd = bench_cmd(os.path.join(a.native_build, "quopt"), model, sets, steps)
        cmds += [shown(base_cmd, env), shown(nat_cmd, env)]
        ratios = []
        for i in range(rounds):  # interleaved, the order alternating
            order = [base_cmd, nat_cmd] if i % 2 == 0 else [nat_cmd, base_cmd]
            res = {tuple(c): parse_bench(run(c, env))["tok_cpu_s"] for c in order}
            ratios.append(res[tuple(nat_cmd)] / res[tuple(base_cmd)])
        rows.append(f"| {os.path.basename(model)[:-5]} | {ratio_summary(ratios)} |")
    return "\n".join([
        "    " + "\n    ".join(cmds), "",
        f"Tokens per CPU-second of the native build as a ratio to the default build, median (min-max) over "
        f"{rounds} interleaved pairs, one thread:", "",
        "| model | native / default |", "|---|---|", *rows])


# The libraries' own idle-thread behaviour, spelt out (so that quopt does not replace it): libgomp spins
# 300,000 iterations when OMP_WAIT_POLICY is unset (its env.c), OpenBLAS 2^28 cycles (THREAD_TIMEOUT 28).
LIBRARY_DEFAULTS = {"OMP_WAIT_POLICY": "active", "GOMP_SPINCOUNT": "300000", "OPENBLAS_THREAD_TIMEOUT": "28"}
IDLE_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")


def section_threads(a):
    rounds = 3 if a.quick else a.rounds
    one = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    two = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    variants = [("1", one), ("2 quopt", two), ("2 defaults", {**two, **LIBRARY_DEFAULTS})]
    rows, cmds = [], []
    for model, sets, steps in BENCH_MODELS:
        steps = max(1, steps // 2) if a.quick else steps
        cmd = bench_cmd(os.path.join(a.build, "quopt"), model, sets, steps)
        cmds += [shown(cmd, env) for _, env in variants]
        res = {name: [] for name, _ in variants}
        for i in range(rounds):  # interleaved, the order rotating
            for name, env in variants[i % 3:] + variants[:i % 3]:
                res[name].append(parse_bench(run(cmd, env, unset=IDLE_VARS)))
        speed = lambda v: [r["tok_s"] / o["tok_s"] for r, o in zip(res[v], res["1"])]
        cpu = [q["tok_cpu_s"] / d["tok_cpu_s"] for q, d in zip(res["2 quopt"], res["2 defaults"])]
        rows.append(f"| {os.path.basename(model)[:-5]} | {ratio_summary(speed('2 quopt'))} | "
                    f"{ratio_summary(speed('2 defaults'))} | {ratio_summary(cpu)} |")
    return "\n".join([
        "    " + "\n    ".join(cmds), "",
        f"Median (min-max) over {rounds} interleaved rounds; \"quopt's\" runs leave the idle-thread variables "
        "unset (quopt sets OMP_WAIT_POLICY=passive, OPENBLAS_THREAD_TIMEOUT=4), \"defaults\" spell out the "
        "libraries' own values:", "",
        "| model | tokens/s, 2 threads / 1 thread, quopt's settings | same, the libraries' defaults "
        "| tokens/CPU-s at 2 threads, quopt's / defaults |", "|---|---|---|---|", *rows])


def parse_optimizer_table(out):
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s*(adamw|muon|scion|shampoo|soap|psgd)\s+([\d.]+)\s+([\d.]+)\s+\|\s+"
                     r"([\d.-]+)\s+([\d.-]+)\s+([\d.-]+)\s+([\d.-]+)\s+([\d.-]+)\s+\|\s+([\d.]+)\s+([\d.]+) MB", line)
        if m:
            rows.append(m.groups())
    if not rows:
        sys.exit("benchmarks.py: could not read the optimizer table from:\n" + out[-3000:])
    return rows


# The study's own batch (inputs/runs/paper-base.toml: 256 sequences of the model's seq_len per step).
STUDY_SEQUENCES = 256


def optimizer_table(cmd, env, tokens, study_tokens):
    """Runs `quopt bench --optimizers all`; returns markdown rows with the ratio at the bench's batch and
    the ratio projected to study_tokens per step (see section_optimizers)."""
    out = run(cmd, env)
    rows = parse_optimizer_table(out)
    adamw = next(r for r in rows if r[0] == "adamw")
    grad_a = float(adamw[3])          # AdamW's gradient share of its own step
    opt_a = float(adamw[2]) - grad_a  # AdamW's optimizer share
    k = study_tokens / tokens
    lines = []
    for name, _, ratio, grad, pre, root, comm, rest, _, state in rows:
        opt_x = float(ratio) - float(grad)
        projected = (k * grad_a + opt_x) / (k * grad_a + opt_a)
        lines.append(f"| {name} | {float(ratio):.2f} | {projected:.3f} | {float(grad):.2f} | {float(pre):.2f} | "
                     f"{float(root):.2f} | {float(comm):.2f} | {float(rest):.2f} | {float(state):.2f} MB |")
    return lines


def section_optimizers(a):
    # Every optimizer at its defaults (inputs/optimizers/*.toml are the references' defaults; Shampoo
    # preconditions every step with 1024-wide blocks, PSGD updates its preconditioner at every step as in
    # its first 500 steps), AdamW's whole step the unit. The bench runs one 2048-token micro-batch per
    # step (olmo2-small: 8 x 256, olmo2-50m: 1 x 2048); the study's steps are 256 sequences (65,536
    # tokens for olmo2-small, 524,288 for olmo2-50m) accumulated over micro-batches, so the gradient's
    # time grows k-fold while the optimizer's does not: the projected column is
    # (k grad_AdamW + opt_X) / (k grad_AdamW + opt_AdamW). A direct measurement at the study's batch on
    # olmo2-small checks the projection (not in --quick). --quick runs olmo2-small only.
    models = [("inputs/models/olmo2-small.toml", 256, ["train.batch_size=8", "train.micro_batch_size=8"])]
    if not a.quick:
        models.append(("inputs/models/olmo2-50m.toml", 2048, ["train.batch_size=1", "train.micro_batch_size=1"]))
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    quopt = os.path.join(a.build, "quopt")
    parts = []
    head = ("| {} | step / AdamW | at the study's batch (projected) | grad | precond | root | comm | rest "
            "| state |")
    for model, seq, sets in models:
        # SOAP refreshes its eigenbases every 10 steps (precondition_frequency): a full run times 10 steps
        # so that its ratio includes one refresh; --quick's single step does not.
        cmd = [quopt, "bench", model, "--optimizers", "all", "--steps", "1" if a.quick else "10", "--warmup", "1"]
        for s_ in sets:
            cmd += ["--set", s_]
        tokens = 2048
        rows = optimizer_table(cmd, env, tokens, STUDY_SEQUENCES * seq)
        name = os.path.basename(model)[:-5]
        parts.append("\n".join([f"    {shown(cmd, env)}", "",
                                f"{name}: {tokens} tokens per bench step; the study's step is "
                                f"{STUDY_SEQUENCES * seq:,} tokens.", "", head.format(name),
                                "|---|---|---|---|---|---|---|---|---|", *rows]))
    if not a.quick:
        # Direct: olmo2-small at the study's batch (256 x 256 tokens, micro-batches of 8), one timed step.
        env2 = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
        cmd = [quopt, "bench", models[0][0], "--optimizers", "all", "--steps", "1", "--warmup", "1",
               "--set", f"train.batch_size={STUDY_SEQUENCES}", "--set", "train.micro_batch_size=8"]
        tokens = STUDY_SEQUENCES * 256
        rows = optimizer_table(cmd, env2, tokens, tokens)
        direct = head.replace("at the study's batch (projected)", "with AdamW's gradient time")
        parts.append("\n".join([f"    {shown(cmd, env2)}", "",
                                f"olmo2-small measured at the study's batch ({tokens} tokens per step, 2 threads, one "
                                "timed step; the second column takes every optimizer's gradient time as AdamW's, "
                                "which removes the gradient's run-to-run noise):", "",
                                direct.format("olmo2-small, study batch"), "|---|---|---|---|---|---|---|---|---|",
                                *rows]))
    return "\n\n".join(parts)


def section_checkpoint(a):
    rounds = "3" if a.quick else str(a.rounds)
    bench = os.path.join(a.build, "tests", "perf", "bench_checkpoint")
    out_rows, cmds = [], []
    for np_ in (1, 2):
        cmd = MPIRUN + ["-np", str(np_), bench, "--rounds", rounds]
        cmds.append(shown(cmd))
        out = run(cmd)
        for m in re.finditer(r"^(\S+): (\d+) parameters.*?, ([\d.]+) MB.*?\n.*?\n.*?\n.*?median ([\d.]+), min ([\d.]+), "
                             r"max ([\d.]+)", out, re.M):
            name, _, mb, med, lo, hi = m.groups()
            out_rows.append(f"| {name} | {float(mb):.0f} MB | {np_} | {float(med):.2f} ({float(lo):.2f}-{float(hi):.2f}) |")
    return "\n".join([
        "    " + "\n    ".join(cmds), "",
        "| model (+ AdamW state) | file | ranks | checkpoint bandwidth / plain fwrite+fsync, median (min-max) |",
        "|---|---|---|---|", *out_rows])


def section_parallel(a):
    cmd = ["tests/perf/bench_parallel.sh", os.path.join(a.build, "quopt")]
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = run(cmd, env)
    rows = []
    for m in re.finditer(r"^(np=.*?)\s+(\d+) tokens/s\s+ratio to np=1\s+([\d.]+)\s+MPI time.*\(\s*([\d.]+)%\)", out, re.M):
        name, _, ratio, mpi = m.groups()
        rows.append(f"| {name.strip()} | {float(ratio):.2f} | {float(mpi):.1f}% |")
    return "\n".join([f"    {shown(cmd, env)}", "", "| run | tokens/s ratio to np=1 | time in MPI |", "|---|---|---|",
                      *rows])


def section_quant(a):
    cmd = [os.path.join(a.build, "tests", "perf", "bench_quant"), "2048", "2048", "3" if a.quick else "5"]
    out = run(cmd, {"OMP_NUM_THREADS": "1"})
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s+(.+?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", line)
        if m and not m.group(1).startswith("memcpy"):
            rows.append(f"| {m.group(1)} | {float(m.group(4)):.3f} |")
    return "\n".join([f"    OMP_NUM_THREADS=1 {' '.join(cmd)}", "", "| kernel | / memcpy |", "|---|---|", *rows])


def section_torch(a):
    cmd = [sys.executable, "tests/reference/bench_vs_torch.py", "--build", a.build] + (["--quick"] if a.quick else [])
    return run(cmd).strip("\n")


def section_torch_gemm(a):
    models = "inputs/models/olmo2-small.toml" + ("" if a.quick else ",inputs/models/olmo2-50m.toml")
    cmd = [sys.executable, "tests/reference/bench_vs_torch.py", "--build", a.build, "--gemm", "--models", models,
           "--threads", "1" if a.quick else "1,2", "--rounds", "3" if a.quick else str(a.rounds)]
    return f"    {shown(['python3'] + cmd[1:])}\n\n" + run(cmd).strip().split("\n\n", 1)[-1]


SECTIONS = {
    "throughput": section_throughput,
    "native": section_native,
    "threads": section_threads,
    "optimizers": section_optimizers,
    "checkpoint": section_checkpoint,
    "parallel": section_parallel,
    "quant": section_quant,
    "torch": section_torch,
    "torch_gemm": section_torch_gemm,
}
DEFAULT = ["throughput", "native", "threads", "optimizers", "checkpoint", "parallel", "quant"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer steps and rounds")
    p.add_argument("--only", default="", help="comma-separated sections (default: all but torch)")
    p.add_argument("--build", default="build/cpu")
    p.add_argument("--native-build", default="", help="a build with -DQUOPT_NATIVE=ON (for the native section)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds where a section compares two runs")
    a = p.parse_args()
    names = [s for s in a.only.split(",") if s] or [s for s in DEFAULT if s != "native" or a.native_build]
    for n in names:
        if n not in SECTIONS:
            sys.exit(f"benchmarks.py: unknown section '{n}'; choose from {', '.join(SECTIONS)}")
    page = open(PAGE).read()
    for n in names:
        begin, end = f"<!-- generated:{n} -->", f"<!-- end:{n} -->"
        if begin not in page or end not in page:
            sys.exit(f"benchmarks.py: {PAGE} has no {begin} ... {end} block for section {n}")
        print(f"==> {n}", flush=True)
        body = SECTIONS[n](a)
        head, rest = page.split(begin, 1)
        _, tail = rest.split(end, 1)
        page = f"{head}{begin}\n{provenance()}\n\n{body}\n{end}{tail}"
        open(PAGE, "w").write(page)  # after each section, so an interrupted run keeps what it measured
        print(body, flush=True)


if __name__ == "__main__":
    main()
