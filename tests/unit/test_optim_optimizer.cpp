// The optimizer base (optim/optimizer.hpp): checked_params accepts exactly the parameters an optimizer was
// built for and names the first mismatch otherwise, and a sharded optimizer stepped with other parameters
// refuses them; report() carries the accounted statistics and the bytes of state().
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.hpp"
#include "optim/shampoo.hpp"
#include "optim/soap.hpp"
#include "support/error_of.hpp"

namespace quopt {
namespace {

void build(ParameterSet& ps, const std::string& second, std::int64_t rows) {
  ps.add("a/weight", ParamRole::Hidden, {4, 3}, DType::F32);
  ps.add(second, ParamRole::Hidden, {rows, 3}, DType::F32);
}

std::string error_of(ParameterSet& ps, const std::vector<std::string>& names,
                     const std::vector<Shape>& shapes) {
  try {
    checked_params("opt", ps, names, shapes);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Optimizer, CheckedParamsAcceptsTheBuiltForParametersInOrder) {
  ParameterSet ps;
  build(ps, "b/weight", 2);
  const std::vector<Parameter*> got = checked_params("opt", ps, {"a/weight", "b/weight"}, {{4, 3}, {2, 3}});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], &ps.all()[0]);
  EXPECT_EQ(got[1], &ps.all()[1]);
}

TEST(Optimizer, CheckedParamsNamesTheMismatch) {
  ParameterSet ps;
  build(ps, "b/weight", 2);
  const std::string count = error_of(ps, {"a/weight"}, {{4, 3}});
  EXPECT_NE(count.find("opt: built for 1 parameters, stepped with 2"), std::string::npos) << count;
  const std::string name = error_of(ps, {"a/weight", "c/weight"}, {{4, 3}, {2, 3}});
  EXPECT_NE(name.find("opt: parameter 1 is b/weight"), std::string::npos) << name;
  EXPECT_NE(name.find("built for c/weight"), std::string::npos) << name;
  const std::string shape = error_of(ps, {"a/weight", "b/weight"}, {{4, 3}, {5, 3}});
  EXPECT_NE(shape.find("parameter 1 is b/weight"), std::string::npos) << shape;
}

TEST(Optimizer, ShampooAndSoapRefuseOtherParameters) {
  ParameterSet built, other;
  build(built, "b/weight", 2);
  build(other, "b/weight", 5);
  Shampoo shampoo(OptimizerConfig{}, ShampooOptions{}, built);
  Soap soap(OptimizerConfig{}, SoapOptions{}, built);
  EXPECT_THROW(shampoo.step(other, 1e-3), Error);
  EXPECT_THROW(soap.step(other, 1e-3), Error);
  EXPECT_NO_THROW(shampoo.step(built, 1e-3));
  EXPECT_NO_THROW(soap.step(built, 1e-3));
}

TEST(Optimizer, ReportCarriesStatisticsAndStateBytes) {
  ParameterSet ps;
  build(ps, "b/weight", 2);
  Soap soap(OptimizerConfig{}, SoapOptions{}, ps);
  for (int t = 0; t < 3; ++t) soap.step(ps, 1e-3);
  const OptimizerReport r = soap.report();
  std::int64_t bytes = 0;
  for (const auto& s : soap.state()) bytes += static_cast<std::int64_t>(s.tensor.nbytes());
  EXPECT_GT(bytes, 0);
  EXPECT_EQ(r.state_bytes, bytes);
  EXPECT_EQ(r.balance, 1.0);  // one rank (MPI_COMM_SELF): the whole plan is this rank's
  EXPECT_GT(r.precond_seconds, 0.0);
  EXPECT_EQ(r.failed_roots, 0);
}

}  // namespace
}  // namespace quopt
