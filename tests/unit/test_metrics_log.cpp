// DIR/metrics.jsonl: records are complete lines or an error (a full disk is never silent), and a resume
// repairs what a crash or a full disk leaves (torn lines anywhere, records after the checkpoint).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "io/metrics_log.hpp"
#include "support/error_of.hpp"

namespace quopt {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

class MetricsLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / cat("quopt_metrics_", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }
  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  fs::path dir_;
};

StepRecord record(std::int64_t step) {
  StepRecord r;
  r.step = step;
  r.tokens = step * 100;
  r.loss = 3.5 - 0.01 * static_cast<double>(step);
  r.lr = 1e-3;
  r.grad_norm = 0.5;
  return r;
}

TEST_F(MetricsLogTest, RecordsAreCompleteLinesWithTheirStep) {
  StepRecord r = record(12);
  r.val_loss = 3.25;
  r.loss = std::nan("");
  const std::string line = format_record(r);
  ASSERT_EQ(line.back(), '\n');
  const std::string body = line.substr(0, line.size() - 1);
  EXPECT_EQ(record_step(body), 12);
  EXPECT_NE(body.find("\"loss\":null"), std::string::npos) << body;
  EXPECT_NE(body.find("\"val_loss\":3.25"), std::string::npos) << body;
  EXPECT_EQ(body.find("skipped_steps"), std::string::npos) << "only written once a step was skipped";
  r.skipped_steps = 2;
  EXPECT_NE(format_record(r).find("\"skipped_steps\":2"), std::string::npos);
  // Every proper prefix of a record is torn.
  for (std::size_t n = 0; n < body.size(); ++n)
    EXPECT_FALSE(record_step(body.substr(0, n))) << body.substr(0, n);
  EXPECT_FALSE(record_step(std::string(40, '\0')));
  EXPECT_FALSE(record_step(body + body));  // two records glued together by a lost newline
  EXPECT_FALSE(record_step("{\"step\":x,\"loss\":1}"));
  EXPECT_FALSE(record_step("{\"loss\":1}"));    // no step
  EXPECT_FALSE(record_step("{\"step\":2.5}"));  // not an integer step
  // Other records (robustness measurements, train/robustness.hpp) are whole JSON objects too.
  EXPECT_EQ(record_step("{\"step\":7,\"robustness\":{\"scheme\":\"rtn-w4a4\",\"R_L\":0.1}}"), 7);
}

TEST_F(MetricsLogTest, AWriteThatFailsIsAnErrorNamingTheFileAndTheCause) {
  if (!fs::exists("/dev/full")) GTEST_FAIL() << "/dev/full (always ENOSPC) is missing";
  MetricsLog log;
  log.open("/dev/full", true);
  const std::string msg = error_of([&] { log.write(record(41)); });
  EXPECT_NE(msg.find("/dev/full"), std::string::npos) << msg;
  EXPECT_NE(msg.find("step 41"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::strerror(ENOSPC)), std::string::npos) << msg;
  EXPECT_NE(msg.find("--resume auto"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { log.write_line("{\"step\":9,\"robustness\":{}}"); }).find("step 9"),
            std::string::npos);
}

TEST_F(MetricsLogTest, AppendKeepsAndTruncateReplaces) {
  {
    MetricsLog log;
    log.open(path("m.jsonl"), false);
    log.write(record(1));
    log.write(record(2));
  }
  {
    MetricsLog log;
    log.open(path("m.jsonl"), true);
    log.write(record(3));
  }
  EXPECT_EQ(read(path("m.jsonl")),
            format_record(record(1)) + format_record(record(2)) + format_record(record(3)));
  MetricsLog log;
  log.open(path("m.jsonl"), false);
  log.write(record(7));
  EXPECT_EQ(read(path("m.jsonl")), format_record(record(7)));
  EXPECT_NE(error_of([&] {
              MetricsLog l;
              l.open(path("no/such/dir/m.jsonl"), true);
            }).find("no/such/dir"),
            std::string::npos);
}

TEST_F(MetricsLogTest, RepairDropsTornLinesAnywhereAndRecordsAfterTheCheckpoint) {
  const std::string torn_mid = format_record(record(3)).substr(0, 25);  // a crash, then a resume appended
  const std::string robust = "{\"step\":4,\"robustness\":{\"scheme\":\"rtn-w4a4\",\"R_L\":0.25}}\n";
  const std::string text = format_record(record(1)) + format_record(record(2)) + torn_mid + "\n" +
                           format_record(record(3)) + format_record(record(4)) + robust +
                           std::string(16, '\0') + "\n" + format_record(record(5)) +
                           format_record(record(6)).substr(0, 9);  // torn tail
  std::ofstream(path("m.jsonl"), std::ios::binary) << text;
  const MetricsRepair rep = repair_metrics_log(path("m.jsonl"), 4);
  EXPECT_EQ(rep.kept, 5);
  EXPECT_EQ(rep.dropped_later, 1);  // step 5: redone after the resume
  EXPECT_EQ(rep.torn_lines, (std::vector<std::int64_t>{3, 7, 9}));
  EXPECT_EQ(read(path("m.jsonl")), format_record(record(1)) + format_record(record(2)) +
                                       format_record(record(3)) + format_record(record(4)) + robust);
  EXPECT_FALSE(fs::exists(path("m.jsonl.tmp")));
  // Repairing a clean file changes nothing; a missing file stays missing.
  const MetricsRepair again = repair_metrics_log(path("m.jsonl"), 4);
  EXPECT_EQ(again.kept, 5);
  EXPECT_TRUE(again.torn_lines.empty());
  EXPECT_EQ(repair_metrics_log(path("none.jsonl"), 3).kept, 0);
  EXPECT_FALSE(fs::exists(path("none.jsonl")));
}

}  // namespace
}  // namespace quopt
