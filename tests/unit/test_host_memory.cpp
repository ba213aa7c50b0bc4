// core/host_memory.hpp: after its first steps, a training step's forward and backward reuse the
// memory the previous step freed instead of page-faulting fresh memory in (counted with getrusage's
// minor faults; the run's activations are a few MB, blocks of 256 KiB to 1 MiB, the sizes glibc
// would otherwise return to the kernel).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdint>

#include "core/rng.hpp"
#include "model/olmo2.hpp"

namespace quopt {
namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

TEST(HostMemory, SteadyStateStepsReuseFreedMemory) {
#if defined(__SANITIZE_ADDRESS__)
  // The debug preset's AddressSanitizer replaces glibc's malloc and quarantines freed memory (never
  // handed out again at once, to catch use after free), so the reuse this test measures cannot happen.
  GTEST_SKIP() << "under AddressSanitizer freed memory is quarantined, not reused";
#endif
  ModelConfig cfg;
  cfg.d_model = 128;
  cfg.n_layers = 2;
  cfg.n_heads = 2;
  cfg.n_kv_heads = 2;
  cfg.vocab_size = 512;
  cfg.seq_len = 128;
  Olmo2 model(cfg);
  model.init(1);
  const std::int64_t B = 4, T = 128;  // activations [512, 128] = 256 KiB, MLP [512, 512] = 1 MiB
  Tensor tokens = Tensor::empty({B, T}, DType::I32), targets = Tensor::empty({B, T}, DType::I32);
  Rng rng(2, 2);
  for (std::int64_t i = 0; i < B * T; ++i) {
    tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(512));
    targets.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(512));
  }
  const double dscale = 1.0 / static_cast<double>(B * T);
  auto step = [&] {
    Activations act;
    act.head_dscale = dscale;
    model.forward(tokens, targets, act);
    model.backward(act, dscale);
  };
  step();
  step();
  const long before = minor_faults();
  for (int i = 0; i < 3; ++i) step();
  const long per_step = (minor_faults() - before) / 3;
  // With glibc's default thresholds this step faults about 580 pages in (its blocks of 256 KiB to
  // 1 MiB go back to the kernel on free and come back zeroed); reusing the freed heap it faults none.
  EXPECT_LT(per_step, 200) << "minor page faults per steady-state step";
}

}  // namespace
}  // namespace quopt
