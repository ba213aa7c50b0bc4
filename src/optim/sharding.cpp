#include "optim/sharding.hpp"

#include <cstring>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "kernels/collectives.hpp"
#include "parallel/lpt.hpp"

namespace quopt {

ShardPlan::ShardPlan(MPI_Comm comm, std::vector<WorkItem> items) : comm_(comm), items_(std::move(items)) {
  MPI_Comm_rank(comm, &rank_);
  MPI_Comm_size(comm, &ranks_);
  std::vector<double> costs;
  for (const auto& it : items_) costs.push_back(it.cost);
  owner_ = lpt_assign(costs, ranks_);
}

double ShardPlan::balance() const {
  std::vector<double> costs;
  for (const auto& it : items_) costs.push_back(it.cost);
  return lpt_balance(costs, owner_, ranks_);
}

double ShardPlan::my_cost() const {
  double c = 0.0;
  for (std::size_t i = 0; i < items_.size(); ++i)
    if (mine(i)) c += items_[i].cost;
  return c;
}

double ShardPlan::allgather(std::vector<Tensor>& results) const {
  QUOPT_CHECK(results.size() == items_.size(), "ShardPlan::allgather: ", results.size(), " results for ",
              items_.size(), " items");
  if (ranks_ == 1) return 0.0;
  std::vector<int> counts(static_cast<std::size_t>(ranks_), 0), displs(static_cast<std::size_t>(ranks_), 0);
  for (std::size_t i = 0; i < items_.size(); ++i) {
    QUOPT_CHECK(results[i].dtype() == DType::F32 && results[i].shape() == items_[i].result_shape &&
                    results[i].device() == results.front().device(),
                "ShardPlan::allgather: result of ", items_[i].name, " is ", results[i].describe());
    counts[static_cast<std::size_t>(owner_[i])] += static_cast<int>(results[i].numel());
  }
  if (!results.empty() && !results.front().is_host()) {
    // Device results: one grouped NCCL broadcast from each item's owner (stream-ordered, no host copy).
    const double t0 = wall_seconds();
    kernels::device_broadcast_each(results, owner_, comm_);
    return wall_seconds() - t0;
  }
  int total = 0;
  for (int r = 0; r < ranks_; ++r) {
    displs[static_cast<std::size_t>(r)] = total;
    total += counts[static_cast<std::size_t>(r)];
  }
  std::vector<float> recv(static_cast<std::size_t>(total));
  std::vector<float> send(static_cast<std::size_t>(counts[static_cast<std::size_t>(rank_)]));
  std::size_t off = 0;
  for (std::size_t i = 0; i < items_.size(); ++i)
    if (mine(i)) {
      std::memcpy(send.data() + off, results[i].data<float>(), results[i].nbytes());
      off += static_cast<std::size_t>(results[i].numel());
    }
  const double t0 = wall_seconds();
  MPI_Allgatherv(send.data(), static_cast<int>(send.size()), MPI_FLOAT, recv.data(), counts.data(),
                 displs.data(), MPI_FLOAT, comm_);
  const double dt = wall_seconds() - t0;
  std::vector<std::size_t> cursor(displs.begin(), displs.end());
  for (std::size_t i = 0; i < items_.size(); ++i) {
    auto& c = cursor[static_cast<std::size_t>(owner_[i])];
    if (!mine(i)) std::memcpy(results[i].data<float>(), recv.data() + c, results[i].nbytes());
    c += static_cast<std::size_t>(results[i].numel());
  }
  return dt;
}

}  // namespace quopt
