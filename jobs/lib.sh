# shellcheck shell=bash
# Shared by jobs/*.sbatch and jobs/submit-study.sh. Sourced, not executed; the caller has set
# QUOPT_ROOT (see quopt_locate_root in the .sbatch files) and runs under `set -euo pipefail`.
#
# Checkpoint-and-requeue protocol (train.sbatch, sweep.sbatch):
#   1. the job is submitted with --signal=B:USR1@<seconds> and --requeue: shortly before the time limit
#      Slurm sends SIGUSR1 to this batch shell only (B:);
#   2. the trap forwards it to the srun step (srun passes SIGUSR1 on to every task); quopt finishes the
#      current step, writes a checkpoint and exits 75;
#   3. the script runs `scontrol requeue $SLURM_JOB_ID`: the job goes back to the queue with the same id,
#      array index and dependants, and its next start resumes with `--resume auto`.
# Only a SIGUSR1 received by this shell leads to a requeue: `scancel`, the time limit itself and
# preemption send SIGTERM, on which quopt also checkpoints and exits 75, and the job then ends (CANCELLED,
# TIMEOUT) instead of coming back. To move a running job to the back of the queue by hand:
#   scancel --batch --signal=USR1 JOBID

# shellcheck source=jobs/env.sh
. "$QUOPT_ROOT/jobs/env.sh"

# Exit status quopt uses for "stopped on a signal after writing a checkpoint" (EX_TEMPFAIL, sysexits.h).
QUOPT_EXIT_INTERRUPTED=75
# Requeues after which a job gives up (exits 75, so it ends FAILED and visible) rather than coming
# back forever when every start is cut short: a guard chosen for quopt, overridable.
: "${QUOPT_MAX_REQUEUES:=50}"

quopt_log() { printf '[quopt-job %s] %s\n' "$(date '+%F %T')" "$*" >&2; }

# Prints where and what this job is, once, at the top of its log (and again after each requeue).
quopt_job_banner() {
  quopt_log "job ${SLURM_JOB_ID:-none}${SLURM_ARRAY_TASK_ID:+ (array ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID})}" \
    "on ${SLURM_JOB_NODELIST:-$(hostname)}, start #$((${SLURM_RESTART_COUNT:-0} + 1)), tasks ${SLURM_NTASKS:-1}," \
    "cpus/task ${SLURM_CPUS_PER_TASK:-1}, gpus ${SLURM_GPUS_ON_NODE:-0}; quopt=$QUOPT"
}

# Sets QUOPT_LAUNCH to the command line that runs COMMAND on the job's tasks: `srun --mpi=pmix COMMAND`
# inside a Slurm job (QUOPT_MPI picks another plugin, QUOPT_SRUN_ARGS adds options such as
# "--cpu-bind=cores"), COMMAND itself outside one. (An array, not a function, so that `"${a[@]}" &`
# makes srun itself the background process whose pid receives the forwarded signal.)
quopt_launch_cmd() {
  QUOPT_LAUNCH=()
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    QUOPT_LAUNCH=(srun --mpi="${QUOPT_MPI:-pmix}")
    # shellcheck disable=SC2206
    [ -n "${QUOPT_SRUN_ARGS:-}" ] && QUOPT_LAUNCH+=($QUOPT_SRUN_ARGS)
  fi
  QUOPT_LAUNCH+=("$@")
}

_quopt_stop_requested=0
_quopt_step_pid=
_quopt_on_usr1() {
  if [ "$_quopt_stop_requested" = 1 ]; then
    return 0
  fi
  _quopt_stop_requested=1
  quopt_log "SIGUSR1 (time limit near): asking quopt to checkpoint"
  if [ -n "$_quopt_step_pid" ]; then
    kill -USR1 "$_quopt_step_pid" 2> /dev/null || true
  fi
}

# Puts this job back in the queue; returns non-zero when Slurm refuses (not requeueable, too many
# restarts), in which case the caller exits with the interrupted status.
_quopt_requeue() {
  local restarts=${SLURM_RESTART_COUNT:-0}
  if ((restarts >= QUOPT_MAX_REQUEUES)); then
    quopt_log "not requeueing: already restarted $restarts times (QUOPT_MAX_REQUEUES=$QUOPT_MAX_REQUEUES)"
    return 1
  fi
  if [ -z "${SLURM_JOB_ID:-}" ]; then
    quopt_log "not inside a Slurm job: run the same command again to continue"
    return 1
  fi
  quopt_log "requeueing job $SLURM_JOB_ID (restart $((restarts + 1))); it continues from its checkpoint"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    quopt_log "scontrol requeue $SLURM_JOB_ID failed (submit with --requeue; JobRequeue may be 0 here)"
    return 1
  fi
  return 0
}

# Installed as soon as this file is sourced: a SIGUSR1 that comes while the job is still setting up
# must not kill the shell (bash's default for USR1); it is remembered and acted on below.
trap _quopt_on_usr1 USR1

# quopt_run_requeueable COMMAND...: runs COMMAND on the job's tasks (quopt_launch_cmd) with the
# checkpoint-and-requeue protocol above. Returns COMMAND's status, or 0 after a successful requeue
# (Slurm then ends this start of the job itself).
quopt_run_requeueable() {
  if [ "$_quopt_stop_requested" = 1 ]; then
    quopt_log "the time-limit signal came before the run started"
    _quopt_requeue && return 0
    return "$QUOPT_EXIT_INTERRUPTED"
  fi
  quopt_launch_cmd "$@"
  "${QUOPT_LAUNCH[@]}" &
  _quopt_step_pid=$!
  # A signal that came while the step was being started is forwarded now.
  if [ "$_quopt_stop_requested" = 1 ]; then
    kill -USR1 "$_quopt_step_pid" 2> /dev/null || true
  fi
  local rc=0
  while :; do
    rc=0
    wait "$_quopt_step_pid" || rc=$?
    # `wait` also returns (status > 128) when a trapped signal interrupts it; the step is still there.
    if ((rc > 128)) && kill -0 "$_quopt_step_pid" 2> /dev/null; then
      continue
    fi
    break
  done
  _quopt_step_pid=  # the trap stays: a late SIGUSR1 must not kill this shell
  if [ "$_quopt_stop_requested" = 1 ]; then
    case $rc in
      0)
        quopt_log "the run finished before it had to stop"
        return 0
        ;;
      "$QUOPT_EXIT_INTERRUPTED" | $((128 + 10)))  # 138: srun itself ended by SIGUSR1 (10)
        _quopt_requeue && return 0
        return "$QUOPT_EXIT_INTERRUPTED"
        ;;
    esac
  fi
  if [ "$rc" -eq "$QUOPT_EXIT_INTERRUPTED" ]; then
    quopt_log "quopt was interrupted (SIGTERM: scancel, time limit or preemption); its checkpoint is kept"
  elif [ "$rc" -ne 0 ]; then
    quopt_log "the step failed with exit status $rc"
  fi
  return "$rc"
}

# Parses `quopt study plan STUDY` ("<index>\t<run_dir>\t<stage,stage,...>" lines) into the arrays
# QUOPT_PLAN_INDEX, QUOPT_PLAN_DIR and QUOPT_PLAN_STAGES.
quopt_read_plan() {  # quopt_read_plan STUDY
  local study=$1 out line index dir stages
  QUOPT_PLAN_INDEX=()
  QUOPT_PLAN_DIR=()
  QUOPT_PLAN_STAGES=()
  out=$("$QUOPT" study plan "$study") || {
    quopt_log "quopt study plan $study failed"
    return 1
  }
  while IFS= read -r line; do
    [[ $line =~ ^[0-9]+$'\t' ]] || continue
    IFS=$'\t' read -r index dir stages <<< "$line"
    QUOPT_PLAN_INDEX+=("$index")
    QUOPT_PLAN_DIR+=("$dir")
    QUOPT_PLAN_STAGES+=("$stages")
  done <<< "$out"
}

# quopt_study_stage STAGE STUDY: this array element's run (SLURM_ARRAY_TASK_ID, or QUOPT_INDEX outside
# an array) through one stage of the study, with the checkpoint-and-requeue protocol.
quopt_study_stage() {
  local stage=$1 study=$2
  local index=${SLURM_ARRAY_TASK_ID:-${QUOPT_INDEX:-}}
  [ -n "$index" ] || {
    quopt_log "no run index: submit as a job array (sbatch --array=0-N) or set QUOPT_INDEX"
    return 2
  }
  [ -f "$study" ] || {
    quopt_log "study file $study does not exist (pass an absolute path; the job runs in $(pwd))"
    return 2
  }
  quopt_log "study $study: run $index, stage $stage"
  quopt_run_requeueable "$QUOPT" study run "$study" --index "$index" --stage "$stage"
}
