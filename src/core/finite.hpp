#pragma once
// Non-finite values (NaN, +-inf) in tensors: what a diverged run, a damaged file or an optimizer that
// broke down leaves in weights and state. Used where tensors enter or leave quopt (checkpoints, run
// files) and by the training loop's divergence checks.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace quopt {

// Number of NaN or infinite elements of a floating-point tensor (0 for integer tensors); a device
// tensor is copied to the host first.
std::int64_t count_nonfinite(const Tensor& t);

// "" when every tensor is finite; otherwise "<name> holds K non-finite values (of N)" for the first
// offender, plus how many more tensors have them.
std::string describe_nonfinite(const std::vector<NamedTensor>& tensors);
// The same from counts already taken (counts[i] for tensors[i], e.g. while the tensors were written).
std::string describe_nonfinite(const std::vector<NamedTensor>& tensors, const std::vector<std::int64_t>& counts);

}  // namespace quopt
