#pragma once
// The collective timeout (parallel.collective_timeout): a thread per rank that watches the training
// loop's progress. The loop reports each phase it enters (a step, a validation, a checkpoint write);
// when one phase has lasted longer than the timeout, the usual cause is another rank that stopped
// answering (SIGSTOP, swapping, a dead node, a hung file system) while this one waits for it inside a
// collective, forever. The watchdog then prints which phase stalled and ends this process with exit
// status kExitStalled; mpirun (or srun --kill-on-bad-exit) then ends the other ranks. It never calls MPI
// (the program runs MPI_THREAD_FUNNELED) and does nothing when the timeout is 0.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace quopt {

// Exit status of a process ended by the watchdog (EX_SOFTWARE from sysexits.h is 70; quopt uses 2 for
// its errors and 75 for an interruption, so the stall gets its own: 124, as timeout(1)).
inline constexpr int kExitStalled = 124;

class Watchdog {
 public:
  // timeout_s <= 0: disabled. `rank` goes into the message.
  Watchdog(double timeout_s, int rank);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts timing a new phase ("step 17", "the checkpoint at step 20", ...); destruction stops timing.
  void phase(const std::string& what);

 private:
  void run();
  std::chrono::duration<double> timeout_;
  int rank_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string phase_;
  std::chrono::steady_clock::time_point since_;
  bool active_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace quopt
