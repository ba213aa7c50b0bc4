#pragma once
// The 2-D process grid: pipeline stages x data-parallel replicas.
// Placement: world rank r -> stage r % P, replica r / P, so the P ranks of one pipeline are
// consecutive (on one node when P divides the ranks per node, keeping the point-to-point activation
// traffic on the node) and the ranks of one stage (which all-reduce gradients) are P apart.
#include <mpi.h>

#include <cstdint>

#include "model/config.hpp"
#include "model/olmo2.hpp"

namespace quopt {

class ProcessGrid {
 public:
  // Collective over `world`. Throws quopt::Error naming both numbers when the world size is not a
  // multiple of `stages`.
  ProcessGrid(MPI_Comm world, int stages);
  ~ProcessGrid();
  ProcessGrid(const ProcessGrid&) = delete;
  ProcessGrid& operator=(const ProcessGrid&) = delete;

  MPI_Comm world() const { return world_; }
  MPI_Comm pipe() const { return pipe_; }  // this replica's stages, rank in it == stage
  MPI_Comm data() const { return data_; }  // this stage's replicas, rank in it == replica
  // The first and last stage of this replica (2 ranks; MPI_COMM_NULL elsewhere or when P == 1):
  // they combine the gradient of a tied embedding that both hold.
  MPI_Comm ends() const { return ends_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  int stages() const { return stages_; }
  int replicas() const { return replicas_; }
  int stage() const { return stage_; }
  int replica() const { return replica_; }
  bool first_stage() const { return stage_ == 0; }
  bool last_stage() const { return stage_ == stages_ - 1; }

 private:
  MPI_Comm world_ = MPI_COMM_NULL, pipe_ = MPI_COMM_NULL, data_ = MPI_COMM_NULL, ends_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, stages_ = 1, replicas_ = 1, stage_ = 0, replica_ = 0;
};

// Blocks of stage s of P: consecutive, as even as possible (the first n_layers % P stages get one
// more); the embedding on stage 0, final norm and head on stage P-1.
StageSpec stage_spec(const ModelConfig& m, int stage, int stages);

}  // namespace quopt
