// embedding_forward / embedding_backward against naive loops, gradient check, determinism, errors.
#include <gtest/gtest.h>

#include <cstring>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;
using testing::tol_for;

// Token ids with repeats: vocab v, n tokens, deterministic pattern covering some ids several times.
Tensor make_tokens(std::int64_t n, std::int64_t v) {
  Tensor t = Tensor::empty({n}, DType::I32);
  for (std::int64_t i = 0; i < n; ++i)
    t.data<std::int32_t>()[i] = static_cast<std::int32_t>((i * 7 + i / 3) % v);
  return t;
}

class EmbeddingTest : public ::testing::TestWithParam<DType> {};

// C = 150 spans three column chunks of the backward (64 columns each) with a ragged last one.
constexpr std::int64_t kV = 9, kC = 150, kN = 23;

TEST_P(EmbeddingTest, ForwardCopiesRows) {
  const DType dt = GetParam();
  Tensor tokens = make_tokens(kN, kV);
  Tensor table = randn({kV, kC}, 1, dt);
  Tensor out = Tensor::empty({kN, kC}, dt);
  kernels::embedding_forward(tokens, table, out);
  std::vector<double> want(static_cast<std::size_t>(kN * kC));
  for (std::int64_t i = 0; i < kN; ++i) {
    for (std::int64_t j = 0; j < kC; ++j) {
      want[static_cast<std::size_t>(i * kC + j)] = table.item(tokens.item(i) * kC + j);
    }
  }
  expect_close("embedding_forward", out, want, 0.0);
}

TEST_P(EmbeddingTest, BackwardAccumulatesRepeatedTokens) {
  const DType dt = GetParam();
  Tensor tokens = make_tokens(kN, kV);
  Tensor dout = randn({kN, kC}, 2, dt);
  Tensor dtable = randn({kV, kC}, 3, dt);  // accumulated into
  std::vector<double> want = testing::values(dtable);
  for (std::int64_t i = 0; i < kN; ++i) {
    for (std::int64_t j = 0; j < kC; ++j)
      want[static_cast<std::size_t>(tokens.item(i) * kC + j)] += dout.item(i * kC + j);
  }
  kernels::embedding_backward(tokens, dout, dtable);
  expect_close("embedding_backward", dtable, want, tol_for(dt));
}

TEST_P(EmbeddingTest, BackwardIsBitwiseDeterministic) {
  const DType dt = GetParam();
  Tensor tokens = make_tokens(200, 5);  // each id ~40 times
  Tensor dout = randn({200, kC}, 4, dt);
  Tensor d1 = Tensor::zeros({5, kC}, dt), d2 = Tensor::zeros({5, kC}, dt);
  kernels::embedding_backward(tokens, dout, d1);
  kernels::embedding_backward(tokens, dout, d2);
  EXPECT_EQ(std::memcmp(d1.raw(), d2.raw(), d1.nbytes()), 0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, EmbeddingTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(Embedding, GradientMatchesFiniteDifferences) {
  // loss = sum(embedding(tokens, table) * R), so d loss / d out = R.
  Tensor tokens = make_tokens(12, 5);
  Tensor table = randn({5, 6}, 5);
  Tensor r = randn({12, 6}, 6);
  Tensor out = Tensor::empty({12, 6}, DType::F64);
  Tensor grad = Tensor::zeros({5, 6}, DType::F64);
  kernels::embedding_backward(tokens, r, grad);
  testing::expect_gradient("embedding dtable", table, grad, [&] {
    kernels::embedding_forward(tokens, table, out);
    return testing::dot(out, r);
  });
}

TEST(Embedding, ArgumentErrors) {
  Tensor tokens = make_tokens(4, 3);
  Tensor table = randn({3, 8}, 1);
  Tensor out = Tensor::empty({4, 8}, DType::F64);
  Tensor bad_tokens = tokens.clone();
  bad_tokens.data<std::int32_t>()[2] = 3;
  expect_error([&] { kernels::embedding_forward(bad_tokens, table, out); },
               {"embedding_forward", "token id 3", "position 2", "[0, 3)"});
  bad_tokens.data<std::int32_t>()[2] = -1;
  expect_error([&] { kernels::embedding_backward(bad_tokens, out, table); },
               {"embedding_backward", "token id -1"});
  Tensor ftokens = Tensor::zeros({4}, DType::F32);
  expect_error([&] { kernels::embedding_forward(ftokens, table, out); },
               {"embedding_forward", "tokens", "i32"});
  Tensor out_bad = Tensor::empty({4, 7}, DType::F64);
  expect_error([&] { kernels::embedding_forward(tokens, table, out_bad); },
               {"embedding_forward", out_bad.describe()});
  Tensor out32 = Tensor::empty({4, 8}, DType::F32);
  expect_error([&] { kernels::embedding_forward(tokens, table, out32); }, {"same dtype"});
}

}  // namespace
}  // namespace quopt
