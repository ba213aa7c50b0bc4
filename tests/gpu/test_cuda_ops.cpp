// Every op of the kernel API on the CUDA backend against the host backend on random inputs (ggml's
// test-backend-ops idea): f32 (the fp32 mode) to 1e-5 and f64 to 1e-12 norm-wise relative error, the
// bf16 GEMM compute mode to 1e-2. Every device output is poisoned with NaN before the call, so an element
// the kernel does not write fails. Skipped without a CUDA build or a GPU (failed under QUOPT_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/rng.hpp"
#include "gpu/gpu_test.hpp"
#include "kernels/backend.hpp"
#include "kernels/ops.hpp"
#include "kernels/optim_ops.hpp"
#include "kernels/psgd_ops.hpp"
#include "kernels/quant_ops.hpp"
#include "optim/matrix_functions.hpp"
#include "unit/kernel_test_util.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::poisoned;
using testing::randn;
using testing::to_dev;
using testing::to_host;
using testing::tol_for;
using testing::values;

class CudaVsHost : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override { QUOPT_REQUIRE_CUDA(); }
  DType dt() const { return GetParam(); }
  // Compares a device result with the host one.
  void same(const std::string& what, const Tensor& dev, const Tensor& ref, double tol = -1) const {
    expect_close(what, to_host(dev), values(ref), tol < 0 ? tol_for(dt()) : tol);
  }
};

Tensor tokens_of(const Shape& s, std::int64_t vocab, std::uint64_t seed, bool with_ignored = false) {
  Tensor t = Tensor::empty(s, DType::I32);
  Rng rng(seed, 9);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<std::int32_t>()[i] = (with_ignored && i % 7 == 3)
                                    ? -1
                                    : static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

TEST_P(CudaVsHost, Matmul) {
  const std::int64_t m = 33, n = 17, k = 65;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = randn(ta ? Shape{k, m} : Shape{m, k}, 1, dt()),
             b = randn(tb ? Shape{n, k} : Shape{k, n}, 2, dt());
      Tensor c = randn({m, n}, 3, dt());
      Tensor dc = to_dev(c);
      kernels::matmul(a, ta != 0, b, tb != 0, c, 0.5, 2.0);
      kernels::matmul(to_dev(a), ta != 0, to_dev(b), tb != 0, dc, 0.5, 2.0);
      same(cat("matmul ta=", ta, " tb=", tb), dc, c);
    }
  }
}

TEST_P(CudaVsHost, MatmulBatchedAndStats) {
  Tensor a = randn({3, 8, 5}, 4, dt()), b = randn({3, 7, 5}, 5, dt());
  Tensor c = Tensor::empty({3, 8, 7}, dt());
  Tensor dc = poisoned({3, 8, 7}, dt());  // beta = 0 must overwrite
  kernels::matmul_batched(a, false, b, true, c);
  kernels::gemm_stats_reset();
  kernels::gemm_stats_enable(true);
  kernels::matmul_batched(to_dev(a), false, to_dev(b), true, dc);
  kernels::gemm_stats_enable(false);
  EXPECT_DOUBLE_EQ(kernels::gemm_stats().flops, 2.0 * 3 * 8 * 7 * 5);
  same("matmul_batched", dc, c);
}

TEST_P(CudaVsHost, MatmulBf16ComputeMode) {
  if (dt() != DType::F32) GTEST_SKIP() << "the bf16 compute mode applies to f32 GEMMs only";
  Tensor a = randn({64, 96}, 11, dt()), b = randn({48, 96}, 12, dt());
  Tensor c = Tensor::empty({64, 48}, dt());
  Tensor dc = poisoned({64, 48}, dt());
  kernels::matmul(a, false, b, true, c);
  kernels::set_matmul_precision(kernels::MatmulPrecision::BF16);
  kernels::matmul(to_dev(a), false, to_dev(b), true, dc);
  kernels::set_matmul_precision(kernels::MatmulPrecision::FP32);
  const double err = testing::max_rel_err(to_host(dc), values(c));
  EXPECT_LE(err, 1e-2);
  EXPECT_GT(err, 1e-7) << "bf16 compute gave fp32-exact results: the compute type was not applied";
}

TEST_P(CudaVsHost, Elementwise) {
  const std::int64_t n = 100003;  // not a multiple of the block size
  Tensor a = randn({n}, 6, dt()), b = randn({n}, 7, dt());
  Tensor da = to_dev(a), db = to_dev(b);
  Tensor out = Tensor::empty({n}, dt()), dout = poisoned({n}, dt());
  kernels::add(a, b, out);
  kernels::add(da, db, dout);
  same("add", dout, out);
  kernels::axpy(-0.75, a, b);
  kernels::axpy(-0.75, da, db);
  same("axpy", db, b);
  kernels::scale(a, 3.0);
  kernels::scale(da, 3.0);
  same("scale", da, a);
  kernels::fill(da, -2.0);
  kernels::fill(a, -2.0);
  same("fill", da, a, 0.0);
  Tensor z = to_dev(a);
  z.zero_();
  EXPECT_EQ(kernels::sum_squares(z), 0.0);
}

TEST_P(CudaVsHost, MlpActivations) {
  const std::int64_t n = 5000;
  Tensor x = randn({n}, 13, dt()), up = randn({n}, 14, dt()), dy = randn({n}, 15, dt());
  Tensor y = Tensor::empty({n}, dt()), dx = Tensor::empty({n}, dt()), dup = Tensor::empty({n}, dt());
  Tensor gy = poisoned({n}, dt()), gdx = poisoned({n}, dt()), gdup = poisoned({n}, dt());
  kernels::relu2_forward(x, y);
  kernels::relu2_forward(to_dev(x), gy);
  same("relu2_forward", gy, y);
  kernels::relu2_backward(dy, x, dx);
  kernels::relu2_backward(to_dev(dy), to_dev(x), gdx);
  same("relu2_backward", gdx, dx);
  kernels::swiglu_forward(x, up, y);
  kernels::swiglu_forward(to_dev(x), to_dev(up), gy);
  same("swiglu_forward", gy, y);
  gdx = poisoned({n}, dt());
  kernels::swiglu_backward(dy, x, up, dx, dup);
  kernels::swiglu_backward(to_dev(dy), to_dev(x), to_dev(up), gdx, gdup);
  same("swiglu_backward dgate", gdx, dx);
  same("swiglu_backward dup", gdup, dup);
}

TEST_P(CudaVsHost, EmbeddingIsBitwiseTheHost) {
  const std::int64_t V = 50, C = 40, N = 300;  // repeated tokens: the backward sums rows
  Tensor tok = tokens_of({N}, V, 16);
  Tensor table = randn({V, C}, 17, dt()), dout = randn({N, C}, 18, dt());
  Tensor out = Tensor::empty({N, C}, dt()), gout = poisoned({N, C}, dt());
  kernels::embedding_forward(tok, table, out);
  kernels::embedding_forward(to_dev(tok), to_dev(table), gout);
  same("embedding_forward", gout, out, 0.0);
  Tensor dtable = randn({V, C}, 19, dt());  // accumulated into
  Tensor gdtable = to_dev(dtable);
  kernels::embedding_backward(tok, dout, dtable);
  kernels::embedding_backward(to_dev(tok), to_dev(dout), gdtable);
  same("embedding_backward (bitwise)", gdtable, dtable, 0.0);
}

TEST_P(CudaVsHost, RmsNorm) {
  for (const std::int64_t C : {64, 1000}) {  // one partial block; several passes per row
    const std::int64_t N = 37;
    Tensor x = randn({N, C}, 20, dt()), w = randn({C}, 21, dt()), dy = randn({N, C}, 22, dt());
    Tensor y = Tensor::empty({N, C}, dt()), rstd = Tensor::empty({N}, dt());
    Tensor gy = poisoned({N, C}, dt()), grstd = poisoned({N}, dt());
    kernels::rmsnorm_forward(x, w, 1e-6, y, rstd);
    kernels::rmsnorm_forward(to_dev(x), to_dev(w), 1e-6, gy, grstd);
    same(cat("rmsnorm_forward y C=", C), gy, y);
    same(cat("rmsnorm_forward rstd C=", C), grstd, rstd);
    Tensor dx = Tensor::empty({N, C}, dt()), dw = randn({C}, 23, dt());
    Tensor gdx = poisoned({N, C}, dt()), gdw = to_dev(dw);
    kernels::rmsnorm_backward(dy, x, w, rstd, dx, dw);
    kernels::rmsnorm_backward(to_dev(dy), to_dev(x), to_dev(w), to_dev(rstd), gdx, gdw);
    same(cat("rmsnorm_backward dx C=", C), gdx, dx);
    same(cat("rmsnorm_backward dweight (bitwise) C=", C), gdw, dw, 0.0);
  }
}

TEST_P(CudaVsHost, Rope) {
  Tensor x = randn({2, 9, 3, 16}, 24, dt());
  Tensor gx = to_dev(x);
  kernels::rope_forward(x, 500000.0);
  kernels::rope_forward(gx, 500000.0);
  same("rope_forward", gx, x);
  kernels::rope_backward(x, 10000.0);
  kernels::rope_backward(gx, 10000.0);
  same("rope_backward", gx, x);
}

TEST_P(CudaVsHost, AttentionGroupedHeads) {
  struct Case {
    std::int64_t B, T, H, Hkv, D;
  };
  // Sequence lengths past one 32-key tile and not a multiple of it; grouped and plain heads; D < 32, = 64.
  for (const Case c : {Case{2, 70, 4, 2, 16}, Case{1, 33, 2, 2, 64}, Case{1, 5, 6, 1, 8}}) {
    const std::string tag = cat("B", c.B, " T", c.T, " H", c.H, " Hkv", c.Hkv, " D", c.D);
    Tensor q = randn({c.B, c.T, c.H, c.D}, 25, dt()), k = randn({c.B, c.T, c.Hkv, c.D}, 26, dt()),
           v = randn({c.B, c.T, c.Hkv, c.D}, 27, dt()), dout = randn({c.B, c.T, c.H, c.D}, 28, dt());
    Tensor out = Tensor::empty(q.shape(), dt()), lse = Tensor::empty({c.B, c.H, c.T}, dt());
    Tensor gout = poisoned(q.shape(), dt()), glse = poisoned({c.B, c.H, c.T}, dt());
    kernels::attention_forward(q, k, v, out, lse);
    kernels::attention_forward(to_dev(q), to_dev(k), to_dev(v), gout, glse);
    same("attention_forward out " + tag, gout, out);
    same("attention_forward lse " + tag, glse, lse);
    Tensor dq = Tensor::empty(q.shape(), dt()), dk = Tensor::empty(k.shape(), dt()),
           dv = Tensor::empty(v.shape(), dt());
    Tensor gdq = poisoned(q.shape(), dt()), gdk = poisoned(k.shape(), dt()), gdv = poisoned(v.shape(), dt());
    kernels::attention_backward(dout, q, k, v, out, lse, dq, dk, dv);
    kernels::attention_backward(to_dev(dout), to_dev(q), to_dev(k), to_dev(v), gout, glse, gdq, gdk, gdv);
    same("attention_backward dq " + tag, gdq, dq);
    same("attention_backward dk " + tag, gdk, dk);
    same("attention_backward dv " + tag, gdv, dv);
  }
}

TEST_P(CudaVsHost, CrossEntropyWithIgnoredTargetsAndZLoss) {
  const std::int64_t N = 29, V = 3001;  // V not a multiple of the block
  Tensor logits = randn({N, V}, 29, dt(), 3.0);
  Tensor tgt = tokens_of({N}, V, 30, true);
  Tensor loss = Tensor::empty({N}, dt()), lse = Tensor::empty({N}, dt());
  Tensor gl = to_dev(logits), gloss = poisoned({N}, dt()), glse = poisoned({N}, dt());
  const double sum = kernels::cross_entropy_forward(logits, tgt, 1e-4, loss, lse);
  const double gsum = kernels::cross_entropy_forward(gl, to_dev(tgt), 1e-4, gloss, glse);
  EXPECT_NEAR(gsum, sum, tol_for(dt()) * std::fabs(sum));
  same("cross_entropy_forward loss", gloss, loss);
  same("cross_entropy_forward lse", glse, lse);
  Tensor dl = Tensor::empty({N, V}, dt());
  kernels::cross_entropy_backward(logits, tgt, lse, 1e-4, 0.25, dl);
  kernels::cross_entropy_backward(gl, to_dev(tgt), glse, 1e-4, 0.25, gl);  // in place, as the model does
  same("cross_entropy_backward (in place)", gl, dl);
}

// The fused classifier + cross-entropy: cuBLASLt GEMMs and the CUDA row pass over blocks of R rows (one
// [R, V] block of logits at a time) against the host's, for blocks of one row, several uneven blocks, and
// the whole batch in one; with gradients (dw accumulated onto random values) and the loss-only form.
TEST_P(CudaVsHost, ClassifierCrossEntropy) {
  const std::int64_t N = 77, C = 48, V = 3001;
  const Tensor x = randn({N, C}, 60, dt()), w = randn({V, C}, 61, dt(), 0.3), dw0 = randn({V, C}, 62, dt());
  const Tensor tgt = tokens_of({N}, V, 63, true);
  const Tensor gx = to_dev(x), gw = to_dev(w), gtgt = to_dev(tgt);
  for (const std::int64_t R : {std::int64_t{1}, std::int64_t{16}, N}) {
    SCOPED_TRACE(cat("block of ", R, " rows"));
    Tensor loss = Tensor::empty({N}, dt()), lse = Tensor::empty({N}, dt()), dx = Tensor::empty({N, C}, dt());
    Tensor dw = dw0.clone(), work = Tensor::empty({R, V}, dt());
    Tensor gloss = poisoned({N}, dt()), glse = poisoned({N}, dt()), gdx = poisoned({N, C}, dt());
    Tensor gdw = to_dev(dw0), gwork = poisoned({R, V}, dt());
    const double sum = kernels::classifier_cross_entropy(x, w, tgt, 1e-4, 0.25, loss, lse, dx, dw, work);
    const double gsum = kernels::classifier_cross_entropy(gx, gw, gtgt, 1e-4, 0.25, gloss, glse, gdx, gdw, gwork);
    EXPECT_NEAR(gsum, sum, tol_for(dt()) * std::fabs(sum));
    same("classifier_cross_entropy loss", gloss, loss);
    same("classifier_cross_entropy lse", glse, lse);
    same("classifier_cross_entropy dx", gdx, dx);
    same("classifier_cross_entropy dw (accumulated)", gdw, dw);
    // Loss only (no gradients): the same losses.
    Tensor gnone;
    gloss = poisoned({N}, dt());
    glse = poisoned({N}, dt());
    const double gsum2 = kernels::classifier_cross_entropy(gx, gw, gtgt, 1e-4, 0.25, gloss, glse, gnone, gnone, gwork);
    EXPECT_NEAR(gsum2, sum, tol_for(dt()) * std::fabs(sum));
    same("classifier_cross_entropy loss (loss only)", gloss, loss);
    same("classifier_cross_entropy lse (loss only)", glse, lse);
  }
}

TEST_P(CudaVsHost, AdamWAndSumSquares) {
  const std::int64_t n = 4099;
  Tensor p = randn({n}, 31, dt()), g = randn({n}, 32, dt()), m = randn({n}, 33, dt(), 0.1);
  Tensor v = randn({n}, 34, dt(), 0.1);
  for (std::int64_t i = 0; i < n; ++i) {  // v >= 0
    if (dt() == DType::F32)
      v.data<float>()[i] = std::fabs(v.data<float>()[i]);
    else
      v.data<double>()[i] = std::fabs(v.data<double>()[i]);
  }
  Tensor gp = to_dev(p), gg = to_dev(g), gm = to_dev(m), gv = to_dev(v);
  kernels::AdamWHyper h;
  h.lr = 1e-2;
  h.weight_decay = 0.1;
  h.step = 3;
  kernels::adamw_update(p, g, m, v, h);
  kernels::adamw_update(gp, gg, gm, gv, h);
  same("adamw param", gp, p);
  same("adamw m", gm, m);
  same("adamw v", gv, v);
  const double ss = kernels::sum_squares(g), gss = kernels::sum_squares(gg);
  EXPECT_NEAR(gss, ss, 1e-12 * ss);
  EXPECT_EQ(kernels::sum_squares(gg), gss) << "the device sum of squares is not deterministic";
}

TEST_P(CudaVsHost, Quantizers) {
  const std::int64_t N = 12, C = 256;
  Tensor x = randn({N, C}, 35, dt());
  for (const std::int64_t group : {std::int64_t{0}, std::int64_t{64}}) {
    const std::int64_t ns = group == 0 ? N : N * C / group;
    Tensor xq = Tensor::empty({N, C}, dt()), s = Tensor::empty({ns}, dt());
    Tensor gxq = poisoned({N, C}, dt()), gs = poisoned({ns}, dt());
    kernels::rtn_quantize(x, 4, group, xq, s);
    kernels::rtn_quantize(to_dev(x), 4, group, gxq, gs);
    same(cat("rtn_quantize xq group ", group), gxq, xq, 0.0);
    same(cat("rtn_quantize scales group ", group), gs, s, 0.0);
  }
  Tensor h = Tensor::empty({N, C}, dt()), gh = poisoned({N, C}, dt());
  kernels::hadamard_transform(x, kernels::kHadamardBlock, h);
  kernels::hadamard_transform(to_dev(x), kernels::kHadamardBlock, gh);
  same("hadamard_transform", gh, h, 0.0);
  Tensor gx = to_dev(x);
  kernels::hadamard_transform(gx, 32, gx);  // in place, another block size
  kernels::hadamard_transform(x, 32, x);
  same("hadamard_transform in place", gx, x, 0.0);
  Tensor xq = Tensor::empty({N, C}, dt()), mask = Tensor::empty({N, C}, dt()), sc = Tensor::empty({N}, dt());
  Tensor gxq = poisoned({N, C}, dt()), gmask = poisoned({N, C}, dt()), gsc = poisoned({N}, dt());
  kernels::quest_quantize(x, 4, kernels::quest_default_trust(4), xq, mask, sc);
  kernels::quest_quantize(gx, 4, kernels::quest_default_trust(4), gxq, gmask, gsc);
  same("quest_quantize xq", gxq, xq);
  same("quest_quantize mask", gmask, mask, 0.0);
  same("quest_quantize scales", gsc, sc);
  Tensor g = randn({N, C}, 36, dt());
  Tensor gg = to_dev(g);
  kernels::apply_mask(g, mask);
  kernels::apply_mask(gg, gmask);
  same("apply_mask", gg, g, 0.0);
}

TEST_P(CudaVsHost, ScionLmos) {
  const std::int64_t R = 300, C = 70;  // more rows than a block's threads, columns past two warps
  Tensor x = randn({R, C}, 40, dt());
  Tensor s = Tensor::empty({R, C}, dt()), gs = poisoned({R, C}, dt());
  kernels::sign_scaled(x, 1.0 / C, s);
  kernels::sign_scaled(to_dev(x), 1.0 / C, gs);
  same("sign_scaled (bitwise)", gs, s, 0.0);
  for (int axis : {0, 1}) {
    Tensor y = Tensor::empty({R, C}, dt()), gy = poisoned({R, C}, dt());
    kernels::rms_normalize(x, axis, axis == 0 ? double(C) : 1.0, 1e-8, y);
    kernels::rms_normalize(to_dev(x), axis, axis == 0 ? double(C) : 1.0, 1e-8, gy);
    // Columns: each thread sums its column in the host's order with explicit roundings (bitwise).
    same(cat("rms_normalize axis ", axis), gy, y, axis == 0 ? 0.0 : -1.0);
  }
  Tensor gain = randn({C}, 41, dt()), gg = to_dev(gain);
  kernels::rms_normalize(gain, 1, 1.0, 1e-8, gain);  // BiasRMS, in place
  kernels::rms_normalize(gg, 1, 1.0, 1e-8, gg);
  same("rms_normalize of a vector, in place", gg, gain);
}

TEST_P(CudaVsHost, MatrixOptimizerPrimitives) {
  const std::int64_t n = 5003;
  Tensor v = randn({n}, 42, dt()), x = randn({n}, 43, dt());
  Tensor gv = to_dev(v);
  // Moment updates: explicit roundings, the host's bits.
  kernels::ema(v, x, 0.95, 0.05, true);
  kernels::ema(gv, to_dev(x), 0.95, 0.05, true);
  same("ema square (bitwise)", gv, v, 0.0);
  kernels::ema(v, x, 0.9, 0.1, false);
  kernels::ema(gv, to_dev(x), 0.9, 0.1, false);
  same("ema (bitwise)", gv, v, 0.0);
  Tensor sq = Tensor::zeros({n}, dt());
  kernels::ema(sq, x, 0.0, 1.0, true);
  Tensor d = Tensor::empty({n}, dt()), gd = poisoned({n}, dt());
  kernels::adam_direction(v, sq, 3.0, 1e-8, d);
  kernels::adam_direction(gv, to_dev(sq), 3.0, 1e-8, gd);
  same("adam_direction (bitwise)", gd, d, 0.0);

  Tensor a = randn({37, 37}, 44, dt()), s = randn({37}, 45, dt());
  Tensor ga = to_dev(a);
  kernels::add_diagonal(a, 0.75);
  kernels::add_diagonal(ga, 0.75);
  kernels::scale_columns(a, s);
  kernels::scale_columns(ga, to_dev(s));
  same("add_diagonal + scale_columns (bitwise)", ga, a, 0.0);
  EXPECT_EQ(kernels::max_abs_minus_identity(ga), kernels::max_abs_minus_identity(a));
  const DType other = dt() == DType::F64 ? DType::F32 : DType::F64;
  Tensor c = Tensor::empty({37, 37}, other), gc = Tensor::empty({37, 37}, other, Device::Cuda);
  kernels::convert(a, c);
  kernels::convert(ga, gc);
  expect_close("convert", to_host(gc), values(c), 0.0);

  Tensor full = randn({20, 30}, 46, dt()), block = Tensor::empty({7, 11}, dt()),
         gblock = poisoned({7, 11}, dt());
  Tensor gfull = to_dev(full);
  kernels::copy_block(full, 13, 19, block);
  kernels::copy_block(gfull, 13, 19, gblock);
  same("copy_block", gblock, block, 0.0);
  kernels::add_block(full, 2, 3, block, -0.3);
  kernels::add_block(gfull, 2, 3, gblock, -0.3);
  same("add_block (bitwise)", gfull, full, 0.0);

  const std::vector<std::int64_t> perm = {4, 0, 3, 1, 2};
  Tensor m = randn({5, 5}, 47, dt()), pc = Tensor::empty({5, 5}, dt()), pr = Tensor::empty({5, 5}, dt());
  Tensor gpc = poisoned({5, 5}, dt()), gpr = poisoned({5, 5}, dt());
  kernels::gather_columns(m, perm, pc);
  kernels::gather_columns(to_dev(m), perm, gpc);
  kernels::gather_rows(m, perm, pr);
  kernels::gather_rows(to_dev(m), perm, gpr);
  same("gather_columns", gpc, pc, 0.0);
  same("gather_rows", gpr, pr, 0.0);
  EXPECT_EQ(kernels::column_dots(to_dev(full), to_dev(full)), kernels::column_dots(full, full))
      << "column_dots: one thread per column in the host's order must give the host's bits";
}

TEST_P(CudaVsHost, PsgdPrimitives) {
  // Sizes past a block's threads and a warp; an upper triangular factor with a dominant diagonal (solves
  // stay well conditioned).
  const std::int64_t R = 300, C = 70;
  Tensor x = randn({R, C}, 60, dt());
  for (int side : {0, 1}) {
    const std::int64_t k = side == 0 ? R : C;
    Tensor f = randn({k, k}, 61 + side, dt());
    kernels::scale(f, 0.1 / std::sqrt(static_cast<double>(k)));
    kernels::add_diagonal(f, 1.0);
    Tensor d = randn({k}, 63 + side, dt());
    for (bool trans : {false, true})
      for (bool solve : {false, true}) {
        Tensor h = x.clone(), g = to_dev(x);
        kernels::triangular_apply(f, side, trans, solve, h);
        kernels::triangular_apply(to_dev(f), side, trans, solve, g);
        same(cat("triangular_apply side ", side, " trans ", trans, " solve ", solve), g, h);
      }
    for (bool solve : {false, true}) {
      Tensor h = x.clone(), g = to_dev(x);
      kernels::diagonal_apply(d, side, solve, h);
      kernels::diagonal_apply(to_dev(d), side, solve, g);
      same(cat("diagonal_apply side ", side, " solve ", solve, " (bitwise)"), g, h, 0.0);
    }
    Tensor c = Tensor::empty({k, k}, dt()), gc = poisoned({k, k}, dt());
    kernels::gram(x, side == 1, c);
    kernels::gram(to_dev(x), side == 1, gc);
    same(cat("gram side ", side), gc, c);
    Tensor ss = Tensor::empty({k}, dt()), gss = poisoned({k}, dt());
    kernels::sum_squares_axis(x, side, ss);
    kernels::sum_squares_axis(to_dev(x), side, gss);
    same(cat("sum_squares_axis side ", side, " (bitwise)"), gss, ss, 0.0);
    // The spectral-norm lower bound of a symmetric PSD matrix: the host's order, bitwise.
    EXPECT_EQ(kernels::norm_lower_bound(gc), kernels::norm_lower_bound(to_host(gc))) << "side " << side;
  }
  EXPECT_NEAR(kernels::abs_sum(to_dev(x)), kernels::abs_sum(x), 1e-12 * kernels::abs_sum(x));
  EXPECT_EQ(kernels::max_abs(to_dev(x)), kernels::max_abs(x));
  Tensor q = Tensor::empty({R, C}, dt()), gq = poisoned({R, C}, dt());
  kernels::divide(x, 0.37, q);
  kernels::divide(to_dev(x), 0.37, gq);
  same("divide (bitwise)", gq, q, 0.0);
  Tensor w = randn({R, C}, 64, dt()), gw = to_dev(w);
  kernels::decayed_update(w, x, 3e-3, 0.1);
  kernels::decayed_update(gw, to_dev(x), 3e-3, 0.1);
  same("decayed_update (bitwise)", gw, w, 0.0);
  Tensor cx = x.clone(), gcx = to_dev(x);
  const double ch = kernels::clip_rms(cx, 0.5), cd = kernels::clip_rms(gcx, 0.5);
  EXPECT_NEAR(cd, ch, 1e-12) << "clip_rms factor";
  same("clip_rms", gcx, cx);

  // Factor updates: statistics from a probe as PSGD forms them.
  for (std::int64_t n : {1, 37, 1100}) {
    Tensor a = randn({n, 8}, 65, dt()), b = randn({n, 8}, 66, dt());
    Tensor t1 = Tensor::empty({n}, dt()), t2 = Tensor::empty({n}, dt());
    kernels::sum_squares_axis(a, 0, t1);
    kernels::sum_squares_axis(b, 0, t2);
    Tensor dq = randn({n}, 67, dt()), gdq = to_dev(dq);
    EXPECT_TRUE(kernels::psgd_diagonal_update(dq, t1, t2, 0.1));
    EXPECT_TRUE(kernels::psgd_diagonal_update(gdq, to_dev(t1), to_dev(t2), 0.1));
    same(cat("psgd_diagonal_update n ", n, " (bitwise)"), gdq, dq, 0.0);
  }
  for (std::int64_t n : {1, 37, 130}) {
    Tensor a = randn({n, 50}, 68, dt()), b = randn({n, 50}, 69, dt());
    Tensor t1 = Tensor::empty({n, n}, dt()), t2 = Tensor::empty({n, n}, dt());
    kernels::gram(a, false, t1);
    kernels::gram(b, false, t2);
    Tensor tq = Tensor::zeros({n, n}, dt());
    kernels::add_diagonal(tq, 1.0);
    Tensor gtq = to_dev(tq);
    EXPECT_TRUE(kernels::psgd_triangular_update(tq, t1, t2, 0.1));
    EXPECT_TRUE(kernels::psgd_triangular_update(gtq, to_dev(t1), to_dev(t2), 0.1));
    same(cat("psgd_triangular_update n ", n), gtq, tq);
  }
  // A non-finite update leaves the factor as it was, on both devices.
  Tensor nan_t = Tensor::empty({3}, dt()), gq3 = to_dev(randn({3}, 70, dt()));
  kernels::fill(nan_t, std::numeric_limits<double>::quiet_NaN());
  const std::vector<double> before = values(to_host(gq3));
  EXPECT_FALSE(kernels::psgd_diagonal_update(gq3, to_dev(nan_t), to_dev(nan_t), 0.1));
  expect_close("rejected diagonal update", to_host(gq3), before, 0.0);
}

TEST_P(CudaVsHost, EighAndQrWithCusolver) {
  // cuSOLVER and LAPACK agree on eigenvalues and on everything that does not depend on the sign (or, for
  // repeated eigenvalues, the basis) they choose: the reconstruction Q diag(w) Q^T and Q^T Q = I; QR by
  // Q R = A and Q^T Q = I.
  const std::int64_t n = 70;
  const Tensor a = testing::random_spd(n, 48, dt());
  Tensor q = to_dev(a), w = poisoned({n}, dt());
  Tensor hq = a.clone(), hw = Tensor::empty({n}, dt());
  ASSERT_EQ(kernels::eigh_inplace(q, w), 0);
  ASSERT_EQ(kernels::eigh_inplace(hq, hw), 0);
  same("eigenvalues", w, hw, dt() == DType::F64 ? 1e-12 : 1e-5);
  Tensor qw = q.clone(), rec = poisoned({n, n}, dt()), qtq = poisoned({n, n}, dt());
  kernels::scale_columns(qw, w);
  kernels::matmul(qw, false, q, true, rec);
  same("Q diag(w) Q^T", rec, a, dt() == DType::F64 ? 1e-12 : 1e-5);
  kernels::matmul(q, true, q, false, qtq);
  EXPECT_LE(kernels::max_abs_minus_identity(qtq), dt() == DType::F64 ? 1e-12 : 1e-5);

  const Tensor b = randn({90, 40}, 49, dt());
  Tensor gq = to_dev(b), gr = poisoned({40, 40}, dt());
  ASSERT_EQ(kernels::qr_inplace(gq, gr), 0);
  Tensor qr_rec = poisoned({90, 40}, dt()), gqtq = poisoned({40, 40}, dt());
  kernels::matmul(gq, false, gr, false, qr_rec);
  same("Q R", qr_rec, b, dt() == DType::F64 ? 1e-12 : 1e-5);
  kernels::matmul(gq, true, gq, false, gqtq);
  EXPECT_LE(kernels::max_abs_minus_identity(gqtq), dt() == DType::F64 ? 1e-12 : 1e-5);
  const Tensor hr = to_host(gr);
  for (std::int64_t i = 0; i < 40; ++i)
    for (std::int64_t j = 0; j < i; ++j) ASSERT_EQ(hr.item(i * 40 + j), 0.0) << "R below the diagonal";
}

TEST_P(CudaVsHost, InverseRootsOnTheDevice) {
  // Shampoo's inverse roots (optim/matrix_functions.hpp) of a device matrix against the host's.
  const Tensor a = testing::random_spd(48, 50, dt());
  const RootResult he = inverse_root_eigen(a, 4.0, 1e-6), de = inverse_root_eigen(to_dev(a), 4.0, 1e-6);
  ASSERT_TRUE(he.ok && de.ok) << de.message;
  EXPECT_FALSE(de.root.is_host());
  same("inverse_root_eigen", de.root, he.root, dt() == DType::F64 ? 1e-10 : 1e-4);
  const RootResult hn = inverse_root_newton(a, 4, 1e-6), dn = inverse_root_newton(to_dev(a), 4, 1e-6);
  ASSERT_TRUE(hn.ok && dn.ok) << dn.message;
  EXPECT_LE(std::abs(dn.iterations - hn.iterations), 1) << "rounding may move the stop by one iteration";
  same("inverse_root_newton", dn.root, hn.root, dt() == DType::F64 ? 1e-10 : 1e-4);
  const QrResult hqr = qr(to_dev(randn({12, 12}, 51, dt())));
  EXPECT_TRUE(hqr.ok);
  EXPECT_FALSE(hqr.q.is_host());
  Tensor bad = to_dev(a);
  kernels::fill(bad, std::numeric_limits<double>::quiet_NaN());
  const EighResult e = eigh(bad);
  EXPECT_FALSE(e.ok) << "non-finite input must fail";
  EXPECT_FALSE(all_finite(bad));
}

TEST_P(CudaVsHost, Fp64AccumulationIsBitwiseTheHost) {
  if (dt() != DType::F32) GTEST_SKIP() << "fold_f64 / unfold_f64 take f32 gradients";
  const std::int64_t n = 70001;
  Tensor acc = randn({n}, 37, DType::F64), g1 = randn({n}, 38, dt()), g2 = randn({n}, 39, dt());
  Tensor dacc = to_dev(acc), dg1 = to_dev(g1), dg2 = to_dev(g2);
  kernels::fold_f64(g1, acc);
  kernels::fold_f64(dg1, dacc);
  same("fold_f64 zeroes x", dg1, g1, 0.0);
  kernels::fold_f64(g2, acc);
  kernels::fold_f64(dg2, dacc);
  expect_close("fold_f64 acc (bitwise)", to_host(dacc), values(acc), 0.0);
  Tensor out = Tensor::empty({n}, dt()), dout = poisoned({n}, dt());
  kernels::unfold_f64(acc, out);
  kernels::unfold_f64(dacc, dout);
  same("unfold_f64 (bitwise)", dout, out, 0.0);
  expect_close("unfold_f64 zeroes acc", to_host(dacc), values(acc), 0.0);
}

TEST_P(CudaVsHost, MixedDevicesAreErrors) {
  Tensor a = randn({4}, 8, dt());
  Tensor da = to_dev(a);
  expect_error([&] { kernels::add(a, da, a); }, {"add", "same device"});
  Tensor q = randn({1, 3, 2, 4}, 9, dt()), lse = Tensor::empty({1, 2, 3}, dt());
  Tensor out = Tensor::empty(q.shape(), dt());
  expect_error([&] { kernels::attention_forward(to_dev(q), q, q, out, lse); },
               {"attention_forward", "same device"});
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaVsHost, ::testing::Values(DType::F32, DType::F64),
                         testing::dtype_param_name);

}  // namespace
}  // namespace quopt
