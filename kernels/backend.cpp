#include "kernels/backend.hpp"

#include "core/error.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm.hpp"
#endif

namespace quopt::kernels {

void init_backends() {
#ifdef QUOPT_HAVE_CUDA
  cuda::init();
#endif
}

int cuda_device_count() {
#ifdef QUOPT_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

void cuda_select_device([[maybe_unused]] int local_rank) {
#ifdef QUOPT_HAVE_CUDA
  cuda::select_device(local_rank);
#else
  fail("train.device = \"cuda\" needs the CUDA backend: this quopt was built without it; reconfigure with "
       "cmake --preset cuda (-DQUOPT_ENABLE_CUDA=ON) on a machine with the CUDA toolkit");
#endif
}

std::string cuda_device_name() {
#ifdef QUOPT_HAVE_CUDA
  return cuda_device_count() > 0 ? cuda::device_name() : std::string();
#else
  return {};
#endif
}

void cuda_synchronize() {
#ifdef QUOPT_HAVE_CUDA
  if (cuda_device_count() > 0) cuda::synchronize();
#endif
}

void set_matmul_precision(MatmulPrecision p) {
#ifdef QUOPT_HAVE_CUDA
  cuda::set_bf16_compute(p == MatmulPrecision::BF16);
#else
  (void)p;
#endif
}

MatmulPrecision matmul_precision() {
#ifdef QUOPT_HAVE_CUDA
  return cuda::bf16_compute() ? MatmulPrecision::BF16 : MatmulPrecision::FP32;
#else
  return MatmulPrecision::FP32;
#endif
}

}  // namespace quopt::kernels
