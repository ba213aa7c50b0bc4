#pragma once
// Sharded optimizer work within one data-parallel group. The expensive per-matrix or per-block work
// of an optimizer (Shampoo/SOAP blocks, PSGD factors, Muon/Scion orthogonalisations) is split into
// work items with a cost; ShardPlan assigns them to the group's ranks by LPT (parallel/lpt.hpp). Each
// item's state lives only on its owner, which computes the item's result (e.g. its update direction);
// allgather() then makes every result available on every rank with one MPI_Allgatherv per step.
// With one rank, everything is local and allgather() does nothing.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace quopt {

struct WorkItem {
  std::string name;    // stable across rank counts (used to name checkpointed state)
  double cost = 0.0;   // cost model, e.g. n^3 for an eigendecomposition of an n x n factor
  Shape result_shape;  // shape of the f32 result the owner computes
};

class ShardPlan {
 public:
  ShardPlan() = default;
  ShardPlan(MPI_Comm comm, std::vector<WorkItem> items);
  std::size_t size() const { return items_.size(); }
  const WorkItem& item(std::size_t i) const { return items_[i]; }
  int owner(std::size_t i) const { return owner_[i]; }
  bool mine(std::size_t i) const { return owner_[i] == rank_; }
  int ranks() const { return ranks_; }
  double balance() const;  // max / mean assigned cost
  double my_cost() const;
  // results[i] (f32, item i's result_shape, allocated by the caller on every rank) is filled by the
  // owner; afterwards it holds the owner's values on every rank. Returns seconds spent in MPI. Device
  // results (all on one device) go over NCCL (kernels::device_broadcast_each), ordered on the device's
  // streams: the seconds returned are then those of queuing it.
  double allgather(std::vector<Tensor>& results) const;

 private:
  MPI_Comm comm_ = MPI_COMM_SELF;
  int rank_ = 0, ranks_ = 1;
  std::vector<WorkItem> items_;
  std::vector<int> owner_;
};

}  // namespace quopt
