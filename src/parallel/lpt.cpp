#include "parallel/lpt.hpp"

#include <algorithm>
#include <numeric>

#include "core/error.hpp"

namespace quopt {

std::vector<int> lpt_assign(const std::vector<double>& costs, int ranks) {
  QUOPT_CHECK(ranks >= 1, "lpt_assign: need at least one rank");
  std::vector<std::size_t> order(costs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });
  std::vector<double> load(static_cast<std::size_t>(ranks), 0.0);
  std::vector<int> owner(costs.size(), 0);
  for (std::size_t i : order) {
    const auto r = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = static_cast<int>(r);
    load[r] += costs[i];
  }
  return owner;
}

double lpt_balance(const std::vector<double>& costs, const std::vector<int>& owner, int ranks) {
  std::vector<double> load(static_cast<std::size_t>(ranks), 0.0);
  for (std::size_t i = 0; i < costs.size(); ++i) load[static_cast<std::size_t>(owner[i])] += costs[i];
  const double total = std::accumulate(load.begin(), load.end(), 0.0);
  if (total <= 0) return 1.0;
  return *std::max_element(load.begin(), load.end()) / (total / ranks);
}

}  // namespace quopt
