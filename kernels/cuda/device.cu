// CUDA device discovery, the Tensor allocator hooks (cudaMalloc / cudaFree / cudaMemcpy) and the
// cuBLAS handle.
#include "core/tensor.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/device.hpp"

namespace quopt::kernels::cuda {

namespace {

void* device_alloc(std::size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    std::size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    fail("cudaMalloc of ", bytes, " bytes failed: ", cudaGetErrorString(e), " (", free_b, " of ", total_b,
         " bytes free); reduce the micro-batch size or the model size");
  }
  return p;
}

// Called from Storage's destructor: must not throw. A failure here means an earlier asynchronous
// error, which the next checked call reports.
void device_free(void* p) {
  (void)cudaFree(p);
}

void device_copy(void* dst, const void* src, std::size_t bytes, int kind) {
  cudaMemcpyKind k = cudaMemcpyDeviceToDevice;
  if (kind == 0) k = cudaMemcpyHostToDevice;
  if (kind == 1) k = cudaMemcpyDeviceToHost;
  check(cudaMemcpy(dst, src, bytes, k), "cudaMemcpy (Tensor::copy_from)");
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
      register_device_allocator(Device::Cuda, a);
    }
  }
  return g_available;
}

void synchronize() {
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
}

cublasHandle_t cublas() {
  // Created once and never destroyed: destroying it from a static destructor would race with the
  // CUDA runtime's own teardown at exit.
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check(cublasCreate(&h), "cublasCreate");
    check(cublasSetStream(h, stream()), "cublasSetStream");
    return h;
  }();
  return handle;
}

}  // namespace quopt::kernels::cuda
