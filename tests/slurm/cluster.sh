#!/usr/bin/env bash
# A private single-node Slurm cluster for the slurm tests: munged, slurmctld and slurmd started as
# background processes with every file (munge key and socket, slurm.conf, state, spool, logs) in one
# directory, this host as the only node (with two pretend GPUs as GRES), MpiDefault=pmix. Nothing
# under /etc or /run is used or changed, so it runs next to a system Slurm/munge and several can run
# at once (own ports).
#
#   cluster.sh run [--timeout SECS] [--keep] -- COMMAND [ARGS...]
#       start a cluster in a fresh temporary directory, run COMMAND with SLURM_CONF (and
#       QUOPT_SLURM_DIR, QUOPT_SLURM_NODE) exported, stop the cluster whatever happens, and exit with
#       COMMAND's status (124 when it ran past SECS, default 1500). On failure the ends of the daemon
#       logs are printed. --keep leaves the directory for inspection.
#   cluster.sh start DIR     start one whose files live in DIR (created); prints the line to source
#   cluster.sh stop DIR      cancel its jobs and stop its daemons
# Exits 77 (ctest: skipped) when slurmctld, slurmd, munged or the client commands are not installed.
#
# Needs (Debian 12): slurm-wlm (slurmctld, slurmd, slurm-client; slurm-wlm-basic-plugins provides
# mpi_pmix.so) and munge. Tested as root (SlurmUser=root); as another user SlurmUser is that user.
set -euo pipefail

log() { printf '[cluster] %s\n' "$*" >&2; }
die() {
  printf '[cluster] ERROR: %s\n' "$*" >&2
  exit 1
}

need_commands() {
  local missing=()
  for c in munged slurmctld slurmd sinfo sbatch srun scontrol scancel squeue; do
    command -v "$c" > /dev/null 2>&1 || missing+=("$c")
  done
  if ((${#missing[@]})); then
    # 77: ctest's SKIP_RETURN_CODE for the slurm tests; the machine lacks Slurm, the test is not wrong.
    log "SKIP: missing ${missing[*]}: install the Debian packages slurm-wlm and munge" \
      "(apt-get install slurm-wlm munge)"
    exit 77
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Removes Slurm variables inherited from an outer job (CI inside a Slurm allocation): they would make
# sbatch/srun talk about a job this cluster does not know.
clean_slurm_env() {
  local v
  for v in $(compgen -e); do
    case $v in
      SLURM_* | SBATCH_* | SRUN_* | SALLOC_*) unset "$v" ;;
    esac
  done
}

write_conf() {  # write_conf DIR NODE
  local dir=$1 node=$2 user cpus mem_mb ctld_port slurmd_port
  user=$(id -un)
  cpus=$(nproc)
  ((cpus >= 2)) || cpus=2  # the tests run 2-task jobs; config_overrides lets slurmd accept the number
  mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 / 2)}' /proc/meminfo)
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
  : > "$dir/plugstack.conf"  # no SPANK plugins from the system's /etc/slurm/plugstack.conf
  # The pmix plugin's per-step client directories (default /tmp/spmix_appdir_*) go here too.
  mkdir -p "$dir/pmix"
  echo "PMIxCliTmpDirBase=$dir/pmix" > "$dir/mpi.conf"
  # Two pretend GPUs, so that --gres=gpu:N jobs get SLURM_GPUS_ON_NODE and CUDA_VISIBLE_DEVICES as on
  # a GPU node. The device files are placeholders: with task/none nothing is constrained by them.
  cat > "$dir/gres.conf" << EOF
AutoDetect=off
NodeName=$node Name=gpu File=/dev/null
NodeName=$node Name=gpu File=/dev/zero
EOF
  cat > "$dir/slurm.conf" << EOF
# Written by tests/slurm/cluster.sh for a private test cluster; see slurm.conf(5) for every key.
ClusterName=quopttest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Schedule every 2 s instead of every 60 s (main) / 30 s (backfill): dependent jobs start promptly.
SchedulerParameters=sched_interval=2,bf_interval=2
JobRequeue=1
ReturnToService=2
# Keep finished jobs visible to scontrol/squeue for an hour (no accounting database here).
MinJobAge=3600
KillWait=5
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start_cluster() {  # start_cluster DIR
  local dir=$1 node
  need_commands
  node=$(hostname -s)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # munged wants every directory above its socket to be searchable by all, and the key private.
  chmod 755 "$dir"
  mkdir -p "$dir/munge" "$dir/munge-key" "$dir/state" "$dir/spool" "$dir/log"
  chmod 755 "$dir/munge"
  chmod 700 "$dir/munge-key"
  if command -v mungekey > /dev/null 2>&1; then
    mungekey --create --force --keyfile="$dir/munge-key/munge.key"
  else
    dd if=/dev/urandom of="$dir/munge-key/munge.key" bs=1024 count=1 status=none
  fi
  chmod 600 "$dir/munge-key/munge.key"
  write_conf "$dir" "$node"
  clean_slurm_env
  export SLURM_CONF=$dir/slurm.conf

  munged -F --socket="$dir/munge/munge.socket" --key-file="$dir/munge-key/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge-key/munged.seed" > "$dir/log/munged.out" 2>&1 &
  echo $! > "$dir/munged.child"
  for _ in $(seq 50); do
    [ -S "$dir/munge/munge.socket" ] && break
    kill -0 "$(cat "$dir/munged.child")" 2> /dev/null || break
    sleep 0.1
  done
  [ -S "$dir/munge/munge.socket" ] || {
    cat "$dir/log/munged.out" "$dir/log/munged.log" >&2 2> /dev/null || true
    die "munged did not start"
  }

  slurmctld -D -c -f "$SLURM_CONF" > "$dir/log/slurmctld.out" 2>&1 &
  echo $! > "$dir/slurmctld.child"
  slurmd -D -f "$SLURM_CONF" -N "$node" > "$dir/log/slurmd.out" 2>&1 &
  echo $! > "$dir/slurmd.child"

  local state=""
  for _ in $(seq 120); do
    state=$(timeout 5 sinfo -h -n "$node" -o %t 2> /dev/null || true)
    [ "$state" = idle ] && break
    for d in slurmctld slurmd; do
      kill -0 "$(cat "$dir/$d.child")" 2> /dev/null || {
        tail -n 30 "$dir/log/$d.out" "$dir/log/$d.log" >&2 2> /dev/null || true
        die "$d exited during startup (logs above)"
      }
    done
    sleep 0.5
  done
  [ "$state" = idle ] || {
    tail -n 30 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 2> /dev/null || true
    die "node $node did not become idle within 60 s (state '$state')"
  }
  timeout 10 srun --mpi=list 2>&1 | grep -qw pmix ||
    die "srun --mpi=list does not offer pmix: install slurm-wlm-basic-plugins (Debian 12 ships mpi_pmix.so there)"
  cat > "$dir/env.sh" << EOF
# Source this to use the test cluster in $dir
export SLURM_CONF=$SLURM_CONF QUOPT_SLURM_DIR=$dir QUOPT_SLURM_NODE=$node
EOF
  log "cluster up in $dir (node $node, $(grep -o 'CPUs=[0-9]*' "$SLURM_CONF"))"
}

environ_of() { { tr '\0' '\n' < "$1/environ"; } 2> /dev/null || true; }

# PIDs of the processes that run jobs of this cluster: slurmstepd and job tasks carry our SLURM_CONF.
cluster_job_pids() {  # cluster_job_pids DIR
  local conf="SLURM_CONF=$1/slurm.conf" p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    environ_of "$p" | grep -qxF "$conf" || continue
    if [ "$(cat "$p/comm" 2> /dev/null)" = slurmstepd ] || environ_of "$p" | grep -q '^SLURM_JOB_ID='; then
      echo "${p#/proc/}"
    fi
  done
}

stop_pid() {  # stop_pid PID NAME
  local pid=$1
  kill -0 "$pid" 2> /dev/null || return 0
  kill -TERM "$pid" 2> /dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2> /dev/null || return 0
    sleep 0.2
  done
  log "$2 (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
  kill -KILL "$pid" 2> /dev/null || true
}

stop_cluster() {  # stop_cluster DIR
  local dir=$1 pids
  [ -f "$dir/slurm.conf" ] || return 0
  export SLURM_CONF=$dir/slurm.conf
  if [ -f "$dir/slurmctld.child" ] && kill -0 "$(cat "$dir/slurmctld.child")" 2> /dev/null; then
    timeout 10 scancel --user="$(id -un)" 2> /dev/null || true
    for _ in $(seq 40); do
      [ -z "$(timeout 5 squeue -h -t RUNNING,COMPLETING,CONFIGURING,PENDING,SUSPENDED,REQUEUED 2> /dev/null)" ] && break
      sleep 0.5
    done
  fi
  for _ in $(seq 20); do
    pids=$(cluster_job_pids "$dir")
    [ -z "$pids" ] && break
    sleep 0.5
  done
  if [ -n "$pids" ]; then
    log "killing job processes left behind: $(echo "$pids" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    kill -KILL $pids 2> /dev/null || true
  fi
  for d in slurmd slurmctld munged; do
    [ -f "$dir/$d.child" ] && stop_pid "$(cat "$dir/$d.child")" "$d"
  done
  return 0
}

show_logs() {  # show_logs DIR
  local f
  for f in slurmctld.log slurmd.log; do
    [ -f "$1/log/$f" ] || continue
    echo "----- last lines of $f -----" >&2
    grep -v -e 'debug' "$1/log/$f" | tail -n 25 >&2 || true
  done
}

cmd=${1:-}
shift || true
case $cmd in
  start)
    [ $# -eq 1 ] || die "usage: cluster.sh start DIR"
    start_cluster "$1"
    echo ". $(cd "$1" && pwd)/env.sh"
    ;;
  stop)
    [ $# -eq 1 ] || die "usage: cluster.sh stop DIR"
    stop_cluster "$(cd "$1" && pwd)"
    ;;
  run)
    limit=1500
    keep=0
    while [ $# -gt 0 ]; do
      case $1 in
        --timeout)
          limit=$2
          shift 2
          ;;
        --keep)
          keep=1
          shift
          ;;
        --)
          shift
          break
          ;;
        *) break ;;
      esac
    done
    [ $# -gt 0 ] || die "usage: cluster.sh run [--timeout SECS] [--keep] -- COMMAND [ARGS...]"
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/quopt-slurm.XXXXXX")
    cleanup() {
      local rc=$?
      trap - EXIT INT TERM
      stop_cluster "$DIR"
      if [ "$keep" = 1 ]; then log "kept $DIR"; else rm -rf "$DIR"; fi
      exit "$rc"
    }
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    t0=$(date +%s)
    start_cluster "$DIR"
    log "startup took $(($(date +%s) - t0)) s"
    export QUOPT_SLURM_DIR=$DIR QUOPT_SLURM_NODE
    QUOPT_SLURM_NODE=$(hostname -s)
    set +e
    timeout -k 10 "$limit" "$@"
    rc=$?
    set -e
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
      [ "$rc" -eq 124 ] && log "COMMAND ran past $limit s"
      show_logs "$DIR"
    fi
    exit "$rc"
    ;;
  *)
    die "usage: cluster.sh run [--timeout SECS] [--keep] -- COMMAND... | start DIR | stop DIR"
    ;;
esac
