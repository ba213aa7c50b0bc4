#include "quant/quest.hpp"

#include "core/error.hpp"
#include "kernels/ops.hpp"

namespace quopt {

namespace {

void check_bits(const char* field, int bits) {
  QUOPT_CHECK(bits == 0 || (bits >= kernels::kQuestMinBits && bits <= kernels::kQuestMaxBits),
              "QuEST: ", field, " = ", bits, " is not supported; use ", kernels::kQuestMinBits, "..",
              kernels::kQuestMaxBits,
              " (the widths of the reference's Gaussian scale table) or 0 for no quantization");
}

double trust_or_default(double trust, int bits) {
  return trust < 0.0 ? kernels::quest_default_trust(bits) : trust;
}

// Allocates t with shape s, dtype and device of ref unless it already has them.
void ensure(Tensor& t, const Shape& s, const Tensor& ref) {
  if (!t.defined() || t.shape() != s || t.dtype() != ref.dtype() || t.device() != ref.device())
    t = Tensor::empty(s, ref.dtype(), ref.device());
}

}  // namespace

void validate(const QuestConfig& cfg) {
  check_bits("weight_bits", cfg.weight_bits);
  check_bits("act_bits", cfg.act_bits);
  QUOPT_CHECK(cfg.hadamard_block >= 1 && (cfg.hadamard_block & (cfg.hadamard_block - 1)) == 0,
              "QuEST: hadamard_block = ", cfg.hadamard_block, " must be a power of two (the reference uses ",
              kernels::kHadamardBlock, ")");
}

void quest_rotate_quantize(const Tensor& x, int bits, double trust, std::int64_t hadamard_block, Tensor& xq,
                           Tensor& mask, Tensor& scales) {
  check_bits("bits", bits);
  kernels::hadamard_transform(x, hadamard_block, xq);
  if (bits == 0) {
    if (mask.defined()) kernels::fill(mask, 1.0);
    if (scales.defined()) kernels::fill(scales, 0.0);
    return;
  }
  kernels::quest_quantize(xq, bits, trust_or_default(trust, bits), xq, mask, scales);
}

void quest_linear_forward(const Tensor& x, const Tensor& w, const QuestConfig& cfg, Tensor& y,
                          QuestLinearCache& cache) {
  validate(cfg);
  QUOPT_CHECK(x.defined() && w.defined() && y.defined(),
              "quest_linear_forward: x, w and y must be allocated tensors");
  QUOPT_CHECK(w.ndim() == 2, "quest_linear_forward: w is ", w.describe(),
              "; expected [out_features, in_features]");
  QUOPT_CHECK(x.ndim() >= 1 && x.dim(-1) == w.dim(1), "quest_linear_forward: x ", x.describe(),
              " does not end in in_features = ", w.dim(1), " of w ", w.describe());
  const std::int64_t in = w.dim(1), out = w.dim(0);
  const std::int64_t n = in == 0 ? 0 : x.numel() / in;
  QUOPT_CHECK(y.numel() == n * out && y.ndim() >= 1 && y.dim(-1) == out, "quest_linear_forward: y is ",
              y.describe(), "; expected [..., ", out, "] with ", n, " rows for x ", x.describe());
  ensure(cache.xq, Shape{n, in}, x);
  ensure(cache.x_mask, Shape{n, in}, x);
  ensure(cache.wq, w.shape(), w);
  ensure(cache.w_mask, w.shape(), w);
  Tensor none;
  quest_rotate_quantize(x.reshape({n, in}), cfg.act_bits, cfg.act_trust, cfg.hadamard_block, cache.xq,
                        cache.x_mask, none);
  quest_rotate_quantize(w, cfg.weight_bits, cfg.weight_trust, cfg.hadamard_block, cache.wq, cache.w_mask,
                        none);
  Tensor y2 = y.reshape({n, out});
  kernels::matmul(cache.xq, false, cache.wq, true, y2);
}

void quest_linear_backward(const Tensor& dy, const QuestLinearCache& cache, const QuestConfig& cfg,
                           Tensor& dx, Tensor& dw) {
  validate(cfg);
  QUOPT_CHECK(cache.xq.defined() && cache.wq.defined() && cache.x_mask.defined() && cache.w_mask.defined(),
              "quest_linear_backward: the cache is empty; call quest_linear_forward first");
  const std::int64_t n = cache.xq.dim(0), in = cache.xq.dim(1), out = cache.wq.dim(0);
  QUOPT_CHECK(dy.defined() && dy.numel() == n * out && dy.dim(-1) == out, "quest_linear_backward: dy is ",
              (dy.defined() ? dy.describe() : std::string("undefined")), "; expected [..., ", out, "] with ",
              n, " rows (the forward's y)");
  QUOPT_CHECK(dx.defined() && dx.numel() == n * in && dx.dim(-1) == in, "quest_linear_backward: dx is ",
              (dx.defined() ? dx.describe() : std::string("undefined")), "; expected [..., ", in, "] with ",
              n, " rows (the forward's x)");
  QUOPT_CHECK(dw.defined() && dw.shape() == cache.wq.shape(), "quest_linear_backward: dw is ",
              (dw.defined() ? dw.describe() : std::string("undefined")), "; expected ",
              shape_str(cache.wq.shape()), " (the forward's w)");
  const Tensor dy2 = dy.reshape({n, out});
  // dx = (mask_x * (dy Q(W H))) H: the gradient of x H reaches x through H^T = H.
  Tensor dx2 = dx.reshape({n, in});
  kernels::matmul(dy2, false, cache.wq, false, dx2);
  kernels::apply_mask(dx2, cache.x_mask);
  kernels::hadamard_transform(dx2, cfg.hadamard_block, dx2);
  // dW += (mask_w * (dy^T Q(x H))) H.
  Tensor gw = Tensor::empty(cache.wq.shape(), cache.wq.dtype(), cache.wq.device());
  kernels::matmul(dy2, true, cache.xq, false, gw);
  kernels::apply_mask(gw, cache.w_mask);
  kernels::hadamard_transform(gw, cfg.hadamard_block, gw);
  kernels::axpy(1.0, gw, dw);
}

}  // namespace quopt
