#pragma once
// Host AdamW step (PyTorch torch.optim.AdamW semantics), in place; T = float or double.
#include <cstdint>

namespace quopt::kernels::host {

struct AdamWScalars {
  double lr = 0.0;
  double beta1 = 0.0;
  double beta2 = 0.0;
  double eps = 0.0;
  double weight_decay = 0.0;
  double bias_correction1 = 1.0;  // 1 - beta1^step
  double bias_correction2 = 1.0;  // 1 - beta2^step
};

// p *= (1 - lr wd); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr (m / bc1) / (sqrt(v / bc2) + eps). Arithmetic in double, stored as T.
template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWScalars& s);

}  // namespace quopt::kernels::host
