# Read by ctest before it starts any test (TEST_INCLUDE_FILES in tests/CMakeLists.txt): every test
# process gets one OpenMP thread unless the caller set OMP_NUM_THREADS, as a batch rank gets one per
# allocated CPU (jobs/env.sh). With a Kokkos built with OpenMP (what spack.yaml prefers) each rank of
# each test would otherwise start a thread per core; with ctest -j2 and the np 4 MPI tests on a busy
# 2-core machine, e2e_train_pipeline then trained at 40-240 tokens/s and timed out at 600 s, against
# 29k tokens/s and 15 s for the whole test with one thread (Kokkos 4.7.01, `spack install --test=root`).
# The same holds for quopt's own OpenMP host loops under Debian's Serial-only Kokkos (e2e 141 s instead
# of 28 s, parallel_resume 260-400 s instead of 39 s at ctest -j2), and slurm_requeue's calibration must
# run with the thread count of its 1-CPU job. The script tests pass the variable on to quopt and to the
# Slurm jobs they submit. Results do not depend on the thread count (test_kernels_threads runs several).
if(NOT DEFINED ENV{OMP_NUM_THREADS})
  set(ENV{OMP_NUM_THREADS} 1)
endif()
