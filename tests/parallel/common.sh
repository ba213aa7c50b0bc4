# Shared by the parallel tests: paths, mpirun, a tiny corpus tokenized once per build (fixture).
set -euo pipefail
QUOPT=$1
SRC=$2
DATA=$3   # directory with run.toml and tok/ (made by setup.sh)
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
fail() { echo "FAIL: $*" >&2; exit 1; }
# compare_losses DIR_A DIR_B RELTOL (0 = bitwise): the logged loss, validation loss, gradient norm and
# learning rate of every step agree. The gradient norm sees the scale of the gradient (which AdamW's
# update normalises away), so a gradient averaged over the wrong number of replicas or a norm reduced
# over the wrong ranks shows up here even when the losses agree. The norm is compared to 1e-12 at
# least: ranks that each sum part of it add the parts in another order (a last-bit difference, where a
# wrong scale is a factor of 2 or sqrt 2).
compare_losses() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
a, b, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
def rows(d):
    return [(r["step"], r.get("loss"), r.get("val_loss"), r.get("grad_norm"), r.get("lr"))
            for r in map(json.loads, open(d + "/metrics.jsonl"))]
ra, rb = rows(a), rows(b)
assert [r[0] for r in ra] == [r[0] for r in rb], f"different logged steps: {[r[0] for r in ra]} vs {[r[0] for r in rb]}"
worst = 0.0
for (s, la, va, ga, lra), (_, lb, vb, gb, lrb) in zip(ra, rb):
    for x, y, t in ((la, lb, tol), (va, vb, tol), (ga, gb, max(tol, 1e-12)), (lra, lrb, tol)):
        if x is None and y is None:
            continue
        assert x is not None and y is not None, (s, x, y)
        rel = abs(x - y) / max(abs(x), 1e-12)
        worst = max(worst, rel)
        assert (x == y) if t == 0 else (rel <= t), f"{a} vs {b}: step {s}: {x!r} vs {y!r} (rel {rel:.2e}, tol {t})"
print(f"{a} vs {b}: {len(ra)} logged steps agree (max rel diff {worst:.2e}, tol {tol})")
PY
}
