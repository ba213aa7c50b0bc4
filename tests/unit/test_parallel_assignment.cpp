// How work is divided over ranks: greedy LPT assignment of optimizer blocks (Graham 1969) and the
// pipeline's split of the model's blocks over stages, checked by their properties (every item placed,
// the LPT makespan bound against brute-force optima, documented tie-breaking; stages that partition the
// blocks in order, as evenly as documented, for every shape up to 12 blocks).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "parallel/grid.hpp"
#include "parallel/lpt.hpp"
#include "support/error_of.hpp"

namespace quopt {
namespace {

std::vector<double> loads(const std::vector<double>& costs, const std::vector<int>& owner, int ranks) {
  std::vector<double> l(static_cast<std::size_t>(ranks), 0.0);
  for (std::size_t i = 0; i < costs.size(); ++i) l[static_cast<std::size_t>(owner[i])] += costs[i];
  return l;
}

// The smallest makespan of any assignment (exhaustive; a few items only).
double optimal_makespan(const std::vector<double>& costs, int ranks) {
  std::vector<int> owner(costs.size(), 0);
  double best = std::numeric_limits<double>::infinity();
  while (true) {
    const auto l = loads(costs, owner, ranks);
    best = std::min(best, *std::max_element(l.begin(), l.end()));
    std::size_t k = 0;
    while (k < owner.size() && ++owner[k] == ranks) owner[k++] = 0;
    if (k == owner.size()) return best;
  }
}

TEST(Lpt, MakespanIsWithinGrahamsBoundOfTheOptimum) {
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> n_items(1, 8), cost(1, 20);
  for (int trial = 0; trial < 300; ++trial) {
    const int ranks = 2 + trial % 2;
    std::vector<double> costs(static_cast<std::size_t>(n_items(gen)));
    for (auto& c : costs) c = cost(gen);
    const std::vector<int> owner = lpt_assign(costs, ranks);
    ASSERT_EQ(owner.size(), costs.size());
    for (int o : owner) ASSERT_TRUE(o >= 0 && o < ranks);
    const auto l = loads(costs, owner, ranks);
    const double makespan = *std::max_element(l.begin(), l.end());
    const double opt = optimal_makespan(costs, ranks);
    // Graham (1969): LPT <= (4/3 - 1/(3m)) OPT.
    EXPECT_LE(makespan, (4.0 / 3.0 - 1.0 / (3.0 * ranks)) * opt + 1e-9)
        << "trial " << trial << ": " << ::testing::PrintToString(costs);
    EXPECT_DOUBLE_EQ(lpt_balance(costs, owner, ranks),
                     makespan / (std::accumulate(costs.begin(), costs.end(), 0.0) / ranks));
  }
}

TEST(Lpt, LargestFirstToTheLeastLoadedWithDocumentedTies) {
  // The largest item alone on one rank; the small ones fill the other (optimal here, 4 vs 4).
  EXPECT_EQ(lpt_assign({1, 1, 1, 1, 4}, 2), (std::vector<int>{1, 1, 1, 1, 0}));
  // Ties in cost keep the item order, ties in load go to the lowest rank.
  EXPECT_EQ(lpt_assign({2, 2, 2, 2, 2}, 3), (std::vector<int>{0, 1, 2, 0, 1}));
  EXPECT_EQ(lpt_assign({5, 9, 5}, 2), (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(lpt_assign({}, 4), std::vector<int>{});
  EXPECT_EQ(lpt_assign({3, 1}, 1), (std::vector<int>{0, 0}));
  EXPECT_DOUBLE_EQ(lpt_balance({3, 1}, {0, 1}, 2), 1.5);
  EXPECT_DOUBLE_EQ(lpt_balance({0, 0}, {0, 1}, 2), 1.0);
  EXPECT_FALSE(testing::error_of([] { lpt_assign({1}, 0); }).empty());
}

TEST(PipelineSplit, StagesPartitionTheBlocksInOrderAsEvenlyAsDocumented) {
  for (std::int64_t n = 1; n <= 12; ++n) {
    ModelConfig m;
    m.n_layers = n;
    for (int P = 1; P <= n; ++P) {
      std::int64_t next = 0;
      for (int s = 0; s < P; ++s) {
        const StageSpec sp = stage_spec(m, s, P);
        const std::int64_t size = sp.last_block - sp.first_block;
        EXPECT_EQ(sp.first_block, next) << n << " blocks, stage " << s << " of " << P;
        // The first n % P stages hold one block more (docs/parallel.md).
        EXPECT_EQ(size, n / P + (s < n % P ? 1 : 0)) << n << " blocks, stage " << s << " of " << P;
        EXPECT_EQ(sp.embedding, s == 0);
        EXPECT_EQ(sp.head, s == P - 1);
        next = sp.last_block;
      }
      EXPECT_EQ(next, n) << n << " blocks over " << P << " stages";
    }
    EXPECT_FALSE(testing::error_of([&] { stage_spec(m, 0, static_cast<int>(n) + 1); }).empty());
  }
}

}  // namespace
}  // namespace quopt
