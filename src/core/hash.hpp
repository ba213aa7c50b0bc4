#pragma once
// 64-bit FNV-1a (Fowler/Noll/Vo): the same value on every rank and machine (std::hash need not be), for
// comparing small texts across ranks.
#include <cstdint>
#include <string_view>

namespace quopt {

inline std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV offset basis
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;  // FNV 64-bit prime
  }
  return h;
}

}  // namespace quopt
