// Reading the validation curve back from metrics.jsonl (io/metrics_read.hpp), as written by MetricsLog.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.hpp"
#include "io/metrics_log.hpp"
#include "io/metrics_read.hpp"

namespace fs = std::filesystem;

namespace {

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("quopt_metrics_read_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST(MetricsRead, RoundTripOfTheValidationLinesExactly) {
  const fs::path p = temp_file("ok.jsonl");
  {
    quopt::MetricsLog log;
    log.open(p.string(), false);
    log.write({0, 0, std::nan(""), 0.0, std::nan(""), 6.123456789012345, 0.0, 0.0, 0});
    log.write({10, 640, 5.1, 1e-3, 0.5, std::nullopt, 1.0, 640.0, 0});  // no validation: skipped
    log.write({20, 1280, 4.9, 1e-3, 0.4, 4.0000000000000009, 2.0, 640.0, 0});
    log.write({30, 1920, 4.8, 0.0, 0.4, std::numeric_limits<double>::infinity(), 3.0, 640.0, 0});
  }
  const quopt::ValCurve c = quopt::read_val_curve(p.string());
  ASSERT_EQ(c.step, (std::vector<std::int64_t>{0, 20, 30}));
  EXPECT_EQ(c.loss[0], 6.123456789012345);  // shortest round-trip text: bit-exact
  EXPECT_EQ(c.loss[1], 4.0000000000000009);
  EXPECT_TRUE(std::isnan(c.loss[2]));  // written as null
  fs::remove(p);
}

TEST(MetricsRead, BadLogsNameTheFileAndLine) {
  EXPECT_THROW(quopt::read_val_curve(temp_file("missing.jsonl").string()), quopt::Error);
  const fs::path p = temp_file("bad.jsonl");
  auto expect_error = [&](const std::string& text, const std::string& what) {
    std::ofstream(p) << text;
    try {
      quopt::read_val_curve(p.string());
      ADD_FAILURE() << "no error for: " << text;
    } catch (const quopt::Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error("{\"step\":0,\"val_loss\":6}\n{\"val_loss\":5}\n", "line 2 has a val_loss but no step");
  expect_error("{\"step\":0,\"val_loss\":6x}\n", "line 1: ");
  expect_error("{\"step\":0,\"val_loss\":\"6\"}\n", "val_loss is a string, not a number");
  expect_error("{\"step\":10,\"val_loss\":6}\n{\"step\":5,\"val_loss\":5}\n", "does not follow step 10");
  fs::remove(p);
}
