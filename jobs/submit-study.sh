#!/usr/bin/env bash
# Submits a whole study to Slurm as one chain of jobs and prints their ids:
#
#   jobs/submit-study.sh [--throttle N] [--report-dir DIR] [--dry-run] STUDY.toml
#
#   train    job array over the plan (jobs/sweep.sbatch), at most N elements at a time (%N)
#   ptq      job array over the runs that have a PTQ stage (jobs/ptq.sbatch),
#            --dependency=afterok:<train>: the elements start once every training element completed,
#            because each compares its run with the others of its size (the best learning rate over
#            seeds, and the common loss at which the selected runs are quantized); an element whose
#            run is not selected records that and ends
#   analyze  same for analysis (jobs/analyze.sbatch), aftercorr:<ptq>
#   report   one job (jobs/postprocess.sbatch), --dependency=afterok:<train>:<analyze>: every element
#            of both arrays completed successfully
# Dependants are submitted with --kill-on-invalid-dep=yes: when an element fails, the elements and the
# report that depend on it are cancelled (Reason=DependencyNeverSatisfied) instead of waiting forever.
# Training elements checkpoint and requeue themselves at their time limit (see jobs/lib.sh).
#
# The plan comes from `quopt study plan STUDY.toml` ("<index>\t<run_dir>\t<stages>" per run), run here
# with the same environment the jobs get (jobs/env.sh: QUOPT, QUOPT_SPACK_ENV, QUOPT_MODULES, ...).
# Runs go to the plan's run directories; the report to <runs dir>/report (the directory holding the
# run directories, the study's out_dir), Slurm logs to <runs dir>/slurm-logs/.
#
# Options and resources, none tied to a cluster:
#   --throttle N / QUOPT_THROTTLE    array elements running at once per stage (default 4, a quopt choice:
#                                    enough to keep a few nodes busy without flooding a shared queue)
#   --report-dir DIR                 where the report goes (default <runs dir>/report)
#   --dry-run                        print the sbatch commands instead of submitting
#   QUOPT_SBATCH="..."               sbatch options for every job (e.g. "--partition=gpu --account=abc")
#   QUOPT_SBATCH_TRAIN / _PTQ / _ANALYZE / _POST   options for one stage (e.g. QUOPT_SBATCH_TRAIN=
#                                    "--gres=gpu:4 --ntasks-per-node=4 --time=12:00:00")
#   SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_TIMELIMIT, ...   read by sbatch itself, as usual
set -euo pipefail

QUOPT_ROOT=${QUOPT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export QUOPT_ROOT
# shellcheck source=jobs/lib.sh
. "$QUOPT_ROOT/jobs/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}
die() {
  echo "submit-study.sh: $*" >&2
  exit 2
}

throttle=${QUOPT_THROTTLE:-4}
report_dir=
dry_run=0
study=
while [ $# -gt 0 ]; do
  case $1 in
    --throttle)
      [ $# -ge 2 ] || die "--throttle needs a number"
      throttle=$2
      shift 2
      ;;
    --throttle=*)
      throttle=${1#*=}
      shift
      ;;
    --report-dir)
      [ $# -ge 2 ] || die "--report-dir needs a directory"
      report_dir=$2
      shift 2
      ;;
    --report-dir=*)
      report_dir=${1#*=}
      shift
      ;;
    --dry-run)
      dry_run=1
      shift
      ;;
    -h | --help) usage 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *)
      [ -z "$study" ] || die "one study file expected, got '$study' and '$1'"
      study=$1
      shift
      ;;
  esac
done
[ -n "$study" ] || usage 2
[ -f "$study" ] || die "study file '$study' does not exist"
[[ $throttle =~ ^[1-9][0-9]*$ ]] || die "--throttle must be a positive integer, got '$throttle'"
study=$(cd "$(dirname "$study")" && pwd)/$(basename "$study")
command -v sbatch > /dev/null 2>&1 || [ "$dry_run" = 1 ] || die "sbatch not found: run this on a Slurm login node"

quopt_env_setup
quopt_read_plan "$study"
n=${#QUOPT_PLAN_INDEX[@]}
count=$("$QUOPT" study plan "$study" --count | tr -d '[:space:]')
[ "$n" -gt 0 ] || die "quopt study plan $study lists no runs"
[ "$count" = "$n" ] || die "quopt study plan printed $n runs but --count says '$count'"

# The runs directory: the one directory that holds every run directory.
runs_dir=$(dirname "${QUOPT_PLAN_DIR[0]}")
for d in "${QUOPT_PLAN_DIR[@]}"; do
  [ "$(dirname "$d")" = "$runs_dir" ] ||
    die "run directories $d and ${QUOPT_PLAN_DIR[0]} are not in one directory; pass --report-dir and" \
      "check the study's out_dir"
done
[ -n "$report_dir" ] || report_dir=$runs_dir/report
logs=$runs_dir/slurm-logs
name=$(basename "$study" .toml)

# Array index lists: every run trains; PTQ and analysis only for runs whose stage list has them.
# Index list in sbatch --array syntax, runs of consecutive indices folded: 0 1 2 5 -> 0-2,5
csv() {
  local out="" start="" prev="" i
  for i in "$@" ""; do
    if [ -n "$prev" ] && [ -n "$i" ] && [ "$i" -eq $((prev + 1)) ]; then
      prev=$i
      continue
    fi
    if [ -n "$start" ]; then
      out+=${out:+,}$start
      [ "$prev" != "$start" ] && out+=-$prev
    fi
    start=$i
    prev=$i
  done
  echo "$out"
}
with_stage() {  # with_stage STAGE: indices of the runs that go through STAGE
  local i out=()
  for i in "${!QUOPT_PLAN_INDEX[@]}"; do
    [[ ,${QUOPT_PLAN_STAGES[$i]}, == *,$1,* ]] && out+=("${QUOPT_PLAN_INDEX[$i]}")
  done
  csv "${out[@]}"
}
train_idx=$(csv "${QUOPT_PLAN_INDEX[@]}")
ptq_idx=$(with_stage ptq)
analyze_idx=$(with_stage analyze)

submit() {  # submit STAGE_VAR_SUFFIX SBATCH_ARGS... : prints the job id
  local stage=$1
  shift
  local common=() own=() var
  # shellcheck disable=SC2206
  [ -n "${QUOPT_SBATCH:-}" ] && common=($QUOPT_SBATCH)
  var=QUOPT_SBATCH_$stage
  # shellcheck disable=SC2206
  [ -n "${!var:-}" ] && own=(${!var})
  local cmd=(sbatch --parsable "${common[@]}" "${own[@]}" "$@")
  if [ "$dry_run" = 1 ]; then
    printf '%q ' "${cmd[@]}" >&2
    echo >&2
    echo "<$stage>"
    return
  fi
  local out
  out=$("${cmd[@]}") || die "sbatch failed: ${cmd[*]}"
  echo "${out%%;*}"  # --parsable prints "id" or "id;cluster"
}

[ "$dry_run" = 1 ] || mkdir -p "$logs"
# The jobs need these two even where a site sets SBATCH_EXPORT=NONE. (One word; the commas are sbatch's.)
# shellcheck disable=SC2054
env_export=(--export=ALL,QUOPT_ROOT="$QUOPT_ROOT",QUOPT="$QUOPT")
common_args=("${env_export[@]}" --kill-on-invalid-dep=yes)

train_id=$(submit TRAIN "${common_args[@]}" --job-name="quopt-$name-train" --array="$train_idx%$throttle" \
  --output="$logs/%x-%A_%a.out" "$QUOPT_ROOT/jobs/sweep.sbatch" "$study")
ptq_id=
analyze_id=
if [ -n "$ptq_idx" ]; then
  ptq_id=$(submit PTQ "${common_args[@]}" --job-name="quopt-$name-ptq" --array="$ptq_idx%$throttle" \
    --dependency="afterok:$train_id" --output="$logs/%x-%A_%a.out" "$QUOPT_ROOT/jobs/ptq.sbatch" "$study")
fi
if [ -n "$analyze_idx" ]; then
  after=${ptq_id:-$train_id}
  analyze_id=$(submit ANALYZE "${common_args[@]}" --job-name="quopt-$name-analyze" \
    --array="$analyze_idx%$throttle" --dependency="aftercorr:$after" --output="$logs/%x-%A_%a.out" \
    "$QUOPT_ROOT/jobs/analyze.sbatch" "$study")
fi
post_after=afterok:$train_id${analyze_id:+:$analyze_id}
post_id=$(submit POST "${common_args[@]}" --job-name="quopt-$name-report" --dependency="$post_after" \
  --output="$logs/%x-%j.out" "$QUOPT_ROOT/jobs/postprocess.sbatch" "$runs_dir" "$report_dir")

all=$train_id${ptq_id:+,$ptq_id}${analyze_id:+,$analyze_id},$post_id
echo "quopt study '$name': $n runs in $runs_dir ($QUOPT)"
printf '  %-8s %-10s %-28s %s\n' train "$train_id" "array $train_idx%$throttle" "jobs/sweep.sbatch"
[ -n "$ptq_id" ] && printf '  %-8s %-10s %-28s %s\n' ptq "$ptq_id" "array $ptq_idx%$throttle" \
  "jobs/ptq.sbatch, afterok:$train_id (selection compares all trained runs)"
[ -n "$analyze_id" ] && printf '  %-8s %-10s %-28s %s\n' analyze "$analyze_id" "array $analyze_idx%$throttle" \
  "jobs/analyze.sbatch, aftercorr:${ptq_id:-$train_id} (element by element)"
printf '  %-8s %-10s %-28s %s\n' report "$post_id" "one job" "jobs/postprocess.sbatch, $post_after"
echo "logs:   $logs/<job name>-<job id>_<index>.out"
echo "report: $report_dir (written by job $post_id)"
echo "watch:  squeue -j $all   |   scontrol show job $train_id"
