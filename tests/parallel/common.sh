# Shared by the parallel tests: paths, mpirun, a tiny corpus tokenized once per build (fixture).
set -euo pipefail
QUOPT=$1
SRC=$2
DATA=$3   # directory with run.toml and tok/ (made by setup.sh)
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
fail() { echo "FAIL: $*" >&2; exit 1; }
# losses DIR: "step loss val_loss" lines from metrics.jsonl
compare_losses() {  # compare_losses DIR_A DIR_B RELTOL (0 = bitwise)
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
a, b, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
def rows(d):
    return [(r["step"], r.get("loss"), r.get("val_loss")) for r in map(json.loads, open(d + "/metrics.jsonl"))]
ra, rb = rows(a), rows(b)
assert [r[0] for r in ra] == [r[0] for r in rb], f"different logged steps: {[r[0] for r in ra]} vs {[r[0] for r in rb]}"
worst = 0.0
for (s, la, va), (_, lb, vb) in zip(ra, rb):
    for x, y in ((la, lb), (va, vb)):
        if x is None and y is None:
            continue
        assert x is not None and y is not None, (s, x, y)
        rel = abs(x - y) / max(abs(x), 1e-12)
        worst = max(worst, rel)
        assert (x == y) if tol == 0 else (rel <= tol), f"{a} vs {b}: step {s}: {x!r} vs {y!r} (rel {rel:.2e}, tol {tol})"
print(f"{a} vs {b}: {len(ra)} logged steps agree (max rel diff {worst:.2e}, tol {tol})")
PY
}
