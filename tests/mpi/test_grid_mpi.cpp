// The process grid (run under mpiexec at np 1, 2, 4) and the agreement on errors that only some ranks
// see: placement as documented (stage = rank % P, replica = rank / P), the ranks of each communicator
// and their order, and throw_if_any / first_error reporting the lowest failing rank on every rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include "core/error.hpp"
#include "parallel/collective_error.hpp"
#include "parallel/grid.hpp"
#include "support/error_of.hpp"
#include "support/optim_mpi.hpp"

namespace quopt {
namespace {

using testing::world_rank;

// The world ranks of a communicator's members, in its rank order.
std::vector<int> members(MPI_Comm c) {
  int n = 0;
  MPI_Comm_size(c, &n);
  std::vector<int> out(static_cast<std::size_t>(n));
  const int me = world_rank();
  MPI_Allgather(&me, 1, MPI_INT, out.data(), 1, MPI_INT, c);
  return out;
}

TEST(Grid, PlacementAndCommunicatorsAreAsDocumented) {
  const int n = testing::world_size(), r = world_rank();
  for (int P = 1; P <= n; ++P) {
    if (n % P != 0) {
      EXPECT_NE(testing::error_of([&] { ProcessGrid g(MPI_COMM_WORLD, P); }).find("not a multiple"),
                std::string::npos);
      continue;
    }
    ProcessGrid g(MPI_COMM_WORLD, P);
    EXPECT_EQ(g.stages(), P);
    EXPECT_EQ(g.replicas(), n / P);
    EXPECT_EQ(g.stage(), r % P);  // one pipeline's P stages are consecutive ranks
    EXPECT_EQ(g.replica(), r / P);
    EXPECT_EQ(g.first_stage(), r % P == 0);
    EXPECT_EQ(g.last_stage(), r % P == P - 1);
    std::vector<int> pipe, data;
    for (int s = 0; s < P; ++s) pipe.push_back(g.replica() * P + s);    // rank in pipe == stage
    for (int q = 0; q < n / P; ++q) data.push_back(q * P + g.stage());  // rank in data == replica
    EXPECT_EQ(members(g.pipe()), pipe) << "P = " << P;
    EXPECT_EQ(members(g.data()), data) << "P = " << P;
    if (P > 1 && (g.first_stage() || g.last_stage())) {
      EXPECT_EQ(members(g.ends()), (std::vector<int>{g.replica() * P, g.replica() * P + P - 1}));
    } else {
      EXPECT_EQ(g.ends(), MPI_COMM_NULL);
    }
  }
}

TEST(CollectiveError, EveryRankGetsTheLowestFailingRanksMessage) {
  const int n = testing::world_size(), r = world_rank();
  EXPECT_EQ(first_error(MPI_COMM_WORLD, ""), "");
  EXPECT_NO_THROW(throw_if_any(MPI_COMM_WORLD, ""));
  // Every rank but 0 fails, each with its own message: all report rank 1's (rank 0's when alone).
  const std::string mine = (r > 0 || n == 1) ? cat("disk of rank ", r, " is full") : "";
  const std::string want = n == 1 ? "disk of rank 0 is full" : "rank 1: disk of rank 1 is full";
  EXPECT_EQ(first_error(MPI_COMM_WORLD, mine), want);
  try {
    throw_if_any(MPI_COMM_WORLD, mine);
    ADD_FAILURE() << "no rank threw";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(std::string(e.what()), want);
  }
  EXPECT_EQ(bcast_string(MPI_COMM_WORLD, cat("from ", r), n - 1), cat("from ", n - 1));
}

}  // namespace
}  // namespace quopt
