#include "app/signals.hpp"

namespace quopt::app {

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int sig) {
  g_stop = sig;
}
}  // namespace

const volatile std::sig_atomic_t* install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
  // A launcher may have blocked them (the mask survives exec): unblock, so a signal sent before or
  // after this point reaches the handler instead of staying pending for the whole run.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  return &g_stop;
}

void release_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
  if (g_stop != 0) std::raise(g_stop);
}

}  // namespace quopt::app
