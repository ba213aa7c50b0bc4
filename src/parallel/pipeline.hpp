#pragma once
// Pipeline execution of one training step over micro-batches with the 1F1B schedule (PipeDream-Flush,
// Narayanan et al. 2021): stage s runs min(P-s-1, M) warm-up forwards, then alternates one forward and
// one backward, then drains the remaining backwards. Chosen over GPipe because it keeps at most P-s
// micro-batches of activations alive instead of all M, with the same bubble; the gradient
// accumulation order (micro-batch 0, 1, ..., M-1) is the same as on one rank, so the result does not
// depend on the schedule. Activations go forward and their gradients backward with MPI point-to-point
// messages in the replica's pipe communicator (non-blocking sends, tags by micro-batch).
#include <cstdint>
#include <functional>
#include <vector>

#include "model/olmo2.hpp"
#include "parallel/grad_sync.hpp"
#include "parallel/grid.hpp"

namespace quopt {

// Fills micro-batch m's inputs and targets (i32 [rows, T]).
using MicroBatchFn = std::function<void(std::int64_t m, Tensor& inputs, Tensor& targets)>;

class PipelineEngine {
 public:
  PipelineEngine(const ProcessGrid& grid, Olmo2& model, std::int64_t rows, std::int64_t seq);
  // Forward and backward of micro-batches 0..n_micro-1 scaled by dscale. `sync`, if given, folds each
  // micro-batch's gradients into its accumulators and is told when each block's gradients are final
  // (call sync->finish() afterwards to get the step's gradients).
  // Returns the summed loss of this rank's micro-batches (zero except on the last stage).
  LossSum train_step(std::int64_t n_micro, const MicroBatchFn& batch, double dscale, GradSync* sync);
  // Forward only (validation).
  LossSum evaluate(std::int64_t n_micro, const MicroBatchFn& batch);
  double comm_seconds() const { return comm_seconds_; }

 private:
  void forward(std::int64_t m, const MicroBatchFn& batch, Activations& act, LossSum& loss);
  void backward(std::int64_t m, Activations& act, double dscale, GradSync* sync, bool last);
  void isend(Tensor t, int dest, int tag);
  void wait_sends();

  const ProcessGrid& grid_;
  Olmo2& model_;
  std::int64_t rows_, seq_;
  struct Pending {
    MPI_Request req;
    Tensor buf;
  };
  std::vector<Pending> sends_;
  double comm_seconds_ = 0.0;
};

}  // namespace quopt
