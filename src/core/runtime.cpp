#include "core/runtime.hpp"

#include <mpi.h>

#include <Kokkos_Core.hpp>

#include "core/host_memory.hpp"
#include "core/log.hpp"
#include "kernels/host/threads.hpp"

namespace quopt {

Runtime::Runtime(int& argc, char**& argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  set_log_rank(rank_);
  {  // ranks sharing this node split its cores between their host threads (kernels/host/threads.hpp)
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    int on_node = 1;
    MPI_Comm_size(node, &on_node);
    MPI_Comm_free(&node);
    kernels::host::configure_host_threads(on_node);
  }
  // Kokkos 3.7 introduced InitializationSettings and deprecated InitArguments, which 4.0 removed
  // (Kokkos CHANGELOG 3.7.00 and 4.0.00); Debian 12 ships 3.4.1, Spack offers up to 4.7.
#if KOKKOS_VERSION >= 30700
  Kokkos::initialize(Kokkos::InitializationSettings().set_disable_warnings(true));
#else
  Kokkos::InitArguments args;
  args.disable_warnings = true;
  Kokkos::initialize(args);
#endif
  keep_freed_host_memory();  // after MPI and Kokkos, which may set malloc options of their own
}

Runtime::~Runtime() {
  Kokkos::finalize();
  MPI_Finalize();
}

}  // namespace quopt
