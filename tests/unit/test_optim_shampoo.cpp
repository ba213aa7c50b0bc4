// Shampoo (optim/shampoo) and parameter blocking (optim/blocking): a few steps on small matrices against an
// independent fp64 implementation of the reference formulas (facebookresearch/optimizers DistributedShampoo,
// with a Jacobi eigensolver written here), the root invariant X^p (F + eps I) = I, failed-root handling, the
// blocking (merging rules from the reference's docstrings, every element covered exactly once), the config
// keys and the shipped inputs/optimizers/shampoo.toml, and training the tiny OLMo2 model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cblas.h>

#include <cmath>
#include <cstring>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "kernels/host/host_policy.hpp"
#include "io/config.hpp"
#include "io/run_config.hpp"
#include "model/olmo2.hpp"
#include "optim/blocking.hpp"
#include "optim/matrix_functions.hpp"
#include "optim/shampoo.hpp"
#include "support/optim_unit.hpp"

namespace quopt {
namespace {

using testing::expect_docs_cite;
using testing::expect_every_key_set_at_default;
using testing::expect_rejected;
using testing::fill_normal;
using testing::jacobi_eigh;
using testing::load_shipped_optimizer_toml;
using testing::Mat;
using testing::matmul;
using testing::max_rel_diff;
using testing::tiny_model;
using testing::train_tiny;
using testing::values;

// ---- independent fp64 reference ----------------------------------------------------------------------

// (A + eps I)^(-1/p) with the reference's shift when the smallest eigenvalue is below eps.
Mat ref_inv_root(const Mat& a, int n, double p, double eps) {
  Mat r = a;
  for (int i = 0; i < n; ++i) r[i * n + i] += eps;
  std::vector<double> w;
  Mat v;
  jacobi_eigh(r, n, w, v);
  const double lmin = *std::min_element(w.begin(), w.end());
  if (lmin < eps)
    for (auto& x : w) x = x - lmin + eps;
  Mat x(static_cast<std::size_t>(n * n), 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k)
        x[i * n + j] += v[i * n + k] * std::pow(w[static_cast<std::size_t>(k)], -1.0 / p) * v[j * n + k];
  return x;
}

double nrm(const Mat& a) {
  double s = 0;
  for (double x : a) s += x * x;
  return std::sqrt(s);
}

// One Shampoo block, straight from the formulas of DistributedShampoo (see optim/shampoo.hpp).
struct RefBlock {
  ShampooOptions o;
  double wd = 0.0;
  int order = 2, rows = 1, cols = 1;
  std::vector<Mat> F, X;
  std::vector<int> dims;
  Mat filt, v, mom;

  RefBlock(const ShampooOptions& opt, double weight_decay, int ord, int r, int c)
      : o(opt), wd(weight_decay), order(ord), rows(r), cols(c) {
    dims = order == 1 ? std::vector<int>{cols} : std::vector<int>{rows, cols};
    for (int d : dims) {
      F.emplace_back(static_cast<std::size_t>(d * d), 0.0);
      Mat id(static_cast<std::size_t>(d * d), 0.0);
      for (int i = 0; i < d; ++i) id[i * d + i] = 1.0;
      X.push_back(id);
    }
    const auto n = static_cast<std::size_t>(rows * cols);
    filt.assign(n, 0.0);
    v.assign(n, 0.0);
    mom.assign(n, 0.0);
  }

  Mat step(const Mat& g, const Mat& w, int t) {
    const std::size_t n = g.size();
    const double wf = o.beta2 == 1.0 ? 1.0 : 1.0 - o.beta2;
    // factors
    for (std::size_t k = 0; k < dims.size(); ++k) {
      const int d = dims[k];
      for (int i = 0; i < d; ++i)
        for (int j = 0; j < d; ++j) {
          double s = 0;
          if (order == 1)
            s = g[static_cast<std::size_t>(i)] * g[static_cast<std::size_t>(j)];
          else if (k == 0)
            for (int c = 0; c < cols; ++c) s += g[i * cols + c] * g[j * cols + c];
          else
            for (int r = 0; r < rows; ++r) s += g[r * cols + i] * g[r * cols + j];
          F[k][i * d + j] = o.beta2 * F[k][i * d + j] + wf * s;
        }
    }
    // grafting statistics (Adam)
    for (std::size_t i = 0; i < n; ++i) v[i] = o.grafting_beta2 * v[i] + (1 - o.grafting_beta2) * g[i] * g[i];
    // roots
    const int f = static_cast<int>(o.precondition_frequency);
    const int start = o.start_preconditioning_step == -1 ? f : static_cast<int>(o.start_preconditioning_step);
    if ((t % f == 0 && t > start) || t == start) {
      const double bc2 = o.use_bias_correction && o.beta2 < 1.0 ? 1.0 - std::pow(o.beta2, t) : 1.0;
      for (std::size_t k = 0; k < dims.size(); ++k) {
        Mat a = F[k];
        for (auto& x : a) x /= bc2;
        X[k] = ref_inv_root(a, dims[k], 2.0 * order, o.epsilon);
      }
    }
    // filtered gradient
    Mat gb(n);
    for (std::size_t i = 0; i < n; ++i) {
      filt[i] = o.beta1 * filt[i] + (1 - o.beta1) * g[i];
      gb[i] = filt[i] / (o.use_bias_correction ? 1.0 - std::pow(o.beta1, t) : 1.0);
    }
    Mat pg(n);
    const double bcg = 1.0 - std::pow(o.grafting_beta2, t);
    for (std::size_t i = 0; i < n; ++i) pg[i] = gb[i] / (std::sqrt(v[i] / bcg) + o.grafting_epsilon);
    Mat p;
    if (t < start) {
      p = pg;
    } else {
      p = order == 1 ? matmul(X[0], gb, cols, cols, 1)
                     : matmul(matmul(X[0], gb, rows, rows, cols), X[1], rows, cols, cols);
      const double s = nrm(pg) / (nrm(p) + 1e-16);
      for (auto& x : p) x *= s;
    }
    for (std::size_t i = 0; i < n; ++i) p[i] += wd * w[i];
    if (o.momentum != 0.0)
      for (std::size_t i = 0; i < n; ++i) {
        mom[i] = o.momentum * mom[i] + (1 - o.dampening) * p[i];
        p[i] = o.nesterov ? (1 - o.dampening) * p[i] + o.momentum * mom[i] : mom[i];
      }
    return p;
  }
};

// A block of a parameter as the test specifies it by hand: rows [r0, r0 + rows) x cols [c0, c0 + cols) of the
// parameter viewed as [.., ld] (order 1: elements [c0, c0 + cols) of the flattened parameter).
struct RefSpec {
  std::string param;
  int order, r0, rows, c0, cols, ld;
};

Mat gather(const Tensor& t, const RefSpec& b) {
  Mat m;
  for (int i = 0; i < b.rows; ++i)
    for (int j = 0; j < b.cols; ++j) m.push_back(t.item((b.r0 + i) * b.ld + b.c0 + j));
  return m;
}

OptimizerConfig base_cfg(double wd, std::vector<std::string> roles) {
  OptimizerConfig c;
  c.name = "shampoo";
  c.lr = 0.05;
  c.weight_decay = wd;
  c.decay_roles = std::move(roles);
  return c;
}

// Runs `steps` steps of Shampoo and of the fp64 reference on the same random gradients; returns the largest
// |difference| of the parameters relative to the largest |parameter|.
double compare_with_reference(ParameterSet& ps, const std::vector<RefSpec>& specs, const ShampooOptions& opt,
                              const OptimizerConfig& cfg, int steps, double lr) {
  Rng init(3, 1);
  std::map<std::string, Mat> ref;  // parameter values in fp64
  for (auto& p : ps.all()) {
    fill_normal(p.value, init);
    ref[p.name] = values(p.value);
  }
  std::vector<RefBlock> rb;
  for (const auto& s : specs) {
    const bool decay = decays(cfg, ps.get(s.param).role);
    rb.emplace_back(opt, decay ? cfg.weight_decay : 0.0, s.order, s.rows, s.cols);
  }
  Shampoo sh(cfg, opt, ps);
  Rng grads(4, 2);
  for (int t = 1; t <= steps; ++t) {
    for (auto& p : ps.all()) fill_normal(p.grad, grads, 0.5);
    // reference
    std::map<std::string, Mat> next = ref;
    for (std::size_t b = 0; b < specs.size(); ++b) {
      const RefSpec& s = specs[b];
      const Mat g = gather(ps.get(s.param).grad, s);
      Mat w;
      for (int i = 0; i < s.rows; ++i)
        for (int j = 0; j < s.cols; ++j)
          w.push_back(ref[s.param][static_cast<std::size_t>((s.r0 + i) * s.ld + s.c0 + j)]);
      const Mat p = rb[b].step(g, w, t);
      for (int i = 0; i < s.rows; ++i)
        for (int j = 0; j < s.cols; ++j)
          next[s.param][static_cast<std::size_t>((s.r0 + i) * s.ld + s.c0 + j)] -=
              lr * p[static_cast<std::size_t>(i * s.cols + j)];
    }
    ref = next;
    sh.step(ps, lr);
    EXPECT_EQ(sh.steps_taken(), t);
  }
  EXPECT_EQ(sh.report().failed_roots, 0);
  return max_rel_diff(ps, ref);
}

// ---- hand-checkable steps -------------------------------------------------------------------------------

TEST(Shampoo, MatchesFp64ReferenceWithGraftingMomentumAndDecay) {
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {3, 2}, DType::F32);
  ps.add("block.00/g", ParamRole::Gain, {4}, DType::F32);
  ShampooOptions o;
  o.beta2 = 0.99;  // exercises the EMA and its bias correction
  o.epsilon = 1e-2;
  o.precondition_frequency = 2;
  o.start_preconditioning_step = 2;  // step 1 uses the Adam grafting direction
  o.momentum = 0.5;
  o.dampening = 0.1;
  o.nesterov = true;
  o.merge_dims = false;
  const std::vector<RefSpec> specs = {{"block.00/w", 2, 0, 3, 0, 2, 2}, {"block.00/g", 1, 0, 1, 0, 4, 4}};
  const double err = compare_with_reference(ps, specs, o, base_cfg(0.1, {"hidden"}), 6, 0.05);
  EXPECT_LT(err, 2e-5);
}

TEST(Shampoo, MatchesFp64ReferenceWithBlocksAndMergedDims) {
  // max_preconditioner_dim 4 with merging: a [2, 2] -> one vector of 4; b [6, 3] -> blocks 4x3 and 2x3;
  // c [1, 5] -> vector of 5 -> blocks of 4 and 1.
  ParameterSet ps;
  ps.add("block.00/a", ParamRole::Hidden, {2, 2}, DType::F32);
  ps.add("block.00/b", ParamRole::Hidden, {6, 3}, DType::F32);
  ps.add("block.00/c", ParamRole::Embedding, {1, 5}, DType::F32);
  ShampooOptions o;  // reference defaults: beta2 = 1, precondition every step from step 1
  o.max_preconditioner_dim = 4;
  o.epsilon = 1e-3;  // well conditioned in f32 (rank-deficient factors with eps 1e-12 are not comparable)
  const std::vector<RefSpec> specs = {{"block.00/a", 1, 0, 1, 0, 4, 4},
                                      {"block.00/b", 2, 0, 4, 0, 3, 3},
                                      {"block.00/b", 2, 4, 2, 0, 3, 3},
                                      {"block.00/c", 1, 0, 1, 0, 4, 5},
                                      {"block.00/c", 1, 0, 1, 4, 1, 5}};
  const double err = compare_with_reference(ps, specs, o, base_cfg(0.1, {"hidden"}), 5, 0.05);
  EXPECT_LT(err, 2e-5);
  Shampoo sh(base_cfg(0.1, {"hidden"}), o, ps);
  std::vector<std::string> names;
  for (const auto& s : sh.state()) names.push_back(s.name);
  for (const char* want :
       {"block.00/a#0/factor_0", "block.00/a#0/inv_root_0", "block.00/b#0,0/factor_1",
        "block.00/b#1,0/inv_root_1", "block.00/c#1/filtered_grad", "block.00/c#0/grafting"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  EXPECT_EQ(std::count_if(names.begin(), names.end(),
                          [](const std::string& n) { return n.find("momentum") != std::string::npos; }),
            0);  // momentum off by default
}

TEST(Shampoo, NewtonRootMatchesTheReference) {
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {3, 2}, DType::F32);
  ShampooOptions o;
  o.epsilon = 1e-2;
  o.root_method = RootMethod::Newton;
  o.newton_tolerance = 1e-6;
  o.merge_dims = false;
  const std::vector<RefSpec> specs = {{"block.00/w", 2, 0, 3, 0, 2, 2}};
  EXPECT_LT(compare_with_reference(ps, specs, o, base_cfg(0.0, {}), 4, 0.05), 2e-4);
}

// ---- invariants
// ---------------------------------------------------------------------------------------------

Mat state_mat(Shampoo& sh, const std::string& name) {
  for (const auto& s : sh.state())
    if (s.name == name) {
      Mat m;
      for (std::int64_t i = 0; i < s.tensor.numel(); ++i) m.push_back(s.tensor.item(i));
      return m;
    }
  ADD_FAILURE() << "no state " << name;
  return {};
}

TEST(Shampoo, RootTimesRegularisedFactorIsIdentity) {
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {5, 3}, DType::F32);
  ps.add("block.00/g", ParamRole::Gain, {4}, DType::F32);
  ShampooOptions o;
  o.epsilon = 1e-3;
  o.merge_dims = false;
  Shampoo sh(base_cfg(0.0, {}), o, ps);
  Rng rng(11, 3);
  for (int t = 0; t < 10; ++t) {
    for (auto& p : ps.all()) fill_normal(p.grad, rng);
    sh.step(ps, 0.01);
  }
  struct Case {
    std::string block;
    int k, n;
    int p;
  };
  for (const Case& c :
       {Case{"block.00/w#0,0", 0, 5, 4}, Case{"block.00/w#0,0", 1, 3, 4}, Case{"block.00/g#0", 0, 4, 2}}) {
    const Mat f = state_mat(sh, cat(c.block, "/factor_", c.k));
    const Mat x = state_mat(sh, cat(c.block, "/inv_root_", c.k));
    Mat xp(static_cast<std::size_t>(c.n * c.n), 0.0);
    for (int i = 0; i < c.n; ++i) xp[i * c.n + i] = 1.0;
    for (int k = 0; k < c.p; ++k) xp = matmul(xp, x, c.n, c.n, c.n);
    Mat ridge = f;
    for (int i = 0; i < c.n; ++i) ridge[i * c.n + i] += o.epsilon;
    const Mat prod = matmul(xp, ridge, c.n, c.n, c.n);
    double err = 0;
    for (int i = 0; i < c.n; ++i)
      for (int j = 0; j < c.n; ++j) err = std::max(err, std::abs(prod[i * c.n + j] - (i == j ? 1.0 : 0.0)));
    EXPECT_LT(err, 1e-3) << c.block << " factor " << c.k;
  }
}

TEST(Shampoo, FailedRootRetriesInFp64ThenKeepsThePreviousRoot) {
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {3, 2}, DType::F32);
  ShampooOptions o;
  o.epsilon = 1e-3;
  o.merge_dims = false;
  Rng rng(12, 3);
  {
    Shampoo sh(base_cfg(0.0, {}), o, ps);
    fill_normal(ps.get("block.00/w").grad, rng);
    detail::fail_next_f32_eigh_for_testing(1);
    sh.step(ps, 0.01);
    EXPECT_EQ(sh.report().failed_roots, 0);  // the fp64 retry succeeded
  }
  o.retry_fp64 = false;
  Shampoo sh(base_cfg(0.0, {}), o, ps);
  fill_normal(ps.get("block.00/w").grad, rng);
  sh.step(ps, 0.01);
  const Mat x0 = state_mat(sh, "block.00/w#0,0/inv_root_0"), x1 = state_mat(sh, "block.00/w#0,0/inv_root_1");
  fill_normal(ps.get("block.00/w").grad, rng);
  detail::fail_next_f32_eigh_for_testing(1);  // the left factor's root fails
  sh.step(ps, 0.01);
  EXPECT_EQ(sh.report().failed_roots, 1);
  EXPECT_EQ(state_mat(sh, "block.00/w#0,0/inv_root_0"), x0);  // kept
  EXPECT_NE(state_mat(sh, "block.00/w#0,0/inv_root_1"), x1);  // recomputed
  // A non-finite gradient poisons both factors: both roots fail and stay finite.
  ps.get("block.00/w").grad.data<float>()[0] = std::nanf("");
  sh.step(ps, 0.01);
  EXPECT_EQ(sh.report().failed_roots, 3);
  for (const char* n : {"block.00/w#0,0/inv_root_0", "block.00/w#0,0/inv_root_1"})
    for (double v : state_mat(sh, n)) EXPECT_TRUE(std::isfinite(v)) << n;
}

// The roots of a step's blocks are spread over the host threads when they are large (compute_roots):
// every state tensor and the updated weights must be the same bits at 1, 2 and 3 threads.
TEST(Shampoo, RootsAreBitwiseTheSameAtAnyThreadCount) {
#ifdef QUOPT_HOST_LOOPS_OPENMP
  const auto run = [](int threads) {
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    ParameterSet ps;
    ps.add("block.00/w", ParamRole::Hidden, {160, 144}, DType::F32);
    ps.add("block.01/w", ParamRole::Hidden, {96, 200}, DType::F32);
    ShampooOptions o;
    o.merge_dims = false;
    Shampoo sh(base_cfg(0.0, {}), o, ps);
    Rng rng(21, 3);
    for (int step = 0; step < 2; ++step) {
      for (const char* n : {"block.00/w", "block.01/w"}) fill_normal(ps.get(n).grad, rng);
      sh.step(ps, 0.01);
    }
    std::vector<Tensor> out;
    for (auto& [name, t] : sh.state()) out.push_back(t.clone());
    for (const char* n : {"block.00/w", "block.01/w"}) out.push_back(ps.get(n).value.clone());
    return out;
  };
  const int saved = omp_get_max_threads();
  const int saved_blas = openblas_get_num_threads();
  const std::vector<Tensor> ref = run(1);
  for (int threads : {2, 3}) {
    const std::vector<Tensor> got = run(threads);
    ASSERT_EQ(got.size(), ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i)
      EXPECT_TRUE(got[i].nbytes() == ref[i].nbytes() &&
                  std::memcmp(got[i].raw(), ref[i].raw(), ref[i].nbytes()) == 0)
          << "state/weight " << i << " differs at " << threads << " threads";
  }
  omp_set_num_threads(saved);
  openblas_set_num_threads(saved_blas);
#else
  GTEST_SKIP() << "host loops run through Kokkos' own threaded backend in this build";
#endif
}

TEST(Shampoo, ReportsTimingsBalanceAndStateBytes) {
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {6, 4}, DType::F32);
  ShampooOptions o;
  o.merge_dims = false;
  Shampoo sh(base_cfg(0.0, {}), o, ps);
  Rng rng(13, 3);
  fill_normal(ps.get("block.00/w").grad, rng);
  sh.step(ps, 0.01);
  const OptimizerReport r = sh.report();
  EXPECT_EQ(r.balance, 1.0);
  // factors 6x6 + 4x4, roots the same, filtered gradient and grafting state 6x4: f32.
  EXPECT_EQ(r.state_bytes, 4 * (2 * (36 + 16) + 2 * 24));
  EXPECT_GT(r.root_seconds, 0.0);
  EXPECT_GT(r.precond_seconds, 0.0);
  EXPECT_GE(r.update_seconds, 0.0);
  EXPECT_EQ(r.comm_seconds, 0.0);
}

// ---- blocking ------------------------------------------------------------------------------------------

TEST(Blocking, MergeSmallDimsAsTheReferenceDocstrings) {
  // Examples from facebookresearch/optimizers shampoo_utils.merge_small_dims (target dimensionality 1).
  EXPECT_EQ(merge_small_dims({1, 2, 5, 1}, 10), (Shape{10}));
  EXPECT_EQ(merge_small_dims({1, 2, 5, 1}, 1), (Shape{2, 5}));
  EXPECT_EQ(merge_small_dims({32, 3, 64, 64}, 8192), (Shape{96, 4096}));
  EXPECT_EQ(merge_small_dims({1, 1, 1}, 8), (Shape{1}));
  EXPECT_EQ(merge_small_dims({3, 0, 2}, 8), (Shape{0}));
  EXPECT_EQ(merge_small_dims({32, 32}, 1024), (Shape{1024}));
  EXPECT_EQ(merge_small_dims({32, 128}, 1024), (Shape{32, 128}));
}

TEST(Blocking, CoversEveryElementExactlyOnce) {
  struct Case {
    Shape shape;
    std::int64_t max_dim;
    bool merge;
    std::size_t blocks;
  };
  for (const Case& c :
       {Case{{7, 5}, 3, false, 6}, Case{{7, 5}, 3, true, 6}, Case{{64, 32}, 1024, false, 1},
        Case{{64, 32}, 1024, true, 1}, Case{{10}, 4, true, 3}, Case{{1, 9}, 4, true, 3},
        Case{{9, 1}, 100, false, 1}, Case{{5, 8}, 1, false, 40}, Case{{4, 6}, 100, true, 1}}) {
    const std::vector<Block> blocks = make_blocks("block.01/x", c.shape, c.max_dim, c.merge);
    EXPECT_EQ(blocks.size(), c.blocks) << shape_str(c.shape) << " max " << c.max_dim << " merge " << c.merge;
    Tensor full = Tensor::zeros(c.shape);
    std::vector<std::string> names;
    for (const Block& b : blocks) {
      EXPECT_LE(b.rows, c.max_dim);
      EXPECT_LE(b.cols, c.max_dim);
      Tensor ones = Tensor::empty(b.shape());
      for (std::int64_t i = 0; i < ones.numel(); ++i) ones.data<float>()[i] = 1.0f;
      add_block_in(full, b, ones, 1.0);
      names.push_back(b.name);
    }
    for (std::int64_t i = 0; i < full.numel(); ++i)
      EXPECT_EQ(full.data<float>()[i], 1.0f) << shape_str(c.shape) << " element " << i;
    std::sort(names.begin(), names.end());
    EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
  }
  // Block contents: copy_block_out reads exactly the block's elements.
  Tensor full = Tensor::empty({7, 5});
  for (std::int64_t i = 0; i < 35; ++i) full.data<float>()[i] = static_cast<float>(i);
  const std::vector<Block> blocks = make_blocks("block.01/x", {7, 5}, 3, false);
  EXPECT_EQ(blocks[3].name, "block.01/x#1,1");
  EXPECT_EQ(blocks[3].shape(), (Shape{3, 2}));
  Tensor b = Tensor::empty(blocks[3].shape());
  copy_block_out(full, blocks[3], b);
  EXPECT_EQ(b.data<float>()[0], 18.0f);  // row 3, column 3
  EXPECT_EQ(b.data<float>()[5], 29.0f);  // row 5, column 4
  const std::vector<Block> vec = make_blocks("block.01/v", {1, 9}, 4, true);
  EXPECT_EQ(vec[2].name, "block.01/v#2");
  EXPECT_EQ(vec[2].shape(), (Shape{1}));
}

TEST(Blocking, RejectsMoreThanTwoDimensionsAndBadSizes) {
  EXPECT_THROW(make_blocks("block.00/x", {3, 4, 5}, 2, true), Error);
  EXPECT_THROW(make_blocks("block.00/x", {3, 4}, 0, true), Error);
}

// ---- config --------------------------------------------------------------------------------------------

const Schema& shampoo_schema() {
  static const Schema s = [] {
    Schema x;
    add_shampoo_keys(x);
    return x;
  }();
  return s;
}

TEST(Shampoo, ConfigKeysDefaultsAndErrors) {
  const Schema& s = shampoo_schema();
  const ShampooOptions d = shampoo_options(Config::defaults(s));
  const ShampooOptions want;
  EXPECT_EQ(d.beta1, want.beta1);
  EXPECT_EQ(d.beta2, want.beta2);
  EXPECT_EQ(d.epsilon, want.epsilon);
  EXPECT_EQ(d.max_preconditioner_dim, want.max_preconditioner_dim);
  EXPECT_EQ(d.merge_dims, want.merge_dims);
  EXPECT_EQ(d.precondition_frequency, want.precondition_frequency);
  EXPECT_EQ(d.start_preconditioning_step, want.start_preconditioning_step);
  EXPECT_EQ(d.grafting, want.grafting);
  EXPECT_EQ(d.grafting_beta2, want.grafting_beta2);
  EXPECT_EQ(d.grafting_epsilon, want.grafting_epsilon);
  EXPECT_EQ(d.momentum, want.momentum);
  EXPECT_EQ(d.root_method, want.root_method);
  EXPECT_EQ(d.newton_max_iterations, want.newton_max_iterations);
  // The reference's values, independently of the struct (DistributedShampoo.__init__, README Example 4).
  EXPECT_EQ(want.beta1, 0.9);
  EXPECT_EQ(want.beta2, 1.0);
  EXPECT_EQ(want.epsilon, 1e-12);
  EXPECT_EQ(want.max_preconditioner_dim, 1024);
  EXPECT_EQ(want.precondition_frequency, 1);
  EXPECT_EQ(want.start_preconditioning_step, -1);
  EXPECT_EQ(want.grafting, GraftingType::Adam);
  EXPECT_EQ(want.grafting_beta2, 0.999);
  EXPECT_EQ(want.grafting_epsilon, 1e-8);

  const Config c =
      Config::from_toml_string(s,
                               "[optimizer.shampoo]\nbeta2 = 0.95\ngrafting = \"rmsprop\"\nroot_method = "
                               "\"newton\"\nprecondition_frequency = 10\n",
                               "t.toml");
  const ShampooOptions o = shampoo_options(c);
  EXPECT_EQ(o.beta2, 0.95);
  EXPECT_EQ(o.grafting, GraftingType::RMSprop);
  EXPECT_EQ(o.root_method, RootMethod::Newton);
  EXPECT_EQ(o.precondition_frequency, 10);
  expect_rejected(
      s, "shampoo",
      {"beta1 = 1.0", "epsilon = 0.0", "grafting = \"adamw\"", "root_method = \"svd\"",
       "max_preconditioner_dim = 0", "start_preconditioning_step = -2", "precondition_frequncy = 3"},
      12);
  expect_docs_cite(s, "facebookresearch/optimizers");

  // A cross-key violation is reported when the optimizer is built.
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {3, 2}, DType::F32);
  ShampooOptions bad;
  bad.precondition_frequency = 10;
  bad.start_preconditioning_step = 5;
  try {
    Shampoo sh(base_cfg(0.0, {}), bad, ps);
    ADD_FAILURE() << "accepted start_preconditioning_step < precondition_frequency";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.shampoo.start_preconditioning_step"), std::string::npos);
  }
  ParameterSet p64;
  p64.add("block.00/w", ParamRole::Hidden, {3, 2}, DType::F64);
  EXPECT_THROW(Shampoo(base_cfg(0.0, {}), ShampooOptions{}, p64), Error);
}

TEST(Shampoo, ShippedTomlHasEveryKeyAtItsDefault) {
  const Config c = load_shipped_optimizer_toml("shampoo");
  EXPECT_EQ(c.get_float("optimizer.lr"), 1e-3);  // README Example 4: AdamW's lr, grafted
  expect_every_key_set_at_default(c, "shampoo");
}

// ---- training ------------------------------------------------------------------------------------------

TEST(Shampoo, TrainsTinyModelOnPermutationTask) {
  Olmo2 model(tiny_model());
  model.init(5);
  ShampooOptions o;
  // Test choices (speed): roots every 10 steps (as the README examples, which use 100) and blocks of at most
  // 128, so that no tiny matrix is merged into a 1024-long vector with a 1024 x 1024 factor.
  o.precondition_frequency = 10;
  o.max_preconditioner_dim = 128;
  Shampoo sh(base_cfg(0.0, {"hidden"}), o, model.params());
  const double loss = train_tiny(sh, model, 120, 0.01);
  std::printf("shampoo: tiny model loss after 120 steps %.4f (ln 64 = %.4f)\n", loss, std::log(64.0));
  EXPECT_LT(loss, 0.5);
  EXPECT_EQ(sh.report().failed_roots, 0);
}

}  // namespace
}  // namespace quopt
