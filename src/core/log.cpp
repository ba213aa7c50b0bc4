#include "core/log.hpp"

namespace quopt {
namespace {
int g_rank = 0;
}
void set_log_rank(int rank) {
  g_rank = rank;
}
int log_rank() {
  return g_rank;
}
}  // namespace quopt
