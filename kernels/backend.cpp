#include "kernels/backend.hpp"

#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/device.hpp"
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

}  // namespace quopt::kernels
