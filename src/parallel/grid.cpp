#include "parallel/grid.hpp"

#include "core/error.hpp"

namespace quopt {

ProcessGrid::ProcessGrid(MPI_Comm world, int stages) : world_(world), stages_(stages) {
  MPI_Comm_rank(world, &rank_);
  MPI_Comm_size(world, &size_);
  QUOPT_CHECK(stages >= 1, "parallel.pipeline_stages must be >= 1, got ", stages);
  QUOPT_CHECK(size_ % stages == 0, "the number of ranks (", size_,
              ") is not a multiple of parallel.pipeline_stages (", stages,
              "): the data-parallel size is ranks / stages; launch a multiple of ", stages,
              " ranks or change parallel.pipeline_stages");
  replicas_ = size_ / stages;
  stage_ = rank_ % stages;
  replica_ = rank_ / stages;
  MPI_Comm_split(world, replica_, stage_, &pipe_);
  MPI_Comm_split(world, stage_, replica_, &data_);
  const bool end = stages > 1 && (stage_ == 0 || stage_ == stages - 1);
  MPI_Comm_split(world, end ? replica_ : MPI_UNDEFINED, stage_, &ends_);
}

ProcessGrid::~ProcessGrid() {
  for (MPI_Comm* c : {&pipe_, &data_, &ends_})
    if (*c != MPI_COMM_NULL) MPI_Comm_free(c);
}

StageSpec stage_spec(const ModelConfig& m, int stage, int stages) {
  QUOPT_CHECK(stages <= m.n_layers, "parallel.pipeline_stages = ", stages,
              " exceeds model.n_layers = ", m.n_layers, "; every stage needs at least one block");
  const std::int64_t base = m.n_layers / stages, extra = m.n_layers % stages;
  StageSpec s;
  s.first_block = stage * base + std::min<std::int64_t>(stage, extra);
  s.last_block = s.first_block + base + (stage < extra ? 1 : 0);
  s.embedding = stage == 0;
  s.head = stage == stages - 1;
  return s;
}

}  // namespace quopt
