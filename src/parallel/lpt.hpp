#pragma once
// Greedy longest-processing-time (LPT) assignment of work items to ranks (Graham 1969): items in
// decreasing cost order, each to the least-loaded rank. Deterministic: ties in cost keep the item
// order, ties in load go to the lowest rank.
#include <vector>

namespace quopt {

std::vector<int> lpt_assign(const std::vector<double>& costs, int ranks);
// max over ranks of assigned cost / mean over ranks (1 = perfect balance).
double lpt_balance(const std::vector<double>& costs, const std::vector<int>& owner, int ranks);

}  // namespace quopt
