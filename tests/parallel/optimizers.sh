#!/usr/bin/env bash
# Every optimizer end to end: np=2 and np=4 (data parallel, sharded optimizer work) reproduce np=1 over
# 20 steps to 1e-5 relative, and a run resumed from a mid-run checkpoint is bitwise identical to the
# uninterrupted one (all optimizer and preconditioner state is in the checkpoint).
. "$(dirname "$0")/common.sh"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$DATA"
for opt in ${QUOPT_OPTIMIZERS:-adamw muon scion shampoo soap psgd}; do
  # Each optimizer's own file, with the lr the tiny test model tolerates; shampoo/soap precondition
  # from early on so their preconditioners (and the sharding of their blocks) are exercised.
  SET=(--set optimizer.name=$opt --set train.steps=20 --set checkpoint.every=10 --set checkpoint.keep=3)
  # The learning rate of each optimizer's own file (inputs/optimizers/<name>.toml, from its reference).
  lr=$(python3 -c "import tomllib,sys; print(tomllib.load(open(sys.argv[1],'rb'))['optimizer'].get('lr', 3e-3))" \
       "$SRC/inputs/optimizers/$opt.toml")
  SET+=(--set optimizer.lr=$lr)
  case $opt in
    scion) SET+=(--set optimizer.weight_decay=0) ;;  # its constrained update is its weight decay
    # Blocks of at most 64 keep the eigendecompositions small (the reference merges this model's small
    # matrices into 1024-wide blocks) and give several blocks to shard.
    shampoo) SET+=(--set optimizer.shampoo.start_preconditioning_step=3 --set optimizer.shampoo.precondition_frequency=3
                   --set optimizer.shampoo.max_preconditioner_dim=64) ;;
    soap) SET+=(--set optimizer.soap.precondition_frequency=3) ;;
  esac
  "$QUOPT" train run.toml "${SET[@]}" --out "$W/$opt-np1" > "$W/$opt-np1.log"
  "${MPIRUN[@]}" -np 2 "$QUOPT" train run.toml "${SET[@]}" --out "$W/$opt-np2" > "$W/$opt-np2.log"
  "${MPIRUN[@]}" -np 4 "$QUOPT" train run.toml "${SET[@]}" --out "$W/$opt-np4" > "$W/$opt-np4.log"
  compare_losses "$W/$opt-np1" "$W/$opt-np2" 1e-5
  compare_losses "$W/$opt-np1" "$W/$opt-np4" 1e-5
  # Resume from the step-10 checkpoint: bitwise equal to the uninterrupted run.
  R="$W/$opt-resume"
  mkdir -p "$R/checkpoints"
  cp "$W/$opt-np1/checkpoints/step-00000010.h5" "$R/checkpoints/"
  python3 "$SRC/tests/parallel/metrics_upto.py" "$W/$opt-np1/metrics.jsonl" 10 > "$R/metrics.jsonl"
  "$QUOPT" train run.toml "${SET[@]}" --out "$R" --resume auto > "$W/$opt-resume.log"
  grep -q "resumed from" "$W/$opt-resume.log" || fail "$opt did not resume"
  compare_losses "$W/$opt-np1" "$R" 0
done
echo "optimizers: OK"
