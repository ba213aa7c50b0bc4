#!/usr/bin/env bash
# The test cluster itself and the Slurm behaviour the job scripts rely on, with trivial jobs:
#   - MpiDefault is pmix, and `srun --mpi=pmix -n 2` starts a 2-rank MPI job whose ranks see each
#     other (mpi_probe);
#   - a batch job runs and ends COMPLETED with its output;
#   - an array with a %1 throttle never runs two elements at once;
#   - --dependency=aftercorr starts element I only after element I of the other array completed, and
#     a requeued element (checkpoint-and-requeue) holds its dependant back until its last start ends;
#   - jobs/train.sbatch's CPU and GPU variants (--ntasks-per-node, --gres=gpu:N) run the right binary
#     on the right number of ranks, with the allocated GPUs visible;
#   - a failing job is FAILED with its exit code, and with --kill-on-invalid-dep=yes its afterok
#     dependant is CANCELLED (DependencyNeverSatisfied) without ever starting.
# Usage (through cluster.sh): smoke.sh QUOPT_BINARY SOURCE_DIR MPI_PROBE_BINARY
. "$(dirname "$0")/common.sh" "$@"
PROBE=$3
cd "$W"

# The whole path only: the test cluster's slurm.conf, MpiDefault and the pmix plugin.
[ "$(scontrol show config | awk '$1 == "MpiDefault" {print $3}')" = pmix ] || fail "MpiDefault is not pmix"
srun --mpi=list 2>&1 | grep -qw pmix || fail "srun --mpi=list does not list pmix"

# 2-rank MPI through PMIx (as the job scripts launch quopt).
out=$(timeout 60 srun --mpi=pmix -n 2 "$PROBE" 2>&1) || {
  echo "$out"
  fail "srun --mpi=pmix -n 2 mpi_probe failed"
}
echo "$out"
[ "$(echo "$out" | grep -c 'mpi_probe: rank [01] of 2 ok')" -eq 2 ] || fail "expected two ranks of 2 reporting ok"
note "srun --mpi=pmix: 2 ranks agree"

# A batch job.
jid=$(sbatch --parsable --output="$W/hello-%j.out" --wrap 'echo "hello from $SLURM_JOB_ID on $(hostname -s)"')
table=$(wait_jobs 60 "$jid")
[ "$(echo "$table" | awk '{print $3}')" = COMPLETED ] || fail "batch job: $table"
grep -qx "hello from $jid on $QUOPT_SLURM_NODE" "$W/hello-$jid.out" || fail "batch job output: $(cat "$W/hello-$jid.out")"
note "batch job COMPLETED"

# Throttled array and element-by-element dependency.
first=$(sbatch --parsable --array=0-2%1 --output=/dev/null \
  --wrap "echo start \$(date +%s.%N) > $W/a\$SLURM_ARRAY_TASK_ID; sleep 1; echo end \$(date +%s.%N) >> $W/a\$SLURM_ARRAY_TASK_ID")
second=$(sbatch --parsable --array=0-2 --dependency=aftercorr:"$first" --kill-on-invalid-dep=yes --output=/dev/null \
  --wrap "echo start \$(date +%s.%N) > $W/b\$SLURM_ARRAY_TASK_ID")
table=$(wait_jobs 120 "$first" "$second")
echo "$table"
[ "$(echo "$table" | awk '$3 == "COMPLETED"' | wc -l)" -eq 6 ] || fail "array jobs did not all complete"
python3 - "$W" << 'PY'
import sys
w = sys.argv[1]
def times(name):
    d = dict(line.split() for line in open(f"{w}/{name}"))
    return float(d["start"]), float(d.get("end", d["start"]))
a = sorted(times(f"a{i}") for i in range(3))
for (s0, e0), (s1, e1) in zip(a, a[1:]):
    assert s1 >= e0, f"throttle %1 violated: an element started at {s1} before another ended at {e0}"
for i in range(3):
    assert times(f"b{i}")[0] >= times(f"a{i}")[1], f"aftercorr: b{i} started before a{i} ended"
print("throttle %1 respected; aftercorr elements started after their counterparts")
PY

# A requeued element is not finished: its aftercorr dependant waits for the element's last start.
first=$(sbatch --parsable --array=0 --output=/dev/null --wrap "
  if [ \"\${SLURM_RESTART_COUNT:-0}\" = 0 ]; then scontrol requeue \$SLURM_JOB_ID; sleep 60; fi
  echo end \$(date +%s.%N) > $W/r0")
second=$(sbatch --parsable --array=0 --dependency=aftercorr:"$first" --kill-on-invalid-dep=yes \
  --output=/dev/null --wrap "echo start \$(date +%s.%N) > $W/s0")
table=$(wait_jobs 120 "$first" "$second")
echo "$table"
[ "$(echo "$table" | awk -v j="${first}_0" '$1 == j {print $3, $6}')" = "COMPLETED 1" ] ||
  fail "the requeued element should have COMPLETED after 1 restart"
[ "$(echo "$table" | awk -v j="${second}_0" '$1 == j {print $3}')" = COMPLETED ] || fail "its dependant did not run"
python3 -c "
import sys
end = float(open('$W/r0').read().split()[1]); start = float(open('$W/s0').read().split()[1])
assert start >= end, f'the dependant started at {start}, before the requeued element ended at {end}'
print('aftercorr waited for the requeued element')"

# CPU and GPU variants of jobs/train.sbatch: with QUOPT unset, the job takes build/cpu/quopt, or
# build/cuda/quopt when it was given GPUs (--gres); --ntasks-per-node sets the ranks. A checkout with
# stand-in binaries (they print what they were started with) shows which one ran, how often, where.
root=$W/checkout
mkdir -p "$root/build/cpu" "$root/build/cuda"
ln -s "$SRC/jobs" "$root/jobs"
for preset in cpu cuda; do
  cat > "$root/build/$preset/quopt" << SH
#!/bin/bash
echo "binary=$preset rank=\$SLURM_PROCID of=\$SLURM_NTASKS gpus=\${CUDA_VISIBLE_DEVICES:-none} args=\$*"
SH
  chmod +x "$root/build/$preset/quopt"
done
cpu=$(env -u QUOPT sbatch --parsable --ntasks-per-node=2 --output="$W/variant-%j.out" \
  "$root/jobs/train.sbatch" run.toml --out somewhere)
gpu=$(env -u QUOPT sbatch --parsable --gres=gpu:2 --ntasks-per-node=2 --output="$W/variant-%j.out" \
  "$root/jobs/train.sbatch" run.toml --out somewhere)
table=$(wait_jobs 60 "$cpu" "$gpu")
[ -z "$(echo "$table" | awk '$3 != "COMPLETED"')" ] || fail "variant jobs: $table"
for r in 0 1; do
  grep -qx "binary=cpu rank=$r of=2 gpus=none args=train run.toml --out somewhere --resume auto" "$W/variant-$cpu.out" ||
    fail "CPU job, rank $r: $(cat "$W/variant-$cpu.out")"
  grep -q "^binary=cuda rank=$r of=2 gpus=0,1 " "$W/variant-$gpu.out" || fail "GPU job, rank $r: $(cat "$W/variant-$gpu.out")"
done
grep -q "quopt=$root/build/cuda/quopt" "$W/variant-$gpu.out" || fail "the GPU job's banner does not name build/cuda"
note "train.sbatch: 2 CPU ranks ran build/cpu/quopt; with --gres=gpu:2, build/cuda/quopt saw both GPUs"

# A failure and its dependant.
bad=$(sbatch --parsable --output=/dev/null --wrap 'exit 3')
dep=$(sbatch --parsable --output=/dev/null --dependency=afterok:"$bad" --kill-on-invalid-dep=yes \
  --wrap "touch $W/dependant-ran")
table=$(wait_jobs 60 "$bad" "$dep")
echo "$table"
read -r _ _ state _ code _ <<< "$(echo "$table" | awk -v j="$bad" '$1 == j')"
[ "$state" = FAILED ] && [ "$code" = 3:0 ] || fail "failing job: state $state exit $code, expected FAILED 3:0"
read -r _ _ state reason _ _ <<< "$(echo "$table" | awk -v j="$dep" '$1 == j')"
[ "$state" = CANCELLED ] && [ "$reason" = DependencyNeverSatisfied ] ||
  fail "dependant: $state ($reason), expected CANCELLED (DependencyNeverSatisfied)"
[ ! -e "$W/dependant-ran" ] || fail "the dependant of a failed job ran"
never_started "$dep" || fail "the dependant was given a node: $(scontrol show job -o "$dep")"
note "smoke: OK"
