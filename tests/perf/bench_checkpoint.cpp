// Checkpoint write bandwidth: a checkpoint (weights + AdamW state + curves, parallel HDF5, per-dataset
// checksums, temporary name + rename) as a ratio to a plain fwrite of the same number of bytes, both
// fsync'd, in interleaved rounds (the order alternates each round) on the same file system, so load
// on a shared machine hits both alike. Prints each round's ratio and the median, min and max.
//   mpirun -np 1 build/cpu/tests/perf/bench_checkpoint [--rounds N] [--dir DIR] [MODEL.toml ...]
//   mpirun -np 2 --oversubscribe build/cpu/tests/perf/bench_checkpoint ...
// Deleting is not timed on either side: each removes its file after its timing, so a checkpoint never
// pays for rotating out an older one (an unlink of a 126 MB file costs 30-50 ms on ext4 with discard;
// that is the file system's price for checkpoint.keep, not the writer's).
// Default models: inputs/models/olmo2-small.toml and olmo2-50m.toml (relative to the current directory).
// With several ranks each rank owns a pipeline stage and writes its part; the plain write is rank 0's
// (the bandwidth a single writer gets).
#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/runtime.hpp"
#include "core/timer.hpp"
#include "io/checkpoint.hpp"
#include "io/config.hpp"
#include "io/run_config.hpp"
#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "parallel/grid.hpp"

namespace {

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  QUOPT_CHECK(fd >= 0, "cannot open ", path, " to fsync it");
  ::fsync(fd);
  ::close(fd);
}

// fwrite of `bytes` bytes in 64 MiB pieces, then fsync; returns seconds.
double plain_write(const std::string& path, double bytes) {
  static std::vector<char> buf(std::size_t{64} << 20, 1);
  const double t0 = quopt::wall_seconds();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  QUOPT_CHECK(f != nullptr, "cannot create ", path);
  for (double left = bytes; left > 0; left -= static_cast<double>(buf.size()))
    std::fwrite(buf.data(), 1, static_cast<std::size_t>(std::min<double>(left, static_cast<double>(buf.size()))),
                f);
  std::fflush(f);
  ::fsync(::fileno(f));
  std::fclose(f);
  const double t = quopt::wall_seconds() - t0;
  std::filesystem::remove(path);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  quopt::Runtime rt(argc, argv);
  std::string dir = "/tmp/quopt-bench-ckpt";
  int rounds = 5;
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::stoi(argv[++i]));
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      models.push_back(a);
    }
  }
  if (models.empty()) models = {"inputs/models/olmo2-small.toml", "inputs/models/olmo2-50m.toml"};
  quopt::ProcessGrid grid(MPI_COMM_WORLD, rt.size());
  if (rt.rank() == 0) {
    std::filesystem::remove_all(dir / std::filesystem::path("checkpoints"));  // a crashed run's leftovers
    std::filesystem::create_directories(dir);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  std::int64_t step = 0;  // increasing across models: save_checkpoint keeps only the newest step
  for (const auto& model_file : models) {
    const quopt::RunConfig rc = quopt::make_run_config(quopt::Config::load(quopt::quopt_schema(), model_file));
    const quopt::ModelConfig& m = rc.model;
    QUOPT_CHECK(m.n_layers >= rt.size(), model_file, " has ", m.n_layers, " layers, fewer than the ", rt.size(),
                " ranks (one pipeline stage each)");
    quopt::Olmo2 model(m, quopt::DType::F32, quopt::stage_spec(m, grid.stage(), grid.stages()));
    model.init(1);
    quopt::OptimizerConfig oc;  // AdamW: two state tensors per parameter
    auto opt = quopt::make_optimizer(oc, model.params());
    quopt::RunMetrics metrics;
    std::vector<double> ratio;
    double bytes = 0.0, ckpt_s = 0.0, plain_s = 0.0;
    for (int r = 0; r < rounds; ++r) {
      double t_ckpt = 0.0, t_plain = 0.0;
      // Each timed write starts with no dirty pages of earlier writes pending (sync, untimed), so
      // neither side pays for the other's write-back.
      auto checkpoint = [&] {
        ::sync();
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = quopt::wall_seconds();
        const std::string path = quopt::save_checkpoint(dir, grid, model.params(), *opt, metrics,
                                                        quopt::CheckpointMeta{++step, "bench", ""}, 1);
        if (rt.rank() == 0) fsync_path(path);
        MPI_Barrier(MPI_COMM_WORLD);
        t_ckpt = quopt::wall_seconds() - t0;
        if (rt.rank() == 0) {
          bytes = static_cast<double>(std::filesystem::file_size(path));
          std::filesystem::remove(path);
        }
        MPI_Barrier(MPI_COMM_WORLD);
      };
      auto plain = [&] {
        ::sync();
        if (rt.rank() == 0) t_plain = plain_write(dir + "/plain.bin", bytes);
        MPI_Barrier(MPI_COMM_WORLD);
      };
      if (r == 0) checkpoint();  // learns the size; round 0 is also the file-system warm-up
      if (r % 2 == 0) {
        checkpoint();
        plain();
      } else {
        plain();
        checkpoint();
      }
      ratio.push_back(t_plain / t_ckpt);
      ckpt_s += t_ckpt;
      plain_s += t_plain;
    }
    if (rt.rank() == 0) {
      std::vector<double> sorted = ratio;
      std::sort(sorted.begin(), sorted.end());
      std::printf("%s: %lld parameters + AdamW state, %.1f MB, %d rank(s), %d interleaved rounds\n", m.name.c_str(),
                  static_cast<long long>(m.total_params()), bytes / 1e6, rt.size(), rounds);
      std::printf("  checkpoint %.1f MB/s, plain fwrite+fsync %.1f MB/s (means)\n", bytes * rounds / ckpt_s / 1e6,
                  bytes * rounds / plain_s / 1e6);
      std::printf("  ratio per round:");
      for (double x : ratio) std::printf(" %.3f", x);
      std::printf("\n  ratio (checkpoint bandwidth / plain bandwidth): median %.3f, min %.3f, max %.3f\n",
                  sorted[sorted.size() / 2], sorted.front(), sorted.back());
      std::fflush(stdout);
    }
  }
  if (rt.rank() == 0) {  // only what it wrote; DIR itself if that leaves it empty
    std::filesystem::remove_all(dir / std::filesystem::path("checkpoints"));
    std::error_code ec;
    std::filesystem::remove(dir, ec);
  }
  return 0;
}
