#!/usr/bin/env bash
# Installs what is missing, builds the cpu preset (and compiles the cuda preset where nvcc exists),
# runs every test: ctest (labels unit, mpi, e2e, slurm; e2e includes install_prefix_study, which
# installs the build into a temporary prefix with `cmake --install` and runs a study and its report
# from there) and pytest for postprocess/ and tests/python.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_deps
build_preset cpu
if [ -n "$(find_nvcc)" ]; then
  build_preset cuda quopt   # compile and link only: there may be no GPU to run it on
else
  log "nvcc not found: skipping the cuda preset"
fi

log "running ctest"
ctest --test-dir build/cpu --output-on-failure -j "$(nproc)" --timeout 900

log "running pytest (postprocess/, tests/python/)"
QUOPT_BIN=$PWD/build/cpu/quopt QUOPT_TEST_H5FILE=$PWD/build/cpu/tests/test_h5file \
  QUOPT_TEST_EVAL_TASK=$PWD/build/cpu/tests/test_eval_task \
  python3 -m pytest -q postprocess/tests tests/python
