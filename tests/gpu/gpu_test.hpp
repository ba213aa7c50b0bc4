#pragma once
// What the gpu-label tests share: the skip-or-fail rule, host <-> device helpers and output poisoning.
// Without a CUDA build or a visible GPU a test is skipped with the reason (ctest reports it as skipped,
// never as passed); with QUOPT_REQUIRE_GPU=1 in the environment (scripts/gpu-check.sh sets it) the
// same condition fails the test, so a GPU run cannot pass by skipping.
#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include "core/tensor.hpp"
#include "kernels/backend.hpp"
#include "kernels/ops.hpp"

namespace quopt::testing {

inline std::optional<std::string> cuda_missing() {
  kernels::init_backends();
  if (kernels::cuda_device_count() == 0 || !device_available(Device::Cuda))
    return std::string("no CUDA backend in this build or no visible GPU");
  return std::nullopt;
}

inline bool gpu_required() {
  const char* v = std::getenv("QUOPT_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

// In a test body or SetUp: skip (or fail under QUOPT_REQUIRE_GPU=1) when CUDA cannot run.
#define QUOPT_REQUIRE_CUDA()                                                                 \
  do {                                                                                       \
    if (const auto why_ = ::quopt::testing::cuda_missing()) {                                \
      if (::quopt::testing::gpu_required()) FAIL() << *why_ << " but QUOPT_REQUIRE_GPU=1";   \
      GTEST_SKIP() << *why_;                                                                 \
    }                                                                                        \
  } while (0)

inline Tensor to_dev(const Tensor& t) {
  return t.to(Device::Cuda);
}
inline Tensor to_host(const Tensor& t) {
  return t.to(Device::Host);
}
// A device tensor filled with NaN, so an element the kernel under test does not write fails the check.
inline Tensor poisoned(const Shape& s, DType dt) {
  Tensor t = Tensor::empty(s, dt, Device::Cuda);
  kernels::fill(t, std::numeric_limits<double>::quiet_NaN());
  return t;
}

}  // namespace quopt::testing
