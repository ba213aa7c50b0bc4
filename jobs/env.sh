# shellcheck shell=bash
# The software environment of quopt's batch jobs. Sourced (never executed) by jobs/lib.sh, i.e. by every
# jobs/*.sbatch on the compute node and by jobs/submit-study.sh on the login node. Nothing here names a
# cluster, a partition or a module version: set the variables below (export them before sbatch or
# submit-study.sh; sbatch passes the environment to the job, --export=ALL being Slurm's default).
#
#   QUOPT_ENV_SCRIPT=FILE        sourced first: site-specific setup (module purge, proxies, scratch, ...)
#   QUOPT_SPACK_ENV=DIR|NAME     activate this Spack environment (the repository's spack.yaml makes the
#                                repository itself one: QUOPT_SPACK_ENV=$QUOPT_ROOT). Needs `spack` on
#                                PATH or SPACK_ROOT set.
#   QUOPT_MODULES="m1 m2 ..."    `module load` these (Lmod or Environment Modules)
#   QUOPT=PATH                   the quopt binary. Default: $QUOPT_ROOT/build/$QUOPT_PRESET/quopt if it
#                                exists (QUOPT_PRESET defaults to cuda when the job was given GPUs and
#                                build/cuda/quopt exists, else cpu), else `quopt` on PATH (Spack install).
#   QUOPT_PYTHON=PATH            the Python that runs postprocess/ (default python3 on PATH)
#
# With none of them set, the system's packages are used as they are (Debian: scripts/lib.sh lists them).
# Sets QUOPT (absolute path) and QUOPT_PYTHON; exports OMP_NUM_THREADS from --cpus-per-task. (quopt
# itself starts libgomp and OpenBLAS with sleeping idle threads: src/app/idle_threads.hpp.)

quopt_env_die() {
  echo "quopt jobs/env.sh: $*" >&2
  return 1
}

quopt_env_setup() {
  : "${QUOPT_ROOT:?jobs/env.sh needs QUOPT_ROOT (the repository) to be set}"

  if [ -n "${QUOPT_ENV_SCRIPT:-}" ]; then
    [ -f "$QUOPT_ENV_SCRIPT" ] || quopt_env_die "QUOPT_ENV_SCRIPT=$QUOPT_ENV_SCRIPT does not exist" || return 1
    # shellcheck disable=SC1090
    . "$QUOPT_ENV_SCRIPT"
  fi

  if [ -n "${QUOPT_SPACK_ENV:-}" ]; then
    if ! command -v spack > /dev/null 2>&1 && [ -n "${SPACK_ROOT:-}" ]; then
      PATH=$SPACK_ROOT/bin:$PATH
    fi
    command -v spack > /dev/null 2>&1 ||
      quopt_env_die "QUOPT_SPACK_ENV is set but spack is neither on PATH nor under SPACK_ROOT" || return 1
    local how=()
    [ -d "$QUOPT_SPACK_ENV" ] && how=(-d)
    local activate
    activate=$(spack env activate --sh "${how[@]}" "$QUOPT_SPACK_ENV") ||
      quopt_env_die "spack env activate $QUOPT_SPACK_ENV failed (is it concretized and installed?" \
        "spack -e $QUOPT_SPACK_ENV install)" || return 1
    eval "$activate"
  fi

  if [ -n "${QUOPT_MODULES:-}" ]; then
    if ! type module > /dev/null 2>&1; then
      local init
      for init in "${LMOD_PKG:-/nonexistent}/init/bash" /usr/share/lmod/lmod/init/bash \
        /etc/profile.d/lmod.sh /etc/profile.d/modules.sh /usr/share/modules/init/bash; do
        # shellcheck disable=SC1090
        [ -f "$init" ] && . "$init" && break
      done
    fi
    type module > /dev/null 2>&1 ||
      quopt_env_die "QUOPT_MODULES is set but no 'module' command was found (Lmod or Environment Modules)" ||
      return 1
    # shellcheck disable=SC2086
    module load $QUOPT_MODULES || quopt_env_die "module load $QUOPT_MODULES failed" || return 1
  fi

  if [ -z "${QUOPT:-}" ]; then
    if [ -z "${QUOPT_PRESET:-}" ]; then
      QUOPT_PRESET=cpu
      if [ -n "${SLURM_GPUS_ON_NODE:-}" ] && [ "${SLURM_GPUS_ON_NODE}" != 0 ]; then
        if [ -x "$QUOPT_ROOT/build/cuda/quopt" ]; then
          QUOPT_PRESET=cuda
        else
          echo "quopt jobs/env.sh: warning: the job has GPUs but $QUOPT_ROOT/build/cuda/quopt does not exist;" \
            "using the CPU build (cmake --preset cuda && cmake --build build/cuda, or set QUOPT)" >&2
        fi
      fi
    fi
    if [ -x "$QUOPT_ROOT/build/$QUOPT_PRESET/quopt" ]; then
      QUOPT=$QUOPT_ROOT/build/$QUOPT_PRESET/quopt
    else
      QUOPT=$(command -v quopt 2> /dev/null) ||
        quopt_env_die "no quopt binary: neither $QUOPT_ROOT/build/$QUOPT_PRESET/quopt nor quopt on PATH;" \
          "build it (cmake --preset $QUOPT_PRESET && cmake --build build/$QUOPT_PRESET) or set QUOPT=PATH" ||
        return 1
    fi
  fi
  case $QUOPT in
    /*) ;;
    */*) QUOPT=$(cd "$(dirname "$QUOPT")" && pwd)/$(basename "$QUOPT") ;;
    *) QUOPT=$(command -v "$QUOPT") || quopt_env_die "QUOPT=$QUOPT is not on PATH" || return 1 ;;
  esac
  [ -x "$QUOPT" ] || quopt_env_die "QUOPT=$QUOPT is not an executable file" || return 1
  export QUOPT
  : "${QUOPT_PYTHON:=python3}"
  export QUOPT_PYTHON
  # One OpenMP/Kokkos thread per allocated CPU of the task (Slurm sets SLURM_CPUS_PER_TASK only when
  # --cpus-per-task was given; 1 otherwise, which is what a rank-per-core CPU run wants).
  export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}
}
