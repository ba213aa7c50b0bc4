#!/usr/bin/env bash
# Robustness tracked during training (track.every): data parallel at np=2 measures what np=1 measures
# (at step 0, where both hold the same weights, to rounding; later within the runs' own drift); a run
# resumed from a checkpoint ends with the same robustness curves and metrics.jsonl lines as one that ran
# through; pipeline parallelism is refused before anything is written.
. "$(dirname "$0")/common.sh"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$DATA"
SET=(--set track.every=5 --set checkpoint.every=10)
"$QUOPT" train run.toml "${SET[@]}" --out "$W/np1" > "$W/np1.log"
"${MPIRUN[@]}" -np 2 "$QUOPT" train run.toml "${SET[@]}" --out "$W/dp2" > "$W/dp2.log"

# Resume from the step-10 checkpoint of a copy of the np=1 run.
cp -r "$W/np1" "$W/res"
rm -f "$W/res/run.h5"
newest=$(ls "$W/res/checkpoints" | sort | tail -1)
rm -rf "$W/res/checkpoints/$newest"
"$QUOPT" train run.toml "${SET[@]}" --out "$W/res" --resume auto > "$W/res.log"
grep -q "resumed from" "$W/res.log" || fail "the resumed run did not resume"

python3 - "$W" <<'PY'
import json, sys, h5py, numpy as np
w = sys.argv[1]
def curves(d):
    with h5py.File(f"{w}/{d}/run.h5", "r") as f:
        return {n[len("robustness_"):]: f["metrics/" + n][...] for n in f["metrics"] if n.startswith("robustness_")}
def lines(d):
    return [r for r in map(json.loads, open(f"{w}/{d}/metrics.jsonl")) if "robustness" in r]
a, b, r = curves("np1"), curves("dp2"), curves("res")
assert a["step"].tolist() == [0, 5, 10, 15, 20], a["step"]
assert [l["step"] for l in lines("np1")] == [0, 5, 10, 15, 20]
for k in ("loss_fp", "loss_quant", "R_L", "mmr_mean", "mmr_tomean_mean", "kurtosis_mean", "kurtosis_max"):
    # step 0: the same initial weights, measured with the sequences and chunks split over 2 ranks
    assert np.isclose(a[k][0], b[k][0], rtol=1e-9, atol=0), (k, a[k][0], b[k][0])
    # later: the weights differ by the runs' rounding drift (losses agree to 1e-5, docs/parallel.md)
    np.testing.assert_allclose(b[k], a[k], rtol=2e-2 if k == "R_L" else 1e-3, err_msg=k)
assert a["R_L"][-1] > 0 and a["loss_quant"][-1] > a["loss_fp"][-1] - 1e-3
for k in a:
    if k != "seconds":
        assert np.array_equal(a[k], r[k], equal_nan=True), (k, a[k], r[k])
strip = lambda ls: [{**l, "robustness": {k: v for k, v in l["robustness"].items() if k != "seconds"}} for l in ls]
assert strip(lines("np1")) == strip(lines("res")), "resumed metrics.jsonl robustness lines differ"
print("robustness: np=2 matches np=1 (step 0 to 1e-9); the resumed run matches bitwise")
PY

# Pipeline stages split the model: refused before anything is written, naming both keys.
if "${MPIRUN[@]}" -np 2 "$QUOPT" train run.toml --set track.every=5 --set parallel.pipeline_stages=2 \
     --out "$W/pp2" > "$W/pp2.log" 2>&1; then
  fail "robustness tracking with 2 pipeline stages was accepted"
fi
grep -q "parallel.pipeline_stages = 2 splits the model" "$W/pp2.log" || { cat "$W/pp2.log"; fail "unclear error"; }
[ ! -e "$W/pp2" ] || fail "a refused run created its output directory"
echo "robustness: OK"
