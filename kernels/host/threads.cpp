#include "kernels/host/threads.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

namespace {
bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}
}  // namespace

void configure_host_threads(int ranks_on_node) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int share = std::max(1, cores / std::max(1, ranks_on_node));
#ifdef QUOPT_HOST_LOOPS_OPENMP
  if (!env_set("OMP_NUM_THREADS")) omp_set_num_threads(share);
#endif
  if (!env_set("OPENBLAS_NUM_THREADS") && !env_set("OMP_NUM_THREADS")) openblas_set_num_threads(share);
}

std::string host_loops_description() {
  const int n = host_threads();
  const std::string threads = std::to_string(n) + (n == 1 ? " thread" : " threads");
#ifdef QUOPT_HOST_LOOPS_OPENMP
  return "OpenMP (Kokkos " + std::string(HostSpace::name()) + " underneath), " + threads;
#else
  return "Kokkos " + std::string(HostSpace::name()) + ", " + threads;
#endif
}

int blas_threads() { return openblas_get_num_threads(); }

SingleThreadedBlas::SingleThreadedBlas(bool active) : saved_(active ? openblas_get_num_threads() : 1) {
  if (saved_ != 1) openblas_set_num_threads(1);
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (saved_ != 1) openblas_set_num_threads(saved_);
}

}  // namespace quopt::kernels::host
