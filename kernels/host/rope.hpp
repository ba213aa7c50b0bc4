#pragma once
// Host rotary position embedding, rotate-half convention (GPT-NeoX / OLMo); T = float or double.
#include <cstdint>

namespace quopt::kernels::host {

// In place on x [b, t, h, d] (d even): for position p = t-index and i in [0, d/2), the pair
// (x_i, x_{i+d/2}) is rotated by the angle p * theta^(-2i/d) (angles computed in double):
//   x_i' = x_i cos - x_{i+d/2} sin,   x_{i+d/2}' = x_{i+d/2} cos + x_i sin.
// inverse = true applies the transposed (inverse) rotation, i.e. the angle negated.
template <class T>
void rope(T* x, std::int64_t b, std::int64_t t, std::int64_t h, std::int64_t d, double theta, bool inverse);

}  // namespace quopt::kernels::host
