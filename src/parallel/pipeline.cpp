#include "parallel/pipeline.hpp"

#include <algorithm>
#include <deque>

#include "core/error.hpp"
#include "core/timer.hpp"

namespace quopt {

namespace {
int fwd_tag(std::int64_t m) {
  return static_cast<int>(2 * m);
}
int bwd_tag(std::int64_t m) {
  return static_cast<int>(2 * m + 1);
}
}  // namespace

PipelineEngine::PipelineEngine(const ProcessGrid& grid, Olmo2& model, std::int64_t rows, std::int64_t seq)
    : grid_(grid), model_(model), rows_(rows), seq_(seq) {}

void PipelineEngine::isend(Tensor t, int dest, int tag) {
  const double t0 = wall_seconds();
  Pending p{MPI_REQUEST_NULL, std::move(t)};
  MPI_Isend(p.buf.raw(), static_cast<int>(p.buf.numel()), MPI_FLOAT, dest, tag, grid_.pipe(), &p.req);
  sends_.push_back(std::move(p));
  comm_seconds_ += wall_seconds() - t0;
}

void PipelineEngine::wait_sends() {
  const double t0 = wall_seconds();
  for (auto& p : sends_) MPI_Wait(&p.req, MPI_STATUS_IGNORE);
  sends_.clear();
  comm_seconds_ += wall_seconds() - t0;
}

void PipelineEngine::forward(std::int64_t m, const MicroBatchFn& batch, Activations& act, LossSum& loss) {
  const std::int64_t N = rows_ * seq_, C = model_.config().d_model;
  Tensor inputs, targets, x;
  if (grid_.first_stage() || grid_.last_stage()) {
    inputs = Tensor::empty({rows_, seq_}, DType::I32);
    targets = Tensor::empty({rows_, seq_}, DType::I32);
    batch(m, inputs, targets);
  }
  if (grid_.first_stage()) {
    x = inputs;
  } else {
    x = Tensor::empty({N, C}, model_.dtype());
    const double t0 = wall_seconds();
    MPI_Recv(x.raw(), static_cast<int>(x.numel()), MPI_FLOAT, grid_.stage() - 1, fwd_tag(m), grid_.pipe(),
             MPI_STATUS_IGNORE);
    comm_seconds_ += wall_seconds() - t0;
  }
  LossSum ls;
  Tensor y = model_.forward_stage(x, targets, rows_, seq_, act, grid_.last_stage() ? &ls : nullptr);
  loss.sum += ls.sum;
  loss.count += ls.count;
  if (!grid_.last_stage()) isend(y, grid_.stage() + 1, fwd_tag(m));
}

void PipelineEngine::backward(std::int64_t m, Activations& act, double dscale, GradSync* sync, bool last) {
  const std::int64_t N = rows_ * seq_, C = model_.config().d_model;
  Tensor dy;
  if (!grid_.last_stage()) {
    dy = Tensor::empty({N, C}, model_.dtype());
    const double t0 = wall_seconds();
    MPI_Recv(dy.raw(), static_cast<int>(dy.numel()), MPI_FLOAT, grid_.stage() + 1, bwd_tag(m), grid_.pipe(),
             MPI_STATUS_IGNORE);
    comm_seconds_ += wall_seconds() - t0;
  }
  std::function<void(std::int64_t)> done;
  if (last && sync) done = [sync](std::int64_t b) { sync->block_ready(b); };
  Tensor dx = model_.backward_stage(act, dy, dscale, done);
  if (!last && sync) sync->micro_batch_done();
  if (!grid_.first_stage()) isend(dx, grid_.stage() - 1, bwd_tag(m));
}

LossSum PipelineEngine::train_step(std::int64_t n_micro, const MicroBatchFn& batch, double dscale,
                                   GradSync* sync) {
  QUOPT_CHECK(model_.dtype() == DType::F32 || grid_.stages() == 1, "pipeline transfers are f32");
  const std::int64_t warm = std::min<std::int64_t>(grid_.stages() - grid_.stage() - 1, n_micro);
  std::deque<Activations> live;  // activations of micro-batches forwarded but not yet backwarded
  LossSum loss;
  std::int64_t next_bwd = 0;
  for (std::int64_t m = 0; m < n_micro; ++m) {
    live.emplace_back();
    live.back().head_dscale = dscale;  // the head's gradients come with its forward (model/olmo2.hpp)
    forward(m, batch, live.back(), loss);
    if (m >= warm) {
      backward(next_bwd, live.front(), dscale, sync, next_bwd == n_micro - 1);
      live.pop_front();
      ++next_bwd;
    }
  }
  for (; next_bwd < n_micro; ++next_bwd) {
    backward(next_bwd, live.front(), dscale, sync, next_bwd == n_micro - 1);
    live.pop_front();
  }
  wait_sends();
  return loss;
}

LossSum PipelineEngine::evaluate(std::int64_t n_micro, const MicroBatchFn& batch) {
  LossSum loss;
  for (std::int64_t m = 0; m < n_micro; ++m) {
    Activations act;
    forward(m, batch, act, loss);
  }
  wait_sends();
  return loss;
}

}  // namespace quopt
