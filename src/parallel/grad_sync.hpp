#pragma once
// Data-parallel gradient averaging: parameter gradients are summed over the replicas of a stage with
// MPI_Iallreduce, one bucket per block (its tensors packed into one contiguous buffer) plus one for
// the rest (embedding, final norm, head). A block's bucket starts as soon as the last micro-batch's
// backward has finished that block, so its reduction overlaps the backward of the blocks below it.
// (The loss is already scaled by 1 / global batch tokens, so the sum is the global mean gradient.)
#include <mpi.h>

#include <cstdint>
#include <map>
#include <vector>

#include "model/params.hpp"

namespace quopt {

class GradSync {
 public:
  GradSync(MPI_Comm data, ParameterSet& params);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // The gradients of block `block` are final for this step: start reducing its bucket.
  void block_ready(std::int64_t block);
  // Starts every bucket not started yet, waits for all, and writes the sums back into the gradients.
  void finish();
  // Seconds spent in MPI calls (starting, progressing and waiting) since construction.
  double comm_seconds() const { return comm_seconds_; }

 private:
  struct Bucket {
    std::vector<Parameter*> params;
    std::vector<float> buffer;
    MPI_Request request = MPI_REQUEST_NULL;
    bool started = false;
  };
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
