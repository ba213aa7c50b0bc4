#pragma once
// Collectives between the GPUs of the ranks of an MPI communicator (one GPU per rank), for tensors that
// live on a device: NCCL in the CUDA backend. Host tensors use MPI directly (their callers do).
//
// Bootstrap: the NCCL communicator of an MPI communicator is created by the first device collective on it
// (rank 0 makes an ncclUniqueId, one MPI_Bcast shares it, every rank calls ncclCommInitRank) and cached on
// the MPI communicator as an attribute, so it lives as long as that communicator and is destroyed with it
// (MPI_Comm_free). Every call is therefore collective over comm and must be made in the same order on
// every rank of it, like any MPI collective.
//
// Ordering: each collective runs on the backend's collective stream, after the work queued on the compute
// stream so far; the compute stream waits for its end where the result is used (wait(), or at once for
// the blocking forms). Neither the host nor the device is synchronised.
#include <mpi.h>

#include <vector>

#include "core/tensor.hpp"

namespace quopt::kernels {

// A device collective in flight. wait() queues, on the compute stream, a wait for its end: work queued
// afterwards sees its result. Destroying an unwaited one waits the same way. Move-only.
class PendingCollective {
 public:
  PendingCollective() = default;
  explicit PendingCollective(void* event) : event_(event) {}
  PendingCollective(PendingCollective&& o) noexcept : event_(o.event_) { o.event_ = nullptr; }
  PendingCollective& operator=(PendingCollective&& o) noexcept;
  PendingCollective(const PendingCollective&) = delete;
  PendingCollective& operator=(const PendingCollective&) = delete;
  ~PendingCollective();
  bool pending() const { return event_ != nullptr; }
  void wait();

 private:
  void release() noexcept;  // the destructor's wait, errors ignored
  void* event_ = nullptr;   // the CUDA event recorded after the collective
};

// Creates (collectively) the device communicator of comm now instead of at its first collective, so that
// the set-up cost and its failures come at start-up. Fails in a build without the CUDA backend.
void device_comm_init(MPI_Comm comm);
// x (f32 or f64, on the device) = its sum over comm's ranks, in place; starts now (overlapping the compute
// work queued after it); the result may be read after wait().
PendingCollective device_allreduce_sum_start(Tensor& x, MPI_Comm comm);
// For every i: xs[i] (on the device, f32 or f64) on every rank = its value on rank roots[i] of comm. One
// grouped set of broadcasts (the all-gather of results of different sizes owned by different ranks that
// MPI_Allgatherv does on the host); the compute stream waits for it.
void device_broadcast_each(std::vector<Tensor>& xs, const std::vector<int>& roots, MPI_Comm comm);

}  // namespace quopt::kernels
