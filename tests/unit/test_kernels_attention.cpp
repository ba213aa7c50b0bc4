// Causal attention kernels (kernels/ops.hpp): forward against a naive fp64 reference, fp32 vs
// fp64 agreement, backward by finite differences, grouped KV heads against explicitly repeated
// heads, causality, and argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"
#include "kernels/ops.hpp"
#include "support/gradcheck.hpp"

namespace quopt {
namespace {

using kernels::attention_backward;
using kernels::attention_forward;
using testing::randn;

struct Dims {
  std::int64_t B, T, H, Hkv, D;
};

std::int64_t at4(std::int64_t b, std::int64_t t, std::int64_t h, std::int64_t d, std::int64_t T,
                 std::int64_t H, std::int64_t D) {
  return ((b * T + t) * H + h) * D + d;
}

Tensor filled(const Shape& s, DType dt, double value) {
  Tensor t = Tensor::empty(s, dt);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (dt == DType::F64)
      t.data<double>()[i] = value;
    else
      t.data<float>()[i] = static_cast<float>(value);
  }
  return t;
}

Tensor nan_tensor(const Shape& s, DType dt) {
  return filled(s, dt, std::numeric_limits<double>::quiet_NaN());
}

// Naive reference: explicit T x T scores, -inf above the diagonal, softmax, weighted sum; fp64.
struct Reference {
  std::vector<double> out, lse;
};
Reference naive_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  const std::int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), D = q.dim(3), Hkv = k.dim(2);
  Reference r;
  r.out.assign(static_cast<std::size_t>(q.numel()), 0.0);
  r.lse.assign(static_cast<std::size_t>(B * H * T), 0.0);
  std::vector<double> s(static_cast<std::size_t>(T));
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t g = h / (H / Hkv);
      for (std::int64_t i = 0; i < T; ++i) {
        double m = -std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < T; ++j) {
          double dot = 0.0;
          for (std::int64_t d = 0; d < D; ++d)
            dot += q.item(at4(b, i, h, d, T, H, D)) * k.item(at4(b, j, g, d, T, Hkv, D));
          s[j] = j <= i ? dot / std::sqrt(static_cast<double>(D)) : -std::numeric_limits<double>::infinity();
          m = std::max(m, s[j]);
        }
        double z = 0.0;
        for (std::int64_t j = 0; j < T; ++j) z += std::exp(s[j] - m);
        r.lse[static_cast<std::size_t>((b * H + h) * T + i)] = m + std::log(z);
        for (std::int64_t j = 0; j < T; ++j) {
          const double p = std::exp(s[j] - m) / z;
          for (std::int64_t d = 0; d < D; ++d) {
            r.out[static_cast<std::size_t>(at4(b, i, h, d, T, H, D))] +=
                p * v.item(at4(b, j, g, d, T, Hkv, D));
          }
        }
      }
    }
  }
  return r;
}

void expect_near_vec(const std::string& what, const Tensor& got, const std::vector<double>& want,
                     double tol) {
  ASSERT_EQ(got.numel(), static_cast<std::int64_t>(want.size())) << what;
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    const double w = want[static_cast<std::size_t>(i)];
    ASSERT_NEAR(got.item(i), w, tol * (1.0 + std::fabs(w))) << what << "[" << i << "]";
  }
}

std::vector<double> to_vec(const Tensor& t) {
  std::vector<double> r(static_cast<std::size_t>(t.numel()));
  for (std::int64_t i = 0; i < t.numel(); ++i) r[static_cast<std::size_t>(i)] = t.item(i);
  return r;
}

struct Inputs {
  Tensor q, k, v;
};
Inputs make_inputs(const Dims& d, std::uint64_t seed) {
  return {randn({d.B, d.T, d.H, d.D}, seed + 1), randn({d.B, d.T, d.Hkv, d.D}, seed + 2),
          randn({d.B, d.T, d.Hkv, d.D}, seed + 3)};
}

struct Outputs {
  Tensor out, lse;
};
Outputs run_forward(const Tensor& q, const Tensor& k, const Tensor& v) {
  Outputs o{nan_tensor(q.shape(), q.dtype()), nan_tensor({q.dim(0), q.dim(2), q.dim(1)}, q.dtype())};
  attention_forward(q, k, v, o.out, o.lse);
  return o;
}

struct Grads {
  Tensor dq, dk, dv;
};
Grads run_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Outputs& o) {
  // Outputs start as NaN: the op must write every entry, not accumulate.
  Grads g{nan_tensor(q.shape(), q.dtype()), nan_tensor(k.shape(), k.dtype()),
          nan_tensor(v.shape(), v.dtype())};
  attention_backward(dout, q, k, v, o.out, o.lse, g.dq, g.dk, g.dv);
  return g;
}

class AttentionShapes
    : public ::testing::TestWithParam<std::tuple<std::int64_t, std::int64_t, std::int64_t>> {};

TEST_P(AttentionShapes, ForwardMatchesNaiveReferenceFp64AndFp32) {
  const auto [H, Hkv, T] = GetParam();
  const Dims d{2, T, H, Hkv, 8};
  const Inputs in = make_inputs(d, 100 + static_cast<std::uint64_t>(T * 10 + H + Hkv));
  const Reference ref = naive_attention(in.q, in.k, in.v);

  const Outputs o64 = run_forward(in.q, in.k, in.v);
  expect_near_vec("out f64", o64.out, ref.out, 1e-12);
  expect_near_vec("lse f64", o64.lse, ref.lse, 1e-12);

  const Outputs o32 = run_forward(in.q.astype(DType::F32), in.k.astype(DType::F32), in.v.astype(DType::F32));
  expect_near_vec("out f32", o32.out, ref.out, 1e-5);
  expect_near_vec("lse f32", o32.lse, ref.lse, 1e-5);
}

TEST_P(AttentionShapes, BackwardMatchesFiniteDifferences) {
  const auto [H, Hkv, T] = GetParam();
  const Dims d{2, T, H, Hkv, 8};
  Inputs in = make_inputs(d, 200 + static_cast<std::uint64_t>(T * 10 + H + Hkv));
  const Tensor R = randn({d.B, d.T, d.H, d.D}, 299);
  const Outputs o = run_forward(in.q, in.k, in.v);
  const Grads g = run_backward(R, in.q, in.k, in.v, o);
  // Objective sum(out * R): its gradient with respect to out is R, the dout passed above.
  const auto loss = [&] {
    const Outputs p = run_forward(in.q, in.k, in.v);
    double s = 0.0;
    for (std::int64_t i = 0; i < p.out.numel(); ++i) s += p.out.item(i) * R.item(i);
    return s;
  };
  // Step 1e-4: truncation error ~1e-10 here, while smaller steps amplify fp64 rounding of the loss.
  testing::expect_gradient("dq", in.q, g.dq, loss, 1e-6, 1e-4, 0, 1e-3);
  testing::expect_gradient("dk", in.k, g.dk, loss, 1e-6, 1e-4, 0, 1e-3);
  testing::expect_gradient("dv", in.v, g.dv, loss, 1e-6, 1e-4, 0, 1e-3);

  // fp32 gradients agree with the fp64 ones.
  const Tensor q32 = in.q.astype(DType::F32), k32 = in.k.astype(DType::F32), v32 = in.v.astype(DType::F32);
  const Outputs o32 = run_forward(q32, k32, v32);
  const Grads g32 = run_backward(R.astype(DType::F32), q32, k32, v32, o32);
  expect_near_vec("dq f32", g32.dq, to_vec(g.dq), 2e-5);
  expect_near_vec("dk f32", g32.dk, to_vec(g.dk), 2e-5);
  expect_near_vec("dv f32", g32.dv, to_vec(g.dv), 2e-5);
}

// (H, Hkv, T): plain multi-head and grouped KV heads, T in {1, 5, 17}.
INSTANTIATE_TEST_SUITE_P(Kernels, AttentionShapes,
                         ::testing::Combine(::testing::Values(std::int64_t{2}, std::int64_t{4}),
                                            ::testing::Values(std::int64_t{2}),
                                            ::testing::Values(std::int64_t{1}, std::int64_t{5},
                                                              std::int64_t{17})),
                         [](const auto& tp) {
                           return "H" + std::to_string(std::get<0>(tp.param)) + "_Hkv" +
                                  std::to_string(std::get<1>(tp.param)) + "_T" +
                                  std::to_string(std::get<2>(tp.param));
                         });

// Sequences longer than one row block of the host kernel (64 rows), with one kv head for 4 query heads.
TEST(KernelsAttention, LongSequenceAcrossRowBlocks) {
  const Dims d{1, 130, 4, 1, 8};
  Inputs in = make_inputs(d, 300);
  const Reference ref = naive_attention(in.q, in.k, in.v);
  const Outputs o = run_forward(in.q, in.k, in.v);
  expect_near_vec("out", o.out, ref.out, 1e-12);
  expect_near_vec("lse", o.lse, ref.lse, 1e-12);

  const Tensor R = randn(in.q.shape(), 301);
  const Grads g = run_backward(R, in.q, in.k, in.v, o);
  const auto loss = [&] {
    const Outputs p = run_forward(in.q, in.k, in.v);
    double s = 0.0;
    for (std::int64_t i = 0; i < p.out.numel(); ++i) s += p.out.item(i) * R.item(i);
    return s;
  };
  testing::expect_gradient("dq", in.q, g.dq, loss, 1e-6, 1e-4, 60, 1e-3);
  testing::expect_gradient("dk", in.k, g.dk, loss, 1e-6, 1e-4, 60, 1e-3);
  testing::expect_gradient("dv", in.v, g.dv, loss, 1e-6, 1e-4, 60, 1e-3);
}

// Grouped attention equals ordinary multi-head attention on k, v with each kv head repeated
// H / Hkv times; dk, dv of a kv head are the sums over its repeated copies.
TEST(KernelsAttention, GroupedEqualsRepeatedKvHeads) {
  const Dims d{2, 70, 6, 2, 4};
  const std::int64_t group = d.H / d.Hkv;
  const Inputs in = make_inputs(d, 400);
  Tensor k_rep = Tensor::empty({d.B, d.T, d.H, d.D}, DType::F64),
         v_rep = Tensor::empty(k_rep.shape(), DType::F64);
  for (std::int64_t b = 0; b < d.B; ++b)
    for (std::int64_t t = 0; t < d.T; ++t)
      for (std::int64_t h = 0; h < d.H; ++h)
        for (std::int64_t c = 0; c < d.D; ++c) {
          k_rep.data<double>()[at4(b, t, h, c, d.T, d.H, d.D)] =
              in.k.item(at4(b, t, h / group, c, d.T, d.Hkv, d.D));
          v_rep.data<double>()[at4(b, t, h, c, d.T, d.H, d.D)] =
              in.v.item(at4(b, t, h / group, c, d.T, d.Hkv, d.D));
        }
  const Outputs og = run_forward(in.q, in.k, in.v);
  const Outputs orep = run_forward(in.q, k_rep, v_rep);
  expect_near_vec("out", og.out, to_vec(orep.out), 1e-13);
  expect_near_vec("lse", og.lse, to_vec(orep.lse), 1e-13);

  const Tensor R = randn(in.q.shape(), 401);
  const Grads gg = run_backward(R, in.q, in.k, in.v, og);
  const Grads grep = run_backward(R, in.q, k_rep, v_rep, orep);
  expect_near_vec("dq", gg.dq, to_vec(grep.dq), 1e-12);
  std::vector<double> dk_sum(static_cast<std::size_t>(in.k.numel()), 0.0), dv_sum(dk_sum);
  for (std::int64_t b = 0; b < d.B; ++b)
    for (std::int64_t t = 0; t < d.T; ++t)
      for (std::int64_t h = 0; h < d.H; ++h)
        for (std::int64_t c = 0; c < d.D; ++c) {
          const auto dst = static_cast<std::size_t>(at4(b, t, h / group, c, d.T, d.Hkv, d.D));
          dk_sum[dst] += grep.dk.item(at4(b, t, h, c, d.T, d.H, d.D));
          dv_sum[dst] += grep.dv.item(at4(b, t, h, c, d.T, d.H, d.D));
        }
  expect_near_vec("dk", gg.dk, dk_sum, 1e-12);
  expect_near_vec("dv", gg.dv, dv_sum, 1e-12);
}

// Changing k and v at positions > t leaves out and lse at positions <= t unchanged (and does change
// later positions, so the comparison is not vacuous). Checked inside the first row block and past it.
TEST(KernelsAttention, Causality) {
  for (const DType dt : {DType::F64, DType::F32}) {
    for (const std::int64_t t_cut : {std::int64_t{6}, std::int64_t{80}}) {
      const Dims d{2, 100, 4, 2, 8};
      const Inputs in = make_inputs(d, 500);
      const Tensor q = in.q.astype(dt), k = in.k.astype(dt), v = in.v.astype(dt);
      Tensor k2 = k.clone(), v2 = v.clone();
      const Tensor noise = randn(in.k.shape(), 501);
      for (std::int64_t b = 0; b < d.B; ++b)
        for (std::int64_t t = t_cut + 1; t < d.T; ++t)
          for (std::int64_t h = 0; h < d.Hkv; ++h)
            for (std::int64_t c = 0; c < d.D; ++c) {
              const std::int64_t i = at4(b, t, h, c, d.T, d.Hkv, d.D);
              if (dt == DType::F64) {
                k2.data<double>()[i] += noise.item(i);
                v2.data<double>()[i] -= noise.item(i);
              } else {
                k2.data<float>()[i] += static_cast<float>(noise.item(i));
                v2.data<float>()[i] -= static_cast<float>(noise.item(i));
              }
            }
      const Outputs a = run_forward(q, k, v), b2 = run_forward(q, k2, v2);
      double max_after = 0.0;
      for (std::int64_t b = 0; b < d.B; ++b)
        for (std::int64_t t = 0; t < d.T; ++t)
          for (std::int64_t h = 0; h < d.H; ++h) {
            const std::int64_t li = (b * d.H + h) * d.T + t;
            for (std::int64_t c = 0; c < d.D; ++c) {
              const std::int64_t i = at4(b, t, h, c, d.T, d.H, d.D);
              if (t <= t_cut) {
                ASSERT_NEAR(a.out.item(i), b2.out.item(i), 1e-12) << "t=" << t << " cut=" << t_cut;
              } else {
                max_after = std::max(max_after, std::fabs(a.out.item(i) - b2.out.item(i)));
              }
            }
            if (t <= t_cut) {
              ASSERT_NEAR(a.lse.item(li), b2.lse.item(li), 1e-12) << "t=" << t;
            }
          }
      EXPECT_GT(max_after, 1e-2) << "perturbing k, v after t=" << t_cut << " should change later outputs";
    }
  }
}

TEST(KernelsAttention, WrongArgumentsThrow) {
  const Dims d{2, 5, 4, 2, 8};
  const Inputs in = make_inputs(d, 600);
  Tensor out = Tensor::empty(in.q.shape(), DType::F64), lse = Tensor::empty({d.B, d.H, d.T}, DType::F64);
  Tensor bad_lse = Tensor::empty({d.B, d.T, d.H}, DType::F64);
  EXPECT_NO_THROW(attention_forward(in.q, in.k, in.v, out, lse));
  // q not 4-D.
  EXPECT_THROW(attention_forward(in.q.reshape({d.B * d.T, d.H, d.D}), in.k, in.v, out, lse), Error);
  // k with a different sequence length than q.
  const Tensor k_short = randn({d.B, d.T - 1, d.Hkv, d.D}, 601);
  EXPECT_THROW(attention_forward(in.q, k_short, in.v, out, lse), Error);
  // H not a multiple of Hkv.
  const Tensor k3 = randn({d.B, d.T, 3, d.D}, 602), v3 = randn({d.B, d.T, 3, d.D}, 603);
  EXPECT_THROW(attention_forward(in.q, k3, v3, out, lse), Error);
  // v differing from k; wrong head dim in k.
  const Tensor k_d = randn({d.B, d.T, d.Hkv, d.D + 1}, 604);
  EXPECT_THROW(attention_forward(in.q, in.k, k_d, out, lse), Error);
  EXPECT_THROW(attention_forward(in.q, k_d, k_d, out, lse), Error);
  // Wrong output shapes.
  EXPECT_THROW(attention_forward(in.q, in.k, in.v, out, bad_lse), Error);
  Tensor out_bad = Tensor::empty({d.B, d.T, d.H, d.D + 1}, DType::F64);
  EXPECT_THROW(attention_forward(in.q, in.k, in.v, out_bad, lse), Error);
  // Mixed dtypes, unsupported dtype, undefined tensors.
  Tensor out32 = Tensor::empty(in.q.shape(), DType::F32);
  EXPECT_THROW(attention_forward(in.q, in.k, in.v, out32, lse), Error);
  EXPECT_THROW(attention_forward(in.q, in.k.astype(DType::F32), in.v, out, lse), Error);
  const Tensor qi = Tensor::zeros(in.q.shape(), DType::I32), ki = Tensor::zeros(in.k.shape(), DType::I32);
  Tensor oi = Tensor::zeros(in.q.shape(), DType::I32), li = Tensor::zeros({d.B, d.H, d.T}, DType::I32);
  EXPECT_THROW(attention_forward(qi, ki, ki, oi, li), Error);
  Tensor undef;
  EXPECT_THROW(attention_forward(in.q, in.k, in.v, undef, lse), Error);

  // Backward: gradient shapes must match their inputs.
  Tensor dq = Tensor::empty(in.q.shape(), DType::F64), dk = Tensor::empty(in.k.shape(), DType::F64),
         dv = Tensor::empty(in.v.shape(), DType::F64);
  EXPECT_NO_THROW(attention_backward(out, in.q, in.k, in.v, out, lse, dq, dk, dv));
  Tensor dk_bad = Tensor::empty(in.q.shape(), DType::F64);
  EXPECT_THROW(attention_backward(out, in.q, in.k, in.v, out, lse, dq, dk_bad, dv), Error);
  EXPECT_THROW(attention_backward(out, in.q, in.k, in.v, out, lse, dk, dk, dv), Error);
  EXPECT_THROW(attention_backward(out_bad, in.q, in.k, in.v, out, lse, dq, dk, dv), Error);
  EXPECT_THROW(attention_backward(out, in.q, in.k, in.v, out, bad_lse, dq, dk, dv), Error);
  Tensor dv32 = Tensor::empty(in.v.shape(), DType::F32);
  EXPECT_THROW(attention_backward(out, in.q, in.k, in.v, out, lse, dq, dk, dv32), Error);

  // The message names the op and the offending tensor.
  try {
    attention_forward(in.q, in.k, in.v, out, bad_lse);
    FAIL() << "expected quopt::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("attention_forward"), std::string::npos) << msg;
    EXPECT_NE(msg.find("lse"), std::string::npos) << msg;
    EXPECT_NE(msg.find(bad_lse.describe()), std::string::npos) << msg;
  }
}

// Same inputs, same bits (fixed task decomposition and reduction order).
TEST(KernelsAttention, Deterministic) {
  const Dims d{2, 40, 4, 2, 8};
  const Inputs in = make_inputs(d, 700);
  const Tensor q = in.q.astype(DType::F32), k = in.k.astype(DType::F32), v = in.v.astype(DType::F32);
  const Tensor R = randn(q.shape(), 701, DType::F32);
  const Outputs a = run_forward(q, k, v), b = run_forward(q, k, v);
  const Grads ga = run_backward(R, q, k, v, a), gb = run_backward(R, q, k, v, b);
  for (std::int64_t i = 0; i < a.out.numel(); ++i) ASSERT_EQ(a.out.item(i), b.out.item(i));
  for (std::int64_t i = 0; i < ga.dk.numel(); ++i) ASSERT_EQ(ga.dk.item(i), gb.dk.item(i));
  for (std::int64_t i = 0; i < ga.dq.numel(); ++i) ASSERT_EQ(ga.dq.item(i), gb.dq.item(i));
}

}  // namespace
}  // namespace quopt
