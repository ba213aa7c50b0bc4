// The collective timeout's watchdog: a phase that lasts longer than the timeout ends the process with
// exit status kExitStalled and a message naming the phase and the key; phases that finish in time, a
// disabled watchdog and a destroyed one never fire. Each case runs in a forked child (the watchdog ends
// its process).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "parallel/watchdog.hpp"

namespace quopt {
namespace {

using namespace std::chrono_literals;

// Runs body in a child process (stderr captured); returns (exit status, stderr text).
template <class F>
std::pair<int, std::string> in_child(F&& body) {
  int pipefd[2];
  EXPECT_EQ(::pipe(pipefd), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    ::dup2(pipefd[1], 2);
    body();
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string err;
  char buf[512];
  for (ssize_t k; (k = ::read(pipefd[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<std::size_t>(k));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), err};
}

TEST(Watchdog, AStalledPhaseEndsTheProcessNamingIt) {
  const auto [code, err] = in_child([] {
    Watchdog w(0.3, 3);
    w.phase("step 17");
    std::this_thread::sleep_for(5s);  // stalled
  });
  EXPECT_EQ(code, kExitStalled) << err;
  EXPECT_NE(err.find("rank 3"), std::string::npos) << err;
  EXPECT_NE(err.find("step 17 has not finished after"), std::string::npos) << err;
  EXPECT_NE(err.find("parallel.collective_timeout = 0.3"), std::string::npos) << err;
}

TEST(Watchdog, PhasesThatFinishInTimeNeverFire) {
  const auto [code, err] = in_child([] {
    Watchdog w(0.4, 0);
    for (int i = 0; i < 12; ++i) {  // 1.2 s in all, 0.1 s per phase
      w.phase("step " + std::to_string(i));
      std::this_thread::sleep_for(100ms);
    }
  });
  EXPECT_EQ(code, 0) << err;
  const auto [code2, err2] = in_child([] {
    Watchdog w(0.0, 0);  // disabled
    w.phase("step 1");
    std::this_thread::sleep_for(500ms);
  });
  EXPECT_EQ(code2, 0) << err2;
  const auto [code3, err3] = in_child([] {
    { Watchdog w(0.2, 0); }  // never entered a phase
    std::this_thread::sleep_for(500ms);
  });
  EXPECT_EQ(code3, 0) << err3;
}

}  // namespace
}  // namespace quopt
