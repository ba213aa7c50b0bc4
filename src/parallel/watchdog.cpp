#include "parallel/watchdog.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace quopt {

Watchdog::Watchdog(double timeout_s, int rank) : timeout_(timeout_s), rank_(rank) {
  if (timeout_s > 0) thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::phase(const std::string& what) {
  if (!thread_.joinable()) return;
  std::lock_guard<std::mutex> lk(mu_);
  phase_ = what;
  since_ = std::chrono::steady_clock::now();
  active_ = true;
}

void Watchdog::run() {
  std::unique_lock<std::mutex> lk(mu_);
  // Wake often enough that a stall is reported within a tenth of the timeout (at most every second).
  const auto tick = std::min<std::chrono::duration<double>>(timeout_ / 10, std::chrono::seconds(1));
  while (!stop_) {
    cv_.wait_for(lk, tick);
    if (stop_ || !active_) continue;
    const std::chrono::duration<double> waited = std::chrono::steady_clock::now() - since_;
    if (waited < timeout_) continue;
    std::fprintf(
        stderr,
        "quopt: error (rank %d): %s has not finished after %.0f s (parallel.collective_timeout = %g): "
        "another rank has most likely stalled (stopped, swapping, its node or file system hung) and "
        "this one is waiting for it in a collective; ending the job (exit status %d). Once the cause "
        "is fixed, continue with --resume auto; if the phase is just slow, raise "
        "parallel.collective_timeout.\n",
        rank_, phase_.c_str(), waited.count(), timeout_.count(), kExitStalled);
    std::fflush(stderr);
    std::fflush(stdout);
    std::_Exit(kExitStalled);
  }
}

}  // namespace quopt
