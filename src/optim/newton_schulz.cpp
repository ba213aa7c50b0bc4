#include "optim/newton_schulz.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/error.hpp"
#include "kernels/ops.hpp"

namespace quopt {

void newton_schulz(const Tensor& g, Tensor& out, const NewtonSchulzOptions& opt) {
  QUOPT_CHECK(g.ndim() == 2, "newton_schulz: expected a 2-D matrix, got ", g.describe());
  QUOPT_CHECK(g.dtype() == DType::F32 || g.dtype() == DType::F64, "newton_schulz: f32 or f64 input, got ",
              g.describe());
  QUOPT_CHECK(out.shape() == g.shape() && out.dtype() == g.dtype() && out.device() == g.device(),
              "newton_schulz: output ", out.describe(), " does not match input ", g.describe());
  QUOPT_CHECK(opt.steps >= 0, "newton_schulz: steps = ", opt.steps, " must be >= 0");
  const std::int64_t m = g.dim(0), n = g.dim(1);
  // A tall matrix is iterated as its transpose (reference: X = G.mT when rows > cols). Instead of
  // materialising X^T we use the transposed recurrence on X itself:
  //   (X^T)(X^T)^T = X^T X,   a X^T + B X^T = (a X + X B)^T   (B is symmetric).
  const bool tall = m > n;
  const std::int64_t s = std::min(m, n);

  Tensor x = Tensor::empty(g.shape(), g.dtype(), g.device());
  x.copy_from(g);
  const double norm = std::sqrt(kernels::sum_squares(g));
  kernels::scale(x, 1.0 / (norm + opt.eps));
  if (opt.steps > 0 && s > 0) {
    Tensor y = Tensor::empty(g.shape(), g.dtype(), g.device());
    Tensor gram = Tensor::empty({s, s}, g.dtype(), g.device());
    Tensor poly = Tensor::empty({s, s}, g.dtype(), g.device());
    for (int it = 0; it < opt.steps; ++it) {
      if (tall)
        kernels::matmul(x, true, x, false, gram);  // X^T X [n, n]
      else
        kernels::matmul(x, false, x, true, gram);  // X X^T [m, m]
      poly.copy_from(gram);                        // B = b A + c A A
      kernels::scale(poly, opt.b);
      kernels::matmul(gram, false, gram, false, poly, opt.c, 1.0);
      y.copy_from(x);  // Y = a X + (B X  or  X B)
      if (tall)
        kernels::matmul(x, false, poly, false, y, 1.0, opt.a);
      else
        kernels::matmul(poly, false, x, false, y, 1.0, opt.a);
      std::swap(x, y);
    }
  }
  out.copy_from(x);
}

Tensor newton_schulz(const Tensor& g, const NewtonSchulzOptions& opt) {
  Tensor out = Tensor::empty(g.shape(), g.dtype(), g.device());
  newton_schulz(g, out, opt);
  return out;
}

double newton_schulz_flops(std::int64_t rows, std::int64_t cols, int steps) {
  const double s = static_cast<double>(std::min(rows, cols));
  const double l = static_cast<double>(std::max(rows, cols));
  return static_cast<double>(steps) * (4.0 * s * s * l + 2.0 * s * s * s);
}

}  // namespace quopt
