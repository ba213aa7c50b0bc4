#include "kernels/host/accumulate.hpp"

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

void fold_f64(float* x, double* acc, std::int64_t n) {
  Kokkos::parallel_for("quopt::host::fold_f64", HostRange(0, n), [=](const std::int64_t i) {
    acc[i] += static_cast<double>(x[i]);
    x[i] = 0.0f;
  });
}

void unfold_f64(double* acc, float* x, std::int64_t n) {
  Kokkos::parallel_for("quopt::host::unfold_f64", HostRange(0, n), [=](const std::int64_t i) {
    x[i] = static_cast<float>(acc[i]);
    acc[i] = 0.0;
  });
}

}  // namespace quopt::kernels::host
