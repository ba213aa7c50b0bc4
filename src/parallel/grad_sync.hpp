#pragma once
// Gradient accumulation and data-parallel averaging. Each micro-batch's backward writes fp32
// gradients, which are folded into fp64 accumulators (and zeroed); at the end of the step the
// accumulators are summed over the replicas of a stage with MPI_Iallreduce (MPI_DOUBLE; on GPUs the
// NCCL all-reduce of kernels/collectives.hpp, fp64 too), one bucket per block (its tensors packed
// contiguously) plus one for the rest (embedding, final norm, head), and rounded back into the fp32
// gradients. The folds and roundings are the kernels fold_f64 / unfold_f64, on the parameters' device.
// A block's bucket starts as soon as the last micro-batch's backward has finished that block,
// overlapping the backward of the blocks below it.
// Why fp64: a sum of fp32 terms in fp64 is exact to ~1e-16, so the rounded result does not depend on
// how the micro-batches are split over replicas; np=1, 2, 4 then see the same gradients (bitwise, up
// to ties at a rounding boundary), which matters for optimizers whose updates amplify tiny differences
// (Shampoo's inverse roots, sign-based LMOs). The loss is already scaled by 1 / (global batch tokens),
// so the sum is the global mean gradient.
#include <mpi.h>

#include <cstdint>
#include <map>
#include <vector>

#include "kernels/collectives.hpp"
#include "model/params.hpp"

namespace quopt {

class GradSync {
 public:
  GradSync(MPI_Comm data, ParameterSet& params);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // A micro-batch other than the step's last finished its backward: fold its gradients in.
  void micro_batch_done();
  // During the step's last backward: block `block`'s gradients are final; fold and start reducing.
  void block_ready(std::int64_t block);
  // Folds and starts every bucket not started yet, waits for all, writes the sums into the gradients
  // and resets the accumulators for the next step.
  void finish();
  // Seconds spent in MPI calls (starting, progressing and waiting) since construction.
  double comm_seconds() const { return comm_seconds_; }

 private:
  struct Bucket {
    std::vector<Parameter*> params;
    Tensor acc;  // the bucket's accumulators, packed (f64 [n], on the parameters' device); reduced in place
    MPI_Request request = MPI_REQUEST_NULL;  // host: the MPI_Iallreduce in flight
    kernels::PendingCollective pending;      // device: the NCCL all-reduce in flight
    bool started = false;
  };
  void fold(Bucket& b);
  void start(Bucket& b);
  MPI_Comm data_;
  int replicas_ = 1;
  std::vector<Bucket> buckets_;
  std::map<std::int64_t, std::size_t> block_bucket_;
  double comm_seconds_ = 0.0;
};

// Block index of a parameter named "block.NN/...", or -1.
std::int64_t block_of(const Parameter& p);

}  // namespace quopt
