#include "core/finite.hpp"

#include <cmath>

#include "core/error.hpp"

namespace quopt {

namespace {
template <class T>
std::int64_t count(const T* p, std::int64_t n) {
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < n; ++i) bad += std::isfinite(p[i]) ? 0 : 1;
  return bad;
}
}  // namespace

std::int64_t count_nonfinite(const Tensor& t) {
  if (!t.defined()) return 0;
  if (!t.is_host()) return count_nonfinite(t.to(Device::Host));
  switch (t.dtype()) {
    case DType::F32:
      return count(t.data<float>(), t.numel());
    case DType::F64:
      return count(t.data<double>(), t.numel());
    case DType::BF16:
      return count_nonfinite(t.astype(DType::F32));
    case DType::I32:
      break;
  }
  return 0;
}

std::string describe_nonfinite(const std::vector<NamedTensor>& tensors) {
  std::vector<std::int64_t> counts;
  counts.reserve(tensors.size());
  for (const auto& t : tensors) counts.push_back(count_nonfinite(t.tensor));
  return describe_nonfinite(tensors, counts);
}

std::string describe_nonfinite(const std::vector<NamedTensor>& tensors, const std::vector<std::int64_t>& counts) {
  QUOPT_CHECK(counts.size() == tensors.size(), "describe_nonfinite: ", counts.size(), " counts for ",
              tensors.size(), " tensors");
  std::string first;
  std::int64_t more = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const NamedTensor& t = tensors[i];
    const std::int64_t bad = counts[i];
    if (bad == 0) continue;
    if (first.empty())
      first = cat(t.name, " holds ", bad, " non-finite value", bad > 1 ? "s" : "", " (NaN or inf, of ",
                  t.tensor.numel(), ")");
    else
      ++more;
  }
  if (more > 0) first += cat(", and ", more, " more tensor", more > 1 ? "s" : "", " do");
  return first;
}

}  // namespace quopt
