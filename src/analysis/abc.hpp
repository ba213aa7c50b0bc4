#pragma once
// The ABC decomposition of quantization-error propagation (arXiv 2509.23500; docs/analysis.md):
// for a chain of modules h_l = f_l(h_{l-1}) and its quantized counterpart hq_l = fq_l(hq_{l-1}),
//
//   a_l = 1/2 [(fq(hq_{l-1}) - fq(h_{l-1})) + (f(hq_{l-1}) - f(h_{l-1}))]   propagated error
//   b_l = 1/2 [(fq(hq_{l-1}) - f(hq_{l-1})) + (fq(h_{l-1}) - f(h_{l-1}))]   local error
//   dh_l = hq_l - h_l = a_l + b_l
//   R_l = |dh_l|^2/|h_l|^2 = A_l + B_l + C_l,  A = |a|^2/|h|^2,  B = |b|^2/|h|^2,  C = 2<a,b>/|h|^2
//   G_l = A_l / R_{l-1}  (gain);  for a linear module G = G1 G2 with the spectral ratio
//   G1 = (||W + eps_W/2||_2 / ||W||_2)^2, eps_W = Wq - W, and the alignment ratio G2 = G / G1.
//
// This file holds the model-independent core: modules are std::functions, so it is tested on toy
// networks; analysis/model_analysis.hpp applies it to Olmo2. Norms and inner products accumulate in
// fp64 from the modules' f32 (or f64) outputs, and all sums are additive over samples, so a batch can
// be processed in chunks (and on several ranks) and merged.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace quopt {

// |xq - x|^2 and |x|^2 (the relative error of a module's input, R_in).
struct RelErrSums {
  double diff2 = 0.0, ref2 = 0.0;
  double value() const;  // diff2 / ref2 (0 when both are 0, NaN when only ref2 is)
  void merge(const RelErrSums& o);
};
void relerr_accumulate(const Tensor& xq, const Tensor& x, RelErrSums& s);

// The sums one module needs, over all elements seen so far: five of its measured output, and the
// relative error of its whole input state (for G).
struct AbcSums {
  double h2 = 0.0;   // |h_l|^2 = |f(h_{l-1})|^2
  double dh2 = 0.0;  // |hq_l - h_l|^2 = |fq(hq_{l-1}) - f(h_{l-1})|^2
  double a2 = 0.0;   // |a_l|^2
  double b2 = 0.0;   // |b_l|^2
  double ab = 0.0;   // <a_l, b_l>
  RelErrSums input;  // |hq_{l-1} - h_{l-1}|^2 and |h_{l-1}|^2 of the whole input state (0, 0 for tokens)
  void merge(const AbcSums& o);
};

// Adds one module's four evaluations on one chunk: fq(hq), fq(h), f(hq), f(h) (same number of
// elements; f32 or f64; device tensors are copied to the host).
void abc_accumulate(const Tensor& fq_hq, const Tensor& fq_h, const Tensor& f_hq, const Tensor& f_h,
                    AbcSums& s);

struct AbcTerms {
  double R = 0.0, A = 0.0, B = 0.0, C = 0.0;
  double G = 0.0;   // A / R_in; NaN when R_in is 0 or undefined (the first module)
  double G1 = 0.0;  // linear modules only; NaN otherwise
  double G2 = 0.0;  // G / G1; NaN otherwise
};
// R, A, B, C from the sums (all 0 when |h|^2 = 0 and nothing differs; NaN when only |h|^2 is 0) and
// G = A / R_in (NaN when R_in is not a positive number). G1, G2 are NaN (set them for linear modules
// with set_spectral_ratio).
AbcTerms abc_terms(const AbcSums& s, double R_in);
// Sets G1 and G2 = G / G1.
void set_spectral_ratio(AbcTerms& t, double G1);

// ---- a generic chain --------------------------------------------------------------------------------------
using ModuleFn = std::function<Tensor(const Tensor&)>;
struct AbcModule {
  std::string name;
  ModuleFn f;   // full-precision module
  ModuleFn fq;  // quantized module
  // The part of a module's output that is h_l in R, A, B, C (a view or a copy); unset: all of it. The
  // rest of the output is state the next module reads too (e.g. a residual stream passed beside a
  // branch); it enters that module's R_in but no module's R.
  ModuleFn value;
};
// Which of the four evaluations of module m is about to run (for hooks that record inside modules).
enum class AbcEval { F_h, Fq_hq, F_hq, Fq_h };
struct AbcHooks {
  std::function<void(std::int64_t module, AbcEval which)> before_eval;  // optional
  std::function<void(std::int64_t module)> after_module;                // optional
};

// Runs the chain on one chunk: h_0 = hq_0 = input; for each module the relative error of its input
// state (when it is f32/f64), then the four evaluations, in the order f(h), fq(hq), f(hq), fq(h); the
// sums use each output's value(); h_l = f(h_{l-1}) and hq_l = fq(hq_{l-1}) go on to the next module
// whole. sums[l] accumulates module l (sums is resized to the chain's length when empty).
void abc_chain_accumulate(const std::vector<AbcModule>& chain, const Tensor& input,
                          std::vector<AbcSums>& sums, const AbcHooks& hooks = {});
// Terms of every module from accumulated sums: G_l = A_l / R_in,l with R_in,l the relative error of
// module l's whole input state. That is R_{l-1} when module l-1's output is all value; when it carries
// more state (a residual beside a branch), R_in covers all of it, so G stays the gain of the function
// the module applies. The first module's input is identical in both networks, so its G is NaN.
std::vector<AbcTerms> abc_chain_terms(const std::vector<AbcSums>& sums);
// Both in one call.
std::vector<AbcTerms> abc_chain(const std::vector<AbcModule>& chain, const Tensor& input);

// ---- spectral norms ---------------------------------------------------------------------------------------
// Relative accuracy the spectral norms are computed to (the Lanczos residual bound below). quopt's
// choice: about 1e4 times fp64 rounding of a Gram matrix of up to ~1e4 columns, far below the effects
// G1 measures (G1 - 1 is ~1e-3 for 4-bit weights), and reached in ~50-120 steps on 2048-wide weights.
inline constexpr double kSpectralTol = 1e-12;

struct TopEigen {
  double value = 0.0;           // the largest eigenvalue
  std::int64_t iterations = 0;  // Lanczos steps taken
  double residual = 0.0;        // |G y - value y| for the unit Ritz vector y: bounds |value - lambda_max|
};
// Largest eigenvalue of a symmetric positive semidefinite k x k f64 matrix (upper triangle read) by
// the Lanczos method with full reorthogonalization in fp64, from a fixed pseudo-random start vector,
// stopping when the residual bound is <= tol * value (so the relative error is at most tol) or after
// k steps (then the Krylov space is the whole space and the value exact up to rounding).
TopEigen top_eigenvalue_psd(const Tensor& g, double tol = kSpectralTol);

// ||W||_2^2: the largest eigenvalue of the Gram matrix of W's smaller side (W^T W or W W^T, formed in
// fp64 by cblas_dsyrk), by top_eigenvalue_psd. W 2-D, f32 or f64.
double spectral_norm_sq(const Tensor& w);
// G1 = (||W + (Wq - W)/2||_2 / ||W||_2)^2 = ||(W + Wq)/2||^2 / ||W||^2 (sums formed in fp64); exactly 1
// when Wq == W, NaN when W = 0.
double spectral_ratio(const Tensor& w, const Tensor& wq);

}  // namespace quopt
