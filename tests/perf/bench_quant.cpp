// Throughput of the host quantization kernels on a large f32 tensor, as GB/s of bytes read + written
// and as a ratio to a plain memcpy of the same tensor measured in the same run (1.0 = as fast as
// copying; the kernels read the tensor once and write it once, so a memory-bound kernel approaches 1).
//   usage: bench_quant [rows=4096] [cols=4096] [repetitions=10]
// Prints the best time of the repetitions for each kernel (after one warm-up call).
#include <Kokkos_Core.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "core/rng.hpp"
#include "core/tensor.hpp"
#include "core/timer.hpp"
#include "kernels/quant_ops.hpp"

namespace {

double best_seconds(int reps, const std::function<void()>& f) {
  f();  // warm-up: first touch of the outputs, caches
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const double t0 = quopt::wall_seconds();
    f();
    best = std::min(best, quopt::wall_seconds() - t0);
  }
  return best;
}

std::int64_t arg(int argc, char** argv, int i, std::int64_t def) {
  if (argc <= i) return def;
  char* end = nullptr;
  const long long v = std::strtoll(argv[i], &end, 10);
  if (end == argv[i] || *end != '\0' || v <= 0) {
    std::fprintf(stderr,
                 "bench_quant: argument %d '%s' is not a positive integer\nusage: bench_quant [rows=4096] "
                 "[cols=4096] [repetitions=10]\n",
                 i, argv[i]);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  // Kokkos only: the kernels need no MPI (a plain executable, runnable without mpiexec).
  Kokkos::ScopeGuard kokkos(argc, argv);
  using quopt::DType;
  using quopt::Tensor;
  const std::int64_t rows = arg(argc, argv, 1, 4096), cols = arg(argc, argv, 2, 4096);
  const int reps = static_cast<int>(arg(argc, argv, 3, 10));
  if (cols % quopt::kernels::kHadamardBlock != 0) {
    std::fprintf(stderr, "bench_quant: cols = %lld must be a multiple of %lld (the Hadamard block)\n",
                 static_cast<long long>(cols), static_cast<long long>(quopt::kernels::kHadamardBlock));
    return 2;
  }
  Tensor x = Tensor::empty({rows, cols}, DType::F32);
  quopt::Rng rng(1, 2);
  float* px = x.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) px[i] = static_cast<float>(rng.uniform() * 2.0 - 1.0);
  Tensor y = Tensor::empty({rows, cols}, DType::F32);
  Tensor s_row = Tensor::empty({rows}, DType::F32);
  Tensor s_grp = Tensor::empty({rows, cols / 128}, DType::F32);
  Tensor mask = Tensor::empty({rows, cols}, DType::F32), none;
  const double bytes = static_cast<double>(x.nbytes());

  const double t_copy = best_seconds(reps, [&] { std::memcpy(y.raw(), x.raw(), x.nbytes()); });
  const double copy_gbs = 2.0 * bytes / t_copy / 1e9;
  std::printf("bench_quant: f32 [%lld, %lld] (%.1f MiB), best of %d, Kokkos host space %s\n",
              static_cast<long long>(rows), static_cast<long long>(cols), bytes / (1 << 20), reps,
              Kokkos::DefaultHostExecutionSpace::name());
  std::printf("  %-34s %9s %9s %8s\n", "kernel", "ms", "GB/s", "/memcpy");
  std::printf("  %-34s %9.3f %9.2f %8.3f\n", "memcpy (read + write)", t_copy * 1e3, copy_gbs, 1.0);

  auto report = [&](const char* name, double moved_bytes, const std::function<void()>& f) {
    const double t = best_seconds(reps, f);
    const double gbs = moved_bytes / t / 1e9;
    std::printf("  %-34s %9.3f %9.2f %8.3f\n", name, t * 1e3, gbs, gbs / copy_gbs);
  };
  report("rtn_quantize w4 per row", 2.0 * bytes, [&] { quopt::kernels::rtn_quantize(x, 4, 0, y, s_row); });
  report("rtn_quantize w4 group 128", 2.0 * bytes,
         [&] { quopt::kernels::rtn_quantize(x, 4, 128, y, s_grp); });
  report("hadamard_transform block 128", 2.0 * bytes,
         [&] { quopt::kernels::hadamard_transform(x, quopt::kernels::kHadamardBlock, y); });
  report("quest_quantize 4 bit + mask", 3.0 * bytes, [&] {
    quopt::kernels::quest_quantize(x, 4, quopt::kernels::quest_default_trust(4), y, mask, none);
  });
  std::printf(
      "reproduce: cmake --preset cpu && cmake --build build/cpu --target bench_quant && "
      "build/cpu/tests/perf/bench_quant %lld %lld %d\n",
      static_cast<long long>(rows), static_cast<long long>(cols), reps);
  return 0;
}
