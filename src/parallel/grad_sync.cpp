#include "parallel/grad_sync.hpp"

#include <algorithm>
#include <cstdlib>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "kernels/collectives.hpp"
#include "kernels/ops.hpp"

namespace quopt {

std::int64_t block_of(const Parameter& p) {
  const std::string layer = p.layer();
  if (layer.rfind("block.", 0) != 0) return -1;
  return std::strtoll(layer.c_str() + 6, nullptr, 10);
}

GradSync::GradSync(MPI_Comm data, ParameterSet& params) : data_(data) {
  MPI_Comm_size(data, &replicas_);
  std::size_t rest = SIZE_MAX;
  for (auto& p : params.all()) {
    QUOPT_CHECK(p.grad.dtype() == DType::F32, "gradient accumulation expects f32 gradients, got ",
                p.grad.describe(), " for ", p.name);
    const std::int64_t blk = block_of(p);
    std::size_t idx;
    if (blk >= 0) {
      auto it = block_bucket_.find(blk);
      if (it == block_bucket_.end()) {
        it = block_bucket_.emplace(blk, buckets_.size()).first;
        buckets_.emplace_back();
      }
      idx = it->second;
    } else {
      if (rest == SIZE_MAX) {
        rest = buckets_.size();
        buckets_.emplace_back();
      }
      idx = rest;
    }
    buckets_[idx].params.push_back(&p);
  }
  for (auto& b : buckets_) {
    std::int64_t n = 0;
    for (auto* p : b.params) n += p->grad.numel();
    const Device dev = b.params.front()->grad.device();
    for (auto* p : b.params)
      QUOPT_CHECK(p->grad.device() == dev, "gradient accumulation: ", p->name, " lives on ",
                  device_name(p->grad.device()), " but ", b.params.front()->name, " on ", device_name(dev),
                  "; a model's parameters live on one device");
    b.acc = Tensor::zeros({n}, DType::F64, dev);
  }
  // GPU replicas reduce over NCCL; its communicator is made now, at start-up, not in the first step.
  if (replicas_ > 1 && !buckets_.empty() && !buckets_.front().acc.is_host()) kernels::device_comm_init(data_);
}

GradSync::~GradSync() {
  for (auto& b : buckets_)
    if (b.request != MPI_REQUEST_NULL) MPI_Wait(&b.request, MPI_STATUS_IGNORE);
}

void GradSync::fold(Bucket& b) {
  std::int64_t off = 0;
  for (auto* p : b.params) {
    Tensor a = b.acc.slice(off, off + p->grad.numel());
    kernels::fold_f64(p->grad, a);
    off += p->grad.numel();
  }
}

void GradSync::start(Bucket& b) {
  if (b.started) return;
  fold(b);
  b.started = true;
  if (replicas_ == 1) return;
  const double t0 = wall_seconds();
  if (b.acc.is_host()) {
    MPI_Iallreduce(MPI_IN_PLACE, b.acc.data<double>(), static_cast<int>(b.acc.numel()), MPI_DOUBLE, MPI_SUM,
                   data_, &b.request);
  } else {
    // NCCL on the collective stream, after this bucket's folds; the backward of the blocks below goes on.
    b.pending = kernels::device_allreduce_sum_start(b.acc, data_);
  }
  comm_seconds_ += wall_seconds() - t0;
}

void GradSync::micro_batch_done() {
  for (auto& b : buckets_) fold(b);
}

void GradSync::block_ready(std::int64_t block) {
  auto it = block_bucket_.find(block);
  if (it != block_bucket_.end()) start(buckets_[it->second]);
  if (replicas_ == 1) return;
  // Let the MPI library progress the reductions already in flight (NCCL's progress on its own).
  const double t0 = wall_seconds();
  for (auto& b : buckets_) {
    if (b.request == MPI_REQUEST_NULL) continue;
    int done = 0;
    MPI_Test(&b.request, &done, MPI_STATUS_IGNORE);
  }
  comm_seconds_ += wall_seconds() - t0;
}

void GradSync::finish() {
  for (auto& b : buckets_) start(b);
  const double t0 = wall_seconds();
  for (auto& b : buckets_) {
    if (b.request != MPI_REQUEST_NULL) MPI_Wait(&b.request, MPI_STATUS_IGNORE);
    b.pending.wait();  // device: the compute stream waits for the all-reduce, the host does not
    std::int64_t off = 0;
    for (auto* p : b.params) {
      Tensor a = b.acc.slice(off, off + p->grad.numel());
      kernels::unfold_f64(a, p->grad);  // also zeroes the accumulator for the next step
      off += p->grad.numel();
    }
    b.started = false;
  }
  if (replicas_ > 1) comm_seconds_ += wall_seconds() - t0;
}

}  // namespace quopt
