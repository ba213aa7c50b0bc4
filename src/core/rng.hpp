#pragma once
// Counter-based random numbers: a value is a pure function of (seed, stream, counter), so a
// generator's whole state is three integers (bit-exact checkpoint/resume) and streams derived
// from names give the same numbers whatever the rank layout.
#include <cstdint>
#include <string_view>

namespace quopt {

// Stable 64-bit hash of a name (FNV-1a), used to derive per-tensor streams.
std::uint64_t hash_name(std::string_view name);

class Rng {
 public:
  Rng() = default;
  Rng(std::uint64_t seed, std::uint64_t stream) : seed_(seed), stream_(stream) {}
  std::uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  // Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n);
  // Standard normal (Box-Muller; each call consumes two counters).
  double normal();
  // Normal(0, std) truncated to [-a*std, a*std] by rejection (PyTorch's trunc_normal_ semantics).
  double truncated_normal(double std, double a);

  std::uint64_t seed() const { return seed_; }
  std::uint64_t stream() const { return stream_; }
  std::uint64_t counter() const { return counter_; }
  void set_counter(std::uint64_t c) { counter_ = c; }

 private:
  std::uint64_t seed_ = 0, stream_ = 0, counter_ = 0;
};

}  // namespace quopt
