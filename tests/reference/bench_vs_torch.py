#!/usr/bin/env python3
"""quopt against PyTorch (eager and torch.compile) on the same OLMo2 shapes, side by side.

Each round runs quopt's `quopt bench`, the PyTorch reference (olmo2_torch.py) in eager mode and the
same under torch.compile, one after another in an order that rotates from round to round, each in its
own process pinned to the same cores (taskset) with the same thread count (OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, torch.set_num_threads). Every run trains AdamW steps on random tokens with the
model file's seq_len and the same batch and micro-batch; warm-up steps (torch.compile's compilation
among them) are not timed. Printed per model and thread count: tokens per CPU-second and per
wall-second of each, quopt's ratio to each with min-max over the rounds, and the peak RSS ratio.

PyTorch is needed only here. `--venv DIR` (default ~/.cache/quopt-torch-bench) is created with torch
from PyPI when it lacks it; nothing in the build or the tests uses it.

    python3 tests/reference/bench_vs_torch.py --build build/cpu            # 20k, tiny, small, 50m at 1 and 2 threads
    python3 tests/reference/bench_vs_torch.py --build build/cpu --quick    # tiny and small, 1 thread, 3 rounds
    python3 tests/reference/bench_vs_torch.py --build build/cpu --gemm     # the step's GEMMs alone: OpenBLAS vs torch's BLAS

--gemm compares the BLAS libraries themselves: `quopt bench --gemm-shapes` times cblas_sgemm (OpenBLAS)
on every GEMM shape of the model's training step, as many calls as the step makes, and a PyTorch
process times torch.matmul (its BLAS: MKL in the x86 wheels) on the same shapes and counts; the two
alternate over the rounds and the ratio is of the aggregate rates (all flops over all time).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(args):
    """One PyTorch run (inside the venv): prints a JSON line."""
    import resource

    import torch

    sys.path.insert(0, str(HERE))
    from olmo2_torch import Olmo2, load_shape

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    s = load_shape(args.model)
    model = Olmo2(s)
    # quopt's AdamW defaults (docs/config.md); the cost does not depend on them.
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    step_fn = model if args.worker == "eager" else torch.compile(model)
    mb, accum = args.micro_batch, args.batch // args.micro_batch
    tokens = torch.randint(0, s.vocab_size, (mb, s.seq_len))
    targets = torch.randint(0, s.vocab_size, (mb, s.seq_len))

    def step():
        for _ in range(accum):
            (step_fn(tokens, targets) / accum).backward()
        opt.step()
        opt.zero_grad(set_to_none=False)

    for _ in range(args.warmup):
        step()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    n = args.steps * args.batch * s.seq_len
    print(json.dumps({"tok_s": n / wall, "tok_cpu_s": n / cpu,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def gemm_worker(args):
    """Times torch.matmul on the shapes of args.shapes (JSON list of [m, n, k, batch, ta, tb, calls])."""
    import torch

    torch.set_num_threads(args.threads)
    flops = seconds = 0.0
    for m, n, k, b, ta, tb, calls in json.loads(Path(args.shapes).read_text()):
        a = torch.rand(b, k, m) - 0.5 if ta else torch.rand(b, m, k) - 0.5
        w = torch.rand(b, n, k) - 0.5 if tb else torch.rand(b, k, n) - 0.5
        a, w = (a.transpose(1, 2) if ta else a), (w.transpose(1, 2) if tb else w)
        c = torch.empty(b, m, n)
        torch.bmm(a, w, out=c)  # untimed first call
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.bmm(a, w, out=c)
        seconds += time.perf_counter() - t0
        flops += 2.0 * m * n * k * b * calls
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    print(json.dumps({"gflops": flops / seconds * 1e-9, "blas": blas.group(1) if blas else "unknown"}))


def run_gemm(a, py, model, threads, cores, batch, mb, shapes_file):
    """One quopt --gemm-shapes run and one torch run on its shapes: (OpenBLAS bare, in-training, torch)."""
    cmd = ["taskset", "-c", cores, a.quopt, "bench", model, "--steps", "1", "--warmup", "1", "--gemm-shapes",
           "--set", f"train.batch_size={batch}", "--set", f"train.micro_batch_size={mb}"]
    out = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise SystemExit(f"quopt bench failed:\n{text}")
    shapes = [[int(x) for x in ln.split()[1:8]] for ln in text.splitlines() if ln.startswith("gemm ")]
    bare = float(re.search(r"bare cblas_sgemm, same shapes and call counts: ([0-9.]+)", text).group(1))
    inside = float(re.search(r"([0-9.]+) GFLOP/s over \d+ calls", text).group(1))
    Path(shapes_file).write_text(json.dumps(shapes))
    tcmd = ["taskset", "-c", cores, str(py), __file__, "--worker", "gemm", "--shapes", shapes_file,
            "--threads", str(threads)]
    tout = subprocess.run(tcmd, env=thread_env(threads), capture_output=True, text=True)
    if tout.returncode != 0:
        raise SystemExit(f"torch gemm failed:\n{tout.stdout}{tout.stderr[-4000:]}")
    r = json.loads([ln for ln in tout.stdout.splitlines() if ln.startswith("{")][-1])
    return bare, inside, r["gflops"], r["blas"]


def cases(a, models):
    """(model file, tokens per step, batch, micro-batch, threads, cores) of each row, in table order."""
    for model in models.split(","):
        seq = tomllib.loads(Path(model).read_text())["model"].get("seq_len", 64)
        batch = a.batch or min(8, max(1, 2048 // seq))
        mb = a.micro_batch or min(batch, max(1, 2048 // seq))
        for threads in (int(t) for t in a.threads.split(",")):
            yield model, batch * seq, batch, mb, threads, "0" if threads == 1 else f"0-{threads - 1}"


def gemm_main(a, py, models):
    import tempfile

    print("| model | threads | OpenBLAS, bare (GFLOP/s) | OpenBLAS inside quopt's step | torch.matmul "
          "| torch / OpenBLAS bare |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model, _, batch, mb, threads, cores in cases(a, models):
            res = [run_gemm(a, py, model, threads, cores, batch, mb, f"{tmp}/shapes.json") for _ in range(a.rounds)]
            med = lambda i: statistics.median(x[i] for x in res)
            print(f"| {Path(model).stem} | {threads} | {med(0):.1f} | {med(1):.1f} | {med(2):.1f} ({res[0][3]}) | "
                  f"{spread([x[2] / x[0] for x in res])} |", flush=True)


def ensure_venv(venv):
    py = venv / "bin" / "python3"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(py), "-c", "import torch"], capture_output=True).returncode != 0:
        print(f"installing torch into {venv} (PyPI) ...", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "torch", "numpy"], check=True)
    return py


def run_quopt(a, model, threads, cores, batch, mb):
    cmd = ["taskset", "-c", cores, "/usr/bin/time", "-f", "MAXRSS %M", a.quopt, "bench", model,
           "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--set", f"train.batch_size={batch}", "--set", f"train.micro_batch_size={mb}"]
    out = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise SystemExit(f"quopt bench failed:\n{text}")
    tok_s = float(re.search(r"([0-9.eE+-]+) tokens/s,", text).group(1))
    tok_cpu = float(re.search(r"([0-9.eE+-]+) tokens per CPU-second", text).group(1))
    rss = float(re.search(r"MAXRSS (\d+)", text).group(1)) / 1024
    return {"tok_s": tok_s, "tok_cpu_s": tok_cpu, "rss_mb": rss}


def run_torch(a, py, mode, model, threads, cores, batch, mb):
    cmd = ["taskset", "-c", cores, "/usr/bin/time", "-f", "MAXRSS %M", str(py), __file__, "--worker", mode,
           "--model", model, "--threads", str(threads), "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--batch", str(batch), "--micro-batch", str(mb)]
    out = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"torch {mode} failed:\n{out.stdout}{out.stderr[-4000:]}")
    r = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])
    r["rss_mb"] = float(re.search(r"MAXRSS (\d+)", out.stderr).group(1)) / 1024
    return r


def thread_env(threads):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def spread(xs):
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", choices=["eager", "compile", "gemm"], help=argparse.SUPPRESS)
    p.add_argument("--shapes", help=argparse.SUPPRESS)
    p.add_argument("--gemm", action="store_true", help="compare the BLAS libraries on the step's GEMM shapes")
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--build", default="build/cpu", help="quopt's build directory")
    p.add_argument("--models", default="")
    p.add_argument("--threads", default="", help="comma-separated thread counts (default 1,2; --quick: 1)")
    p.add_argument("--rounds", type=int, default=0, help="default 5; --quick: 3")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=0,
                   help="sequences per step (quopt's train.batch_size); 0: 8, or 2048 tokens' worth where that "
                        "is fewer (one sequence of olmo2-50m), so that a step of the 50M model takes seconds")
    p.add_argument("--micro-batch", type=int, default=0,
                   help="sequences per forward/backward; 0: 2048 tokens' worth (at most --batch), so that "
                        "olmo2-50m's [tokens, 100352] logits fit PyTorch's memory")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--modes", default="quopt,eager,compile")
    p.add_argument("--venv", default=str(Path.home() / ".cache" / "quopt-torch-bench"))
    a = p.parse_args()
    if a.worker:
        a.threads = int(a.threads)
        return gemm_worker(a) if a.worker == "gemm" else worker(a)
    a.quopt = str(Path(a.build) / "quopt")
    models = a.models or ",".join(f"inputs/models/olmo2-{m}.toml" for m in
                                  (("tiny", "small") if a.quick else ("20k", "tiny", "small", "50m")))
    a.threads = a.threads or ("1" if a.quick else "1,2")
    a.rounds = a.rounds or (3 if a.quick else 5)
    py = ensure_venv(Path(a.venv))
    if a.gemm:
        return gemm_main(a, py, models)
    modes = a.modes.split(",")
    print(f"    python3 {' '.join(sys.argv)}\n\nBatch {f'{a.batch} sequences,' if a.batch else 'auto (8 sequences, at most 2048 tokens),'} micro-batch "
          f"{a.micro_batch or 'auto (2048 tokens)'}, {a.steps} timed steps after {a.warmup}, {a.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f}.\n")
    print("| model | tokens/step | threads | quopt tok/CPU-s | eager | compile | quopt/eager (CPU) "
          "| quopt/compile (CPU) | quopt/compile (wall) | peak RSS quopt/eager |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    scaling = []  # (model, threads, {mode: median tokens/s})
    for model, tokens, batch, mb, threads, cores in cases(a, models):
        res = {m: [] for m in modes}
        for r in range(a.rounds):
            order = modes[r % len(modes):] + modes[:r % len(modes)]
            for m in order:
                res[m].append(run_quopt(a, model, threads, cores, batch, mb) if m == "quopt"
                              else run_torch(a, py, m, model, threads, cores, batch, mb))

        def col(m, key="tok_cpu_s"):
            return f"{statistics.median(x[key] for x in res[m]):.4g}" if m in res else "-"

        def ratio(m, key="tok_cpu_s"):
            if m not in res or "quopt" not in res:
                return "-"
            return spread([q[key] / t[key] for q, t in zip(res["quopt"], res[m])])

        rss = "-"
        if "quopt" in res and "eager" in res:
            rss = spread([q["rss_mb"] / t["rss_mb"] for q, t in zip(res["quopt"], res["eager"])])
        scaling.append((Path(model).stem, threads, {m: statistics.median(x["tok_s"] for x in res[m]) for m in res}))
        print(f"| {Path(model).stem} | {tokens} | {threads} | {col('quopt')} | {col('eager')} | {col('compile')} | "
              f"{ratio('eager')} | {ratio('compile')} | {ratio('compile', 'tok_s')} | {rss} |", flush=True)

    one = {m: r for m, t, r in scaling if t == 1}
    rows = [(m, t, r, one[m]) for m, t, r in scaling if t != 1 and m in one]
    if rows:
        print("\nWall-clock tokens/s at T threads over the same program's at 1 thread (medians over the rounds):\n")
        print("| model | threads | " + " | ".join(modes) + " |")
        print("|---|---|" + "---|" * len(modes))
        for m, t, r, base in rows:
            print(f"| {m} | {t} | " + " | ".join(f"{r[k] / base[k]:.2f}" for k in modes) + " |")


if __name__ == "__main__":
    main()
