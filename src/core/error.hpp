#pragma once
// Errors: quopt::Error carries a message meant for the user (what is wrong and how to fix it).
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace quopt {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A memory allocation that failed; callers that know which config keys sized it add them (the trainer).
class OutOfMemory : public Error {
 public:
  explicit OutOfMemory(const std::string& what) : Error(what) {}
};

// Concatenates its arguments with operator<< (GCC 12 has no <format>).
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(cat(std::forward<Args>(args)...));
}

}  // namespace quopt

// Internal invariant / argument check; the message should say what was expected.
#define QUOPT_CHECK(cond, ...)               \
  do {                                       \
    if (!(cond)) ::quopt::fail(__VA_ARGS__); \
  } while (0)
