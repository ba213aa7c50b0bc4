#include "app/omp_wait_policy.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace quopt::app {

namespace {
// OMP_WAIT_POLICY as this process found it: what libgomp read when it was loaded.
std::string g_policy_at_start;  // empty: unset

bool unset_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0';
}
}  // namespace

void ensure_omp_wait_policy(char** argv) {
  if (!unset_or_empty("OMP_WAIT_POLICY")) {
    g_policy_at_start = std::getenv("OMP_WAIT_POLICY");
    return;
  }
  const char* threads = std::getenv("OMP_NUM_THREADS");
  if (threads != nullptr && std::strcmp(threads, "1") == 0) return;  // no idle thread to wait
  if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Only reached when the exec failed (no /proc, say): go on as we are, with libgomp's default. The
  // variable stays set so that child processes started from here get the passive policy.
}

const char* omp_wait_policy_in_use() {
  return g_policy_at_start.empty() ? "default (spinning)" : g_policy_at_start.c_str();
}

}  // namespace quopt::app
