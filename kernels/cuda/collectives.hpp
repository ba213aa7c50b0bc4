#pragma once
// CUDA backend of kernels/collectives.hpp: NCCL communicators bootstrapped over MPI, the collective
// stream, and the collectives on raw device buffers. Plain C++ declarations (no CUDA or NCCL headers).
#include <mpi.h>

#include <cstdint>
#include <vector>

namespace quopt::kernels::cuda {

// One device buffer of a grouped collective: count elements of f32 (or f64), and the root rank where
// the collective has one.
struct Buffer {
  void* data = nullptr;
  std::int64_t count = 0;
  bool f64 = false;
  int root = 0;
};

// Creates the NCCL communicator of comm if it has none yet (collective over comm).
void comm_init(MPI_Comm comm);
// Starts the in-place sum of data over comm; returns the event recorded after it (for wait_collective).
void* allreduce_sum_start(void* data, std::int64_t count, bool f64, MPI_Comm comm);
// Queues on the compute stream a wait for the event, then releases it. nothrow: errors are ignored (for
// destructors).
void wait_collective(void* event, bool nothrow);
// Broadcasts every buffer from its root, in one NCCL group (in chunks); the compute stream waits for it.
void broadcast_each(const std::vector<Buffer>& bufs, MPI_Comm comm);

}  // namespace quopt::kernels::cuda
