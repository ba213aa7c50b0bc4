#include "kernels/host/reduce.hpp"

#include <algorithm>
#include <vector>

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

template <class T>
double sum_squares(const T* x, std::int64_t n) {
  if (n <= 0) return 0.0;
  const std::int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks));
  double* part = partial.data();
  host_for("quopt::host::sum_squares", chunks, [=](const std::int64_t c) {
    const std::int64_t i0 = c * kReduceChunk;
    const std::int64_t i1 = std::min(n, i0 + kReduceChunk);
    // Four interleaved accumulators (fixed assignment i % 4) for instruction-level parallelism.
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    std::int64_t i = i0;
    for (; i + 4 <= i1; i += 4) {
      for (int k = 0; k < 4; ++k) {
        const double xv = static_cast<double>(x[i + k]);
        acc[k] += xv * xv;
      }
    }
    for (; i < i1; ++i) {
      const double xv = static_cast<double>(x[i]);
      acc[0] += xv * xv;
    }
    part[c] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  }, kReduceChunk);
  double total = 0.0;
  for (std::int64_t c = 0; c < chunks; ++c) total += part[c];
  return total;
}

template double sum_squares<float>(const float*, std::int64_t);
template double sum_squares<double>(const double*, std::int64_t);

}  // namespace quopt::kernels::host
