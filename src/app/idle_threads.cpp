#include "app/idle_threads.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace quopt::app {

namespace {

// Source of both defaults: what each library documents as its "sleep at once" setting (libgomp manual,
// OMP_WAIT_POLICY; OpenBLAS's driver/others/blas_server.c clamps OPENBLAS_THREAD_TIMEOUT to 4..30).
constexpr const char* kOmpWaitPolicy = "passive";
constexpr const char* kOpenBlasThreadTimeout = "4";

// The two variables as this process found them at start-up.
std::string g_omp_at_start, g_openblas_at_start;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

bool is_one_or_unset(const char* name) {
  const std::string v = env_or_empty(name);
  return v.empty() || v == "1";
}

}  // namespace

void ensure_passive_idle_threads(char** argv) {
  g_omp_at_start = env_or_empty("OMP_WAIT_POLICY");
  g_openblas_at_start = env_or_empty("OPENBLAS_THREAD_TIMEOUT");
  if (!g_omp_at_start.empty() && !g_openblas_at_start.empty()) return;  // both chosen by the user
  // One thread in each pool: nothing waits (OpenBLAS takes OMP_NUM_THREADS when its own is unset).
  if (env_or_empty("OMP_NUM_THREADS") == "1" && is_one_or_unset("OPENBLAS_NUM_THREADS")) return;
  if (g_omp_at_start.empty() && setenv("OMP_WAIT_POLICY", kOmpWaitPolicy, 1) != 0) return;
  if (g_openblas_at_start.empty() && setenv("OPENBLAS_THREAD_TIMEOUT", kOpenBlasThreadTimeout, 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Only reached when the exec failed (no /proc, say): go on as we are, with the libraries' defaults.
  // The variables stay set, so child processes started from here get them.
}

std::string idle_thread_settings() {
  auto show = [](const std::string& v) { return v.empty() ? std::string("unset") : v; };
  return "OMP_WAIT_POLICY=" + show(g_omp_at_start) + ", OPENBLAS_THREAD_TIMEOUT=" + show(g_openblas_at_start);
}

}  // namespace quopt::app
