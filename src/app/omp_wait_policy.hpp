#pragma once
// libgomp's wait policy for idle OpenMP threads, chosen before libgomp starts.

namespace quopt::app {

// Called first in main(). When OMP_WAIT_POLICY is unset (or empty) and more than one OpenMP thread may
// run (OMP_NUM_THREADS is not 1), re-executes this program (/proc/self/exe, same arguments and
// environment) with OMP_WAIT_POLICY=passive; otherwise returns at once. libgomp reads the policy only
// when it is loaded, before main(), and its default spins idle threads for a while after every loop:
// on a machine whose cores are all in use that spinning takes the cores from OpenBLAS's threads, which
// run each GEMM between two host loops, and two threads came out slower than one (docs/benchmarks.md).
// A user's own OMP_WAIT_POLICY (any value, "active" included) is kept; setting it is also how to avoid
// the re-execution (under valgrind, which would not follow it). If the re-execution fails, the process
// goes on with libgomp's default.
void ensure_omp_wait_policy(char** argv);

// The policy libgomp was started with: OMP_WAIT_POLICY as this process found it at start-up, or
// "default (spinning)" when it was unset (a failed re-execution included).
const char* omp_wait_policy_in_use();

}  // namespace quopt::app
