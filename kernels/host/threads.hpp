#pragma once
// Thread counts of the host: the loops of kernels/host (host_policy.hpp) and OpenBLAS's own pool.
#include <string>

namespace quopt::kernels::host {

// Called once at start-up with the number of MPI ranks on this node. Where the user has not chosen
// (OMP_NUM_THREADS, resp. OPENBLAS_NUM_THREADS / OMP_NUM_THREADS unset), each rank gets
// max(1, cores / ranks_on_node) threads for host loops and for OpenBLAS, so np ranks on a node never
// start np x cores spinning threads. Results do not depend on these counts (host_policy.hpp).
void configure_host_threads(int ranks_on_node);

// What runs the host loops: "OpenMP, 2 threads", "Kokkos OpenMP, 8 threads", "Kokkos Serial, 1 thread".
std::string host_loops_description();

// OpenBLAS's thread count now.
int blas_threads();

// While alive and `active`, OpenBLAS runs single-threaded (restored after): for BLAS calls made from
// inside a parallel host loop, where OpenBLAS's own threads would only compete with the loop's.
class SingleThreadedBlas {
 public:
  explicit SingleThreadedBlas(bool active);
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_;
};

}  // namespace quopt::kernels::host
