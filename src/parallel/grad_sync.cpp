#include "parallel/grad_sync.hpp"

#include <algorithm>
#include <cstdlib>

#include "core/error.hpp"
#include "core/timer.hpp"
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
    std::size_t n = 0;
    for (auto* p : b.params) n += static_cast<std::size_t>(p->grad.numel());
    const Device dev = b.params.front()->grad.device();
    if (dev == Device::Host) {
      b.acc.assign(n, 0.0);
    } else {
      QUOPT_CHECK(replicas_ == 1, "data-parallel training on ", device_name(dev),
                  " needs the NCCL gradient all-reduce, which is not implemented yet; run one rank per "
                  "pipeline stage (parallel.pipeline_stages = number of ranks) or train on the host");
      b.dacc = Tensor::zeros({static_cast<std::int64_t>(n)}, DType::F64, dev);
    }
  }
}

GradSync::~GradSync() {
  for (auto& b : buckets_)
    if (b.request != MPI_REQUEST_NULL) MPI_Wait(&b.request, MPI_STATUS_IGNORE);
}

void GradSync::fold(Bucket& b) {
  if (b.dacc.defined()) {  // device: the same fp64 accumulation, by kernels
    std::int64_t off = 0;
    for (auto* p : b.params) {
      Tensor a = b.dacc.slice(off, off + p->grad.numel());
      kernels::fold_f64(p->grad, a);
      off += p->grad.numel();
    }
    return;
  }
  double* a = b.acc.data();
  for (auto* p : b.params) {
    float* g = p->grad.data<float>();
    const std::int64_t n = p->grad.numel();
    for (std::int64_t i = 0; i < n; ++i) {
      a[i] += static_cast<double>(g[i]);
      g[i] = 0.0f;
    }
    a += n;
  }
}

void GradSync::start(Bucket& b) {
  if (b.started) return;
  fold(b);
  b.started = true;
  if (replicas_ == 1) return;
  const double t0 = wall_seconds();
  MPI_Iallreduce(MPI_IN_PLACE, b.acc.data(), static_cast<int>(b.acc.size()), MPI_DOUBLE, MPI_SUM, data_,
                 &b.request);
  comm_seconds_ += wall_seconds() - t0;
}

void GradSync::micro_batch_done() {
  for (auto& b : buckets_) fold(b);
}

void GradSync::block_ready(std::int64_t block) {
  auto it = block_bucket_.find(block);
  if (it != block_bucket_.end()) start(buckets_[it->second]);
  if (replicas_ == 1) return;
  // Let the MPI library progress the reductions already in flight.
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
    if (b.dacc.defined()) {
      std::int64_t off = 0;
      for (auto* p : b.params) {
        Tensor a = b.dacc.slice(off, off + p->grad.numel());
        kernels::unfold_f64(a, p->grad);
        off += p->grad.numel();
      }
      b.started = false;
      continue;
    }
    const double* a = b.acc.data();
    for (auto* p : b.params) {
      float* g = p->grad.data<float>();
      const std::int64_t n = p->grad.numel();
      for (std::int64_t i = 0; i < n; ++i) g[i] = static_cast<float>(a[i]);
      a += n;
    }
    std::fill(b.acc.begin(), b.acc.end(), 0.0);
    b.started = false;
  }
  if (replicas_ > 1) comm_seconds_ += wall_seconds() - t0;
}

}  // namespace quopt
