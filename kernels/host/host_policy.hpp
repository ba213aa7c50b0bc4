#pragma once
// How every host kernel of kernels/host/ runs its parallel loops: host_for(name, n, f, work) calls
// f(i) for i in [0, n), in parallel when the loop is worth it.
//
// Kokkos is the portable layer: with a Kokkos built with a threaded host backend (Spack's
// kokkos+openmp, or +threads) the loop is a Kokkos::parallel_for on the default host execution space.
// Debian 12's Kokkos (libtrilinos-kokkos-dev 13.2) has only the Serial backend, which would leave every
// non-GEMM op on one thread; there, when quopt is compiled with OpenMP (CMake finds it; kernels/
// CMakeLists.txt), the same loop is an OpenMP `parallel for` with a static schedule instead. Both give
// the same results: every kernel writes each output element from one iteration only, and reductions
// are per-task partials combined in a fixed order afterwards, so results never depend on the thread
// count or the schedule (tests/unit/test_kernels_threads.cpp). Kernels must be race-free and must not
// throw inside a loop body.
//
// `work` is a rough count of element operations per iteration; loops with fewer than kParallelWork in
// all run serially (a fork/join costs a few microseconds, tens of thousands of element operations
// when a thread has to be woken).
#include <Kokkos_Core.hpp>
#include <cstdint>

#if defined(QUOPT_HOST_OPENMP) && !defined(KOKKOS_ENABLE_OPENMP) && !defined(KOKKOS_ENABLE_THREADS)
#define QUOPT_HOST_LOOPS_OPENMP 1
#include <omp.h>
#endif

namespace quopt::kernels::host {

using HostSpace = Kokkos::DefaultHostExecutionSpace;
using HostRange = Kokkos::RangePolicy<HostSpace, Kokkos::IndexType<std::int64_t>>;

// Column chunk width of the deterministic column-parallel reductions (embedding and RMSNorm weight
// gradients): 64 doubles = 512 B, eight cache lines, so each task streams contiguous memory.
inline constexpr std::int64_t kColumnChunk = 64;

// Total elements below which a loop is not worth splitting over threads.
inline constexpr std::int64_t kParallelWork = 65536;

// Threads host_for uses (1 when serial).
inline int host_threads() {
#ifdef QUOPT_HOST_LOOPS_OPENMP
  return omp_get_max_threads();
#else
  return HostSpace::concurrency();
#endif
}

template <class F>
void host_for(const char* name, std::int64_t n, const F& f, std::int64_t work = 1) {
  if (n <= 0) return;
  if (n == 1 || n * work < kParallelWork) {
    for (std::int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#ifdef QUOPT_HOST_LOOPS_OPENMP
  (void)name;
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) f(i);
#else
  Kokkos::parallel_for(name, HostRange(0, n), f);
  Kokkos::fence();
#endif
}

}  // namespace quopt::kernels::host
