#pragma once
// Logging: info goes to stdout on rank 0 only; warnings and errors go to stderr from any rank.
#include <iostream>

#include "core/error.hpp"

namespace quopt {

void set_log_rank(int rank);
int log_rank();

template <class... Args>
void log_info(Args&&... args) {
  if (log_rank() == 0) std::cout << cat(std::forward<Args>(args)...) << std::endl;
}
template <class... Args>
void log_warn(Args&&... args) {
  std::cerr << "quopt: warning: " << cat(std::forward<Args>(args)...) << std::endl;
}

}  // namespace quopt
