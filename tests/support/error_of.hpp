#pragma once
// The message of the quopt::Error a call throws, for tests of error messages.
#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"

namespace quopt::testing {

// Runs f and returns the message of the quopt::Error it throws; records a test failure (and returns "")
// when it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected quopt::Error";
  return {};
}

}  // namespace quopt::testing
