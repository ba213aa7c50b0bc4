// Host kernels give bit-identical results whatever the number of host-loop threads
// (kernels/host/host_policy.hpp): every op of the training step, on shapes large enough that its loop
// runs in parallel, at 1, 2 and 3 threads. (ctest runs tests with OMP_NUM_THREADS=1; this test sets
// the count itself.)
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <vector>

#include "core/rng.hpp"
#include "kernels/host/host_policy.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

namespace k = kernels;

Tensor random(const Shape& s, std::uint64_t seed, double scale = 1.0) {
  Tensor t = Tensor::empty(s, DType::F32);
  Rng rng(seed, 11);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(scale * rng.normal());
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Runs `op` (which fills its outputs from fresh inputs each time) at 1, 2 and 3 threads and checks that
// every output is bitwise the same as at 1 thread.
void expect_thread_invariant(const char* what, const std::function<std::vector<Tensor>()>& op) {
#ifdef QUOPT_HOST_LOOPS_OPENMP
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<Tensor> ref = op();
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    const std::vector<Tensor> got = op();
    ASSERT_EQ(got.size(), ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i)
      EXPECT_TRUE(same_bits(got[i], ref[i])) << what << ": output " << i << " differs at " << threads << " threads";
  }
  omp_set_num_threads(saved);
#else
  (void)what;
  (void)op;
  GTEST_SKIP() << "host loops run through Kokkos' own threaded backend in this build";
#endif
}

TEST(KernelThreads, LossAttentionNormsAndElementwiseAreBitwiseThreadInvariant) {
  const std::int64_t B = 2, T = 256, H = 4, Hkv = 2, D = 32, C = H * D, N = B * T, V = 1000, F = 4 * C;
  const Tensor logits = random({N, V}, 1, 3.0);
  Tensor targets = Tensor::empty({N}, DType::I32);
  for (std::int64_t i = 0; i < N; ++i) targets.data<std::int32_t>()[i] = static_cast<std::int32_t>((i * 37) % V);
  expect_thread_invariant("cross_entropy", [&] {
    Tensor loss = Tensor::empty({N}), lse = Tensor::empty({N}), dl = Tensor::empty({N, V});
    const double sum = k::cross_entropy_forward(logits, targets, 1e-4, loss, lse);
    k::cross_entropy_backward(logits, targets, lse, 1e-4, 1.0 / N, dl);
    Tensor s = Tensor::empty({1}, DType::F64);
    s.data<double>()[0] = sum;
    return std::vector<Tensor>{loss, lse, dl, s};
  });
  const Tensor q = random({B, T, H, D}, 2), kk = random({B, T, Hkv, D}, 3), v = random({B, T, Hkv, D}, 4);
  const Tensor dout = random({B, T, H, D}, 5);
  expect_thread_invariant("attention", [&] {
    Tensor out = Tensor::empty({B, T, H, D}), lse = Tensor::empty({B, H, T});
    k::attention_forward(q, kk, v, out, lse);
    Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(kk.shape()), dv = Tensor::empty(v.shape());
    k::attention_backward(dout, q, kk, v, out, lse, dq, dk, dv);
    return std::vector<Tensor>{out, lse, dq, dk, dv};
  });
  const Tensor x = random({N, C}, 6), w = random({C}, 7), dy = random({N, C}, 8);
  expect_thread_invariant("rmsnorm", [&] {
    Tensor y = Tensor::empty({N, C}), rstd = Tensor::empty({N}), dx = Tensor::empty({N, C});
    Tensor dw = Tensor::zeros({C});
    k::rmsnorm_forward(x, w, 1e-6, y, rstd);
    k::rmsnorm_backward(dy, x, w, rstd, dx, dw);
    return std::vector<Tensor>{y, rstd, dx, dw};
  });
  expect_thread_invariant("rope", [&] {
    Tensor a = q.clone();
    k::rope_forward(a, 500000.0);
    Tensor b = a.clone();
    k::rope_backward(b, 500000.0);
    return std::vector<Tensor>{a, b};
  });
  const Tensor u = random({N, F}, 9), g = random({N, F}, 10), du = random({N, F}, 11);
  expect_thread_invariant("mlp and elementwise", [&] {
    Tensor a = Tensor::empty({N, F}), da = Tensor::empty({N, F}), dg = Tensor::empty({N, F});
    Tensor s = Tensor::empty({N, F}), sum = Tensor::empty({N, F});
    k::relu2_forward(u, a);
    k::relu2_backward(du, u, da);
    k::swiglu_forward(g, u, s);
    k::swiglu_backward(du, g, u, dg, sum);
    k::add(a, s, s);
    k::axpy(0.5, u, s);
    Tensor ss = Tensor::empty({1}, DType::F64);
    ss.data<double>()[0] = k::sum_squares(s);
    return std::vector<Tensor>{a, da, dg, sum, s, ss};
  });
  Tensor tokens = Tensor::empty({N}, DType::I32);
  for (std::int64_t i = 0; i < N; ++i) tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>((i * 7) % 50);
  const Tensor table = random({50, C}, 12);
  expect_thread_invariant("embedding and adamw", [&] {
    Tensor e = Tensor::empty({N, C}), dt = Tensor::zeros({50, C});
    k::embedding_forward(tokens, table, e);
    k::embedding_backward(tokens, dy, dt);
    Tensor p = x.clone(), m = Tensor::zeros(x.shape()), vv = Tensor::zeros(x.shape());
    k::AdamWHyper h;
    h.lr = 1e-3;
    h.weight_decay = 0.1;
    k::adamw_update(p, dy, m, vv, h);
    return std::vector<Tensor>{e, dt, p, m, vv};
  });
}

}  // namespace
}  // namespace quopt
