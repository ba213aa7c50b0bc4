// Device collectives: checks, then the CUDA backend's NCCL implementation (kernels/cuda/collectives.cpp).
// A build without the CUDA backend has no device tensors, so every entry point fails with the reason.
#include "kernels/collectives.hpp"

#include <utility>

#include "core/error.hpp"
#include "kernels/dispatch.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/collectives.hpp"
#endif

namespace quopt::kernels {

namespace {

void check_device_float(const char* op, const char* name, const Tensor& t) {
  detail::check_float(op, name, t);
  QUOPT_CHECK(!t.is_host(), op, ": '", name, "' is ", t.describe(),
              "; device collectives take device tensors (host tensors use MPI)");
}

[[noreturn, maybe_unused]] void no_backend(const char* op) {
  fail(op,
       ": collectives between GPUs need the CUDA backend (NCCL); this quopt was built without it "
       "(cmake --preset cuda)");
}

}  // namespace

PendingCollective& PendingCollective::operator=(PendingCollective&& o) noexcept {
  if (this != &o) {
    release();
    event_ = std::exchange(o.event_, nullptr);
  }
  return *this;
}

PendingCollective::~PendingCollective() {
  release();
}

void PendingCollective::release() noexcept {
#ifdef QUOPT_HAVE_CUDA
  if (event_ != nullptr) cuda::wait_collective(std::exchange(event_, nullptr), /*nothrow=*/true);
#endif
}

void PendingCollective::wait() {
  if (event_ == nullptr) return;
#ifdef QUOPT_HAVE_CUDA
  cuda::wait_collective(std::exchange(event_, nullptr), /*nothrow=*/false);
#endif
}

void device_comm_init([[maybe_unused]] MPI_Comm comm) {
#ifdef QUOPT_HAVE_CUDA
  cuda::comm_init(comm);
#else
  no_backend("device_comm_init");
#endif
}

PendingCollective device_allreduce_sum_start(Tensor& x, [[maybe_unused]] MPI_Comm comm) {
  constexpr const char* op = "device_allreduce_sum";
  check_device_float(op, "x", x);
#ifdef QUOPT_HAVE_CUDA
  return PendingCollective(cuda::allreduce_sum_start(x.raw(), x.numel(), x.dtype() == DType::F64, comm));
#else
  no_backend(op);
#endif
}

void device_broadcast_each(std::vector<Tensor>& xs, const std::vector<int>& roots, MPI_Comm comm) {
  constexpr const char* op = "device_broadcast_each";
  QUOPT_CHECK(xs.size() == roots.size(), op, ": ", xs.size(), " tensors but ", roots.size(), " roots");
  int size = 1;
  MPI_Comm_size(comm, &size);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    check_device_float(op, "xs[i]", xs[i]);
    QUOPT_CHECK(roots[i] >= 0 && roots[i] < size, op, ": root ", roots[i], " of tensor ", i,
                " is not a rank of the ", size, "-rank communicator");
  }
#ifdef QUOPT_HAVE_CUDA
  std::vector<cuda::Buffer> bufs;
  bufs.reserve(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i)
    bufs.push_back({xs[i].raw(), xs[i].numel(), xs[i].dtype() == DType::F64, roots[i]});
  cuda::broadcast_each(bufs, comm);
#else
  no_backend(op);
#endif
}

}  // namespace quopt::kernels
