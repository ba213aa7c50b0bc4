// CUDA device discovery, the Tensor allocator hooks (stream-ordered cudaMallocAsync / cudaFreeAsync
// from a memory pool that keeps freed blocks, cudaMemcpyAsync), the backend's stream and the library
// handles (cuBLAS, cuBLASLt, cuSOLVER) bound to it.
#include <cstdint>

#include "core/tensor.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/device.hpp"

namespace quopt::kernels::cuda {

namespace {

void* device_alloc(std::size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMallocAsync(&p, bytes, stream());
  if (e != cudaSuccess) {
    std::size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    fail("cudaMallocAsync of ", bytes, " bytes failed: ", cudaGetErrorString(e), " (", free_b, " of ", total_b,
         " bytes free); reduce the micro-batch size or the model size");
  }
  return p;
}

// Called from Storage's destructor: must not throw. The block returns to the pool once the work queued
// on the stream before this point is done (stream order), so kernels still reading it are safe. A
// failure here means an earlier asynchronous error, which the next checked call reports.
void device_free(void* p) {
  (void)cudaFreeAsync(p, stream());
}

// Copies through the stream, then waits for it where the host reads or may reuse the host buffer
// (host -> device from pageable memory, device -> host); device -> device stays asynchronous.
void device_copy(void* dst, const void* src, std::size_t bytes, int kind) {
  cudaMemcpyKind k = cudaMemcpyDeviceToDevice;
  if (kind == 0) k = cudaMemcpyHostToDevice;
  if (kind == 1) k = cudaMemcpyDeviceToHost;
  check(cudaMemcpyAsync(dst, src, bytes, k, stream()), "cudaMemcpyAsync (Tensor::copy_from)");
  if (kind != 2) check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize after a host copy");
}

void device_zero(void* dst, std::size_t bytes) {
  check(cudaMemsetAsync(dst, 0, bytes, stream()), "cudaMemsetAsync (Tensor::zero_)");
}

bool g_initialised = false;
bool g_available = false;

// Registers the allocator at program start-up, so CUDA tensors can be created before any kernel runs.
// This object file is always linked when the kernels are (the dispatch calls functions defined here).
struct Registrar {
  Registrar() { init(); }
};
const Registrar g_registrar;

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" / "no driver" error
    return 0;
  }
  return n;
}

bool init() {
  if (!g_initialised) {
    g_initialised = true;
    g_available = device_count() > 0;
    if (g_available) {
      DeviceAllocator a;
      a.alloc = &device_alloc;
      a.free = &device_free;
      a.copy = &device_copy;
      a.zero = &device_zero;
      register_device_allocator(Device::Cuda, a);
    }
  }
  return g_available;
}

void select_device(int local_rank) {
  const int n = device_count();
  QUOPT_CHECK(n > 0, "no CUDA device is visible (cudaGetDeviceCount = 0); run on a GPU node or use the "
                     "host backend (train.device = \"cpu\")");
  check(cudaSetDevice(local_rank % n), "cudaSetDevice");
}

void synchronize() {
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
}

std::string device_name() {
  cudaDeviceProp prop{};
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  return prop.name;
}

// Handles and the stream are created once and never destroyed: destroying them from a static
// destructor would race with the CUDA runtime's own teardown at exit.
cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t st = nullptr;
    check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    // Keep freed blocks in the device's default pool instead of returning them to the driver at every
    // synchronisation: the step allocates the same activation sizes every time (the caching PyTorch's
    // allocator does, with the driver's stream-ordered pool).
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    cudaMemPool_t pool = nullptr;
    check(cudaDeviceGetDefaultMemPool(&pool, dev), "cudaDeviceGetDefaultMemPool");
    std::uint64_t keep = UINT64_MAX;
    check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), "cudaMemPoolSetAttribute");
    return st;
  }();
  return s;
}

cublasHandle_t cublas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check(cublasCreate(&h), "cublasCreate");
    check(cublasSetStream(h, stream()), "cublasSetStream");
    return h;
  }();
  return handle;
}

cublasLtHandle_t cublas_lt() {
  static cublasLtHandle_t handle = [] {
    cublasLtHandle_t h = nullptr;
    check(cublasLtCreate(&h), "cublasLtCreate");
    return h;
  }();
  return handle;
}

cusolverDnHandle_t cusolver() {
  static cusolverDnHandle_t handle = [] {
    cusolverDnHandle_t h = nullptr;
    check(cusolverDnCreate(&h), "cusolverDnCreate");
    check(cusolverDnSetStream(h, stream()), "cusolverDnSetStream");
    return h;
  }();
  return handle;
}

}  // namespace quopt::kernels::cuda
