#pragma once
// What idle threads of libgomp and of OpenBLAS do, chosen before either library starts.
#include <string>

namespace quopt::app {

// Called first in main(). quopt runs its host loops on libgomp's threads and its GEMMs on OpenBLAS's
// own threads, one after the other. Both libraries keep a thread that has finished its work busy for a
// while, waiting for the next piece: libgomp spins (OMP_WAIT_POLICY unset), OpenBLAS's pthreads spin
// and yield for 2^28 cycles (OPENBLAS_THREAD_TIMEOUT unset, 0.1 s at 2.5 GHz) after every GEMM. With one
// thread per core, each library's waiting threads take the cores from the other's working ones: with
// those defaults olmo2-small ran at 0.96x its 1-thread speed on 2 threads, without them 1.85x
// (docs/benchmarks.md, "Host threads"). So where
// the user has chosen neither and more than one thread may run (OMP_NUM_THREADS or OPENBLAS_NUM_THREADS
// not 1), quopt re-executes itself (/proc/self/exe, same arguments and environment) with
// OMP_WAIT_POLICY=passive and OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS's minimum, 2^4 cycles) set where
// unset: both libraries read them only when they are loaded, before main(). A user's own value of
// either (any value) is kept; setting both is also how to avoid the re-execution (under valgrind,
// which would not follow it). If the re-execution fails, the process goes on with the defaults.
void ensure_passive_idle_threads(char** argv);

// "OMP_WAIT_POLICY=passive, OPENBLAS_THREAD_TIMEOUT=4": the two variables as this process found them at
// start-up, i.e. what the libraries read ("unset" for one that was not set, a failed re-execution
// included).
std::string idle_thread_settings();

}  // namespace quopt::app
