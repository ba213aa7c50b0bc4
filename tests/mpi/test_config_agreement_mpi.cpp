// Ranks that were started with different commands or configs stop together, at start-up, with one error
// naming the ranks and the first difference (run under mpiexec at np 1, 2, 4).
#include <gtest/gtest.h>
#include <mpi.h>

#include "core/error.hpp"
#include "io/config_agreement.hpp"
#include "io/run_config.hpp"
#include "parallel/collective_error.hpp"
#include "support/optim_mpi.hpp"

namespace quopt {
namespace {

using testing::world_rank;

// The message of the CollectiveError agree_on_config throws ("" when it returns).
std::string agreement_error(const std::vector<std::string>& args, const Config& cfg) {
  try {
    agree_on_config(MPI_COMM_WORLD, args, cfg.to_toml());
  } catch (const CollectiveError& e) {
    return e.what();
  }
  return {};
}

TEST(ConfigAgreementMpi, IdenticalRanksPass) {
  const Config c = Config::defaults(quopt_schema());
  EXPECT_EQ(agreement_error({"train", "run.toml"}, c), "");
}

TEST(ConfigAgreementMpi, TheLastRankWithAnotherKeyIsNamedOnEveryRank) {
  const int n = testing::world_size();
  Config c = Config::defaults(quopt_schema());
  if (world_rank() == n - 1 && n > 1) c.apply_override("optimizer.name=muon");
  const std::string msg = agreement_error({"train", "run.toml"}, c);
  if (n == 1) {
    EXPECT_EQ(msg, "");
    return;
  }
  EXPECT_NE(msg.find(cat("rank 0 vs rank ", n - 1)), std::string::npos) << msg;
  EXPECT_NE(msg.find("optimizer.name = \"adamw\" vs \"muon\""), std::string::npos) << msg;
  EXPECT_NE(msg.find(cat(n > 2 ? "ranks 0, 1" : "rank 0", n > 3 ? ", 2" : "", " and rank ", n - 1)),
            std::string::npos)
      << msg;
}

TEST(ConfigAgreementMpi, ADifferentCommandLineIsNamedByArgument) {
  const int n = testing::world_size();
  const Config c = Config::defaults(quopt_schema());
  std::vector<std::string> args = {"train", "run.toml", "--resume", "auto"};
  if (world_rank() == 1) args[3] = "never";
  const std::string msg = agreement_error(args, c);
  if (n == 1) {
    EXPECT_EQ(msg, "");
    return;
  }
  EXPECT_NE(msg.find("command-line argument 4: 'auto' vs 'never'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Rank 0 ran: train run.toml --resume auto"), std::string::npos) << msg;
}

}  // namespace
}  // namespace quopt
