// Checkpoint write bandwidth: a checkpoint of a ~100M-parameter model (weights + AdamW state) written
// through quopt's parallel HDF5 path, as a ratio to a plain sequential write (fwrite + fsync) of the same
// number of bytes measured in the same run, on the same file system.
//   mpirun -np 1 build/cpu/tests/perf/bench_checkpoint [DIR]
//   mpirun -np 2 --oversubscribe build/cpu/tests/perf/bench_checkpoint [DIR]
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/runtime.hpp"
#include "core/timer.hpp"
#include "io/checkpoint.hpp"
#include "io/run_config.hpp"
#include "kernels/ops.hpp"
#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "parallel/grid.hpp"

int main(int argc, char** argv) {
  quopt::Runtime rt(argc, argv);
  const std::string dir = argc > 1 ? argv[1] : "/tmp/quopt-bench-ckpt";
  quopt::ModelConfig m;  // ~100M parameters: d 768, 12 layers, vocab 32000 (GPT-2-small-like shape)
  m.d_model = 768;
  m.n_layers = 12;
  m.n_heads = 12;
  m.n_kv_heads = 12;
  m.vocab_size = 32000;
  m.seq_len = 128;
  // Pipeline stages = ranks, so every rank owns (and writes) a part of the model.
  quopt::ProcessGrid grid(MPI_COMM_WORLD, rt.size());
  quopt::Olmo2 model(m, quopt::DType::F32, quopt::stage_spec(m, grid.stage(), grid.stages()));
  model.init(1);
  quopt::OptimizerConfig oc;
  auto opt = quopt::make_optimizer(oc, model.params());
  quopt::RunMetrics metrics;
  if (rt.rank() == 0) std::filesystem::create_directories(dir);
  MPI_Barrier(MPI_COMM_WORLD);

  double t0 = quopt::wall_seconds();
  const std::string path =
      quopt::save_checkpoint(dir, grid, model.params(), *opt, metrics, quopt::CheckpointMeta{1, "bench", ""}, 1);
  MPI_Barrier(MPI_COMM_WORLD);
  const double t_h5 = quopt::wall_seconds() - t0;
  const double bytes = static_cast<double>(std::filesystem::file_size(path));

  // Plain sequential write of the same bytes by rank 0 (the baseline a single writer gets).
  double t_plain = 0.0;
  if (rt.rank() == 0) {
    std::vector<char> buf(64 << 20, 1);
    const std::string plain = dir + "/plain.bin";
    t0 = quopt::wall_seconds();
    std::FILE* f = std::fopen(plain.c_str(), "wb");
    for (double left = bytes; left > 0; left -= static_cast<double>(buf.size()))
      std::fwrite(buf.data(), 1,
                  static_cast<std::size_t>(std::min<double>(left, static_cast<double>(buf.size()))), f);
    std::fflush(f);
    fsync(fileno(f));
    std::fclose(f);
    t_plain = quopt::wall_seconds() - t0;
    std::filesystem::remove(plain);
    std::printf("checkpoint of %lld parameters (+ AdamW state), %.1f MB, %d rank(s)\n",
                static_cast<long long>(m.total_params()), bytes / 1e6, rt.size());
    std::printf("  HDF5 checkpoint write: %.3f s, %.1f MB/s\n", t_h5, bytes / t_h5 / 1e6);
    std::printf("  plain sequential write: %.3f s, %.1f MB/s\n", t_plain, bytes / t_plain / 1e6);
    std::printf("  ratio (checkpoint bandwidth / plain bandwidth): %.3f\n", t_plain / t_h5);
    std::filesystem::remove_all(dir);
  }
  return 0;
}
