#!/usr/bin/env bash
# gpu-check.sh: validates the CUDA backend on a machine with an NVIDIA GPU and no package registry, in one
# call, in under 8 minutes, and writes everything to one results file. Each step has its own time limit and
# log; a failed step is recorded (with the end of its log) and the next independent step still runs.
#
#   On a Debian 12 machine with package access, once (makes .offline/bundle.tar, ~40 MB):
#     scripts/gpu-check.sh --make-bundle
#   On the GPU machine, from the repository root (with .offline/ copied along):
#     scripts/gpu-check.sh [--bundle .offline/bundle.tar] [--results FILE]
#   Anywhere (no GPU needed): scripts/gpu-check.sh --dry-run prints every step with its time limit and
#   command instead of running it, then the summary table as it looks with no results.
#
# Steps: gpu (nvidia-smi), deps (unpack the offline bundle into /tmp/quopt-deps), configure + build (cuda
# preset, the GPU's own architecture), gpu-tests (ctest -L gpu with QUOPT_REQUIRE_GPU=1: a skip fails),
# bench-quopt-{50m,125m} (quopt bench, bf16), bench-torch-{50m,125m} (tests/reference/gpu_bench.py:
# torch.compile, bf16 autocast, SDPA, fused AdamW), bench-optimizers (each optimizer's step time as a ratio
# to AdamW's, those with a CUDA path), then a summary table with tokens/s, MFU and the quopt/torch ratio.
# Results: $OUT/gpu-check.txt when $OUT is set, else build/gpu-check/results.txt. Exit status: the number
# of failed steps (0: all passed). docs/cuda.md describes every line it prints.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUNDLE=.offline/bundle.tar
RESULTS=${OUT:+$OUT/gpu-check.txt}
RESULTS=${RESULTS:-build/gpu-check/results.txt}
MAKE_BUNDLE=0
DRY_RUN=0
while (($#)); do
  case $1 in
    --bundle) BUNDLE=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --make-bundle) MAKE_BUNDLE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if ((MAKE_BUNDLE)); then
  # shellcheck source=scripts/lib.sh
  . scripts/lib.sh
  maker=${QUOPT_OFFLINE_DEPS:-$ROOT/../shared/offline-deps}/make-bundle.sh
  [[ -x $maker ]] || { echo "gpu-check.sh: $maker not found; set QUOPT_OFFLINE_DEPS to the offline-deps folder" >&2; exit 2; }
  # The -dev packages quopt builds against, beyond the bundle's own list (make-bundle skips duplicates).
  mapfile -t extra < <(printf '%s\n' "${QUOPT_APT_PACKAGES[@]}" | grep -- '-dev$')
  mkdir -p .offline
  grep -qx '/.offline/' .git/info/exclude 2>/dev/null || echo '/.offline/' >> .git/info/exclude
  exec "$maker" "$ROOT/.offline/bundle" "${extra[@]}"
fi

# The optimizers with a CUDA path (src/optim/optimizer.cpp make_optimizer), benchmarked against AdamW.
GPU_OPTIMIZERS="adamw muon scion shampoo soap psgd"

LOGDIR=$(dirname "$RESULTS")/gpu-check-logs
mkdir -p "$(dirname "$RESULTS")" "$LOGDIR"
: > "$RESULTS"
T_START=$SECONDS
FAILED=0
say() { printf '%s\n' "$*" | tee -a "$RESULTS"; }
# step NAME LIMIT_SECONDS COMMAND...: runs it with a time limit, logs to $LOGDIR/NAME.log, records the result.
# Every limit is cut to what is left of the whole run's BUDGET seconds (8 minutes less a margin for the summary).
BUDGET=${QUOPT_GPU_CHECK_BUDGET:-465}
step() {
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS rc left=$((BUDGET - (SECONDS - T_START)))
  if ((left < 15)); then
    FAILED=$((FAILED + 1))
    say "FAIL  $name  (not run: the ${BUDGET} s budget is spent)"
    return 1
  fi
  ((limit > left)) && limit=$left
  if ((DRY_RUN)); then
    say "DRY   $name  (limit $limit s): $*"
    return 0
  fi
  timeout --kill-after=10 "$limit" bash -c "$*" > "$LOGDIR/$name.log" 2>&1
  rc=$?
  if ((rc == 0)); then
    say "PASS  $name  ($((SECONDS - t0)) s)"
  else
    FAILED=$((FAILED + 1))
    ((rc == 124)) && say "FAIL  $name  (timed out after $limit s)" || say "FAIL  $name  (exit $rc, $((SECONDS - t0)) s)"
    tail -n 25 "$LOGDIR/$name.log" | sed 's/^/      | /' | tee -a "$RESULTS"
  fi
  return $rc
}

say "quopt gpu-check  $(date -u +%Y-%m-%dT%H:%M:%SZ)  revision $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
step gpu 30 "nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader" &&
  [[ -f $LOGDIR/gpu.log ]] && say "gpu: $(head -n1 "$LOGDIR/gpu.log")"
CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')
ARCH=${CC:-90}
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)

# Dependencies: the offline bundle when it is there (an air-gapped GPU box), else the system's.
if [[ -f $BUNDLE ]]; then
  step deps 120 "rm -rf /tmp/quopt-bundle && mkdir -p /tmp/quopt-bundle && tar -xf '$BUNDLE' -C /tmp/quopt-bundle &&
                 bash /tmp/quopt-bundle/*/use-bundle.sh /tmp/quopt-deps"
  # shellcheck disable=SC1091
  [[ -f /tmp/quopt-deps/env.sh ]] && . /tmp/quopt-deps/env.sh
else
  say "deps: no bundle at $BUNDLE; using the system's packages"
fi

JOBS=$(nproc)
# quopt and every gpu-label test (tests/gpu/test_*.cpp), nothing else: the other tests are the CPU suite's.
GPU_TESTS=$(cd tests/gpu && ls test_*.cpp | sed 's/\.cpp$//' | tr '\n' ' ')
step configure 120 "cmake --preset cuda -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DQUOPT_ENABLE_TESTS=ON" &&
  step build 240 "cmake --build build/cuda -j$JOBS --target quopt $GPU_TESTS"
BUILT=$?

if ((BUILT == 0)); then
  # -j4: the tests' host halves run side by side on the CPU cores (the GPU halves share the GPU); the step
  # lasts about as long as the longest test (test_cuda_model) instead of their sum.
  step gpu-tests 120 "QUOPT_REQUIRE_GPU=1 ctest --test-dir build/cuda -L gpu -j4 --output-on-failure --timeout 110"
  for m in 50m 125m; do
    step "bench-quopt-$m" 60 "build/cuda/quopt bench inputs/runs/gpu-bench-$m.toml --steps 10"
  done
else
  say "SKIP  gpu-tests, bench-quopt-*: the build failed"
fi
for m in 50m 125m; do
  step "bench-torch-$m" 120 "python3 tests/reference/gpu_bench.py --model olmo2-$m --steps 10"
done
if ((BUILT == 0)); then
  step bench-optimizers 90 "build/cuda/quopt bench inputs/runs/gpu-bench-50m.toml --steps 5 --optimizers $GPU_OPTIMIZERS"
fi

# Summary: tokens/s of both, their ratio, and MFU = model FLOP/s / the GPU's dense bf16 peak.
say ""
say "summary (batch 8 x 2048 tokens, bf16 compute; MFU against the dense bf16 peak of $GPU_NAME)"
python3 - "$LOGDIR" "$GPU_NAME" <<'PY' | tee -a "$RESULTS"
import re, sys, pathlib
logs, gpu = pathlib.Path(sys.argv[1]), sys.argv[2]
# Dense bf16 tensor-core peaks (NVIDIA H100 and H200 datasheets, SXM: 989 TFLOP/s; PCIe/NVL H100: 756).
peak = 989e12 if ("H100" in gpu and "PCIe" not in gpu) or "H200" in gpu else (756e12 if "H100" in gpu else None)
def grab(name, pat):
    p = logs / f"{name}.log"
    m = re.search(pat, p.read_text()) if p.exists() else None
    return float(m.group(1)) if m else None
print(f"{'model':<12}{'quopt tok/s':>14}{'torch tok/s':>14}{'quopt/torch':>13}{'quopt MFU':>11}{'torch MFU':>11}")
for m in ("50m", "125m"):
    q = grab(f"bench-quopt-{m}", r"([0-9.]+) tokens/s")
    gf = grab(f"bench-quopt-{m}", r"([0-9.]+) model GFLOP/s")
    t = grab(f"bench-torch-{m}", r"tokens/s ([0-9.]+)")
    flops_per_tok = gf * 1e9 / q if q and gf else None
    fmt = lambda v, f: (f % v) if v is not None else "n/a"
    mfu = lambda tps: 100 * tps * flops_per_tok / peak if tps and flops_per_tok and peak else None
    print(f"olmo2-{m:<6}{fmt(q, '%.0f'):>14}{fmt(t, '%.0f'):>14}{fmt(q / t if q and t else None, '%.3f'):>13}"
          f"{fmt(mfu(q), '%.1f%%'):>11}{fmt(mfu(t), '%.1f%%'):>11}")
p = logs / "bench-optimizers.log"
if p.exists():
    print("optimizer step time as a ratio to AdamW (olmo2-50m):")
    print("\n".join("  " + l.split("] ", 1)[-1] for l in p.read_text().splitlines() if "|" in l or "ratio" in l))
PY
say ""
say "failed steps: $FAILED   total time: $((SECONDS - T_START)) s   logs: $LOGDIR"
exit "$FAILED"
