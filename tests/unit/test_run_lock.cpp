// One writer per run directory: a second locker is refused with the holder's host, pid and command;
// the lock ends with its holder, however the holder ends (no stale locks); and the run directory's
// earlier files are listed and moved aside, never overwritten.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "io/run_directory.hpp"
#include "io/run_lock.hpp"
#include "support/error_of.hpp"

namespace quopt {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

class RunLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / cat("quopt_lock_", ::getpid())).string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(RunLockTest, ASecondWriterIsRefusedWithTheHolderNamed) {
  RunLock first = RunLock::acquire_local(dir_, "quopt train run.toml --out X");
  ASSERT_TRUE(first.held());
  ASSERT_TRUE(fs::is_directory(dir_));
  // flock(2) locks belong to an open file description, so a second open in this process conflicts too.
  const std::string msg = error_of([&] { RunLock::acquire_local(dir_, "quopt ptq run.toml --run X"); });
  EXPECT_NE(msg.find(dir_), std::string::npos) << msg;
  EXPECT_NE(msg.find(cat("pid ", ::getpid())), std::string::npos) << msg;
  EXPECT_NE(msg.find("quopt train run.toml --out X"), std::string::npos) << msg;
  first = RunLock();  // released
  RunLock again = RunLock::acquire_local(dir_, "quopt ptq");
  EXPECT_TRUE(again.held());
}

TEST_F(RunLockTest, TheLockEndsWithItsHolderProcess) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // holds the lock, says so, then dies without releasing anything
    ::close(ready[0]);
    try {
      RunLock l = RunLock::acquire_local(dir_, "quopt train (child)");
      const char c = 'x';
      if (::write(ready[1], &c, 1) != 1) ::_exit(3);
      ::pause();  // until SIGKILL
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  const std::string msg = error_of([&] { RunLock::acquire_local(dir_, "quopt train"); });
  EXPECT_NE(msg.find(cat("pid ", child)), std::string::npos) << msg;
  EXPECT_NE(msg.find("(child)"), std::string::npos) << msg;
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(RunLock::acquire_local(dir_, "quopt train").held()) << "a dead holder's lock must be free";
  // Without create, a missing directory is left alone (the command reports the missing run itself).
  fs::remove_all(dir_);
  EXPECT_FALSE(RunLock::acquire_local(dir_, "quopt ptq", 1, false).held());
  EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(RunLockTest, EarlierRunFilesAreListedAndMovedAsideWhole) {
  fs::create_directories(dir_ + "/checkpoints");
  EXPECT_TRUE(previous_run_files(dir_).empty());
  std::ofstream(dir_ + "/checkpoints/step-00000010.h5.tmp") << "interrupted write";
  std::ofstream(dir_ + "/quopt.lock") << "holder";
  EXPECT_TRUE(previous_run_files(dir_).empty()) << "temporaries and the lock are not a run";
  std::ofstream(dir_ + "/metrics.jsonl") << "{\"step\":1}\n";
  std::ofstream(dir_ + "/checkpoints/step-00000010.h5") << "a";
  std::ofstream(dir_ + "/checkpoints/step-00000005.h5") << "b";
  const auto files = previous_run_files(dir_);
  EXPECT_EQ(files, (std::vector<std::string>{"metrics.jsonl", "checkpoints/step-00000005.h5",
                                             "checkpoints/step-00000010.h5"}));
  EXPECT_EQ(describe_run_files(files), "metrics.jsonl and 2 checkpoints");
  std::ofstream(dir_ + "/run.h5") << "c";
  EXPECT_EQ(describe_run_files(previous_run_files(dir_)), "metrics.jsonl, run.h5 and 2 checkpoints");
  fs::create_directories(dir_ + "/previous-1");  // taken: the next free number is used
  const std::string moved = move_previous_run(dir_);
  EXPECT_EQ(moved, dir_ + "/previous-2");
  EXPECT_TRUE(previous_run_files(dir_).empty());
  EXPECT_EQ(previous_run_files(moved).size(), 4u);
  std::ifstream in(moved + "/checkpoints/step-00000005.h5");
  std::string content;
  in >> content;
  EXPECT_EQ(content, "b");
}

}  // namespace
}  // namespace quopt
