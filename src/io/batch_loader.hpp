#pragma once
// BatchLoader: turns a token shard into (inputs, targets) batches. Stateless apart from a cache: the
// content of a batch is a pure function of (shard, seq_len, seed, batch_index, batch_size), so a
// resumed run only needs the step number, and data-parallel ranks each load just their rows of the
// same global batch (the global batch does not depend on the rank count).
//
// The shard is cut into W = (size - 1) / seq_len windows; window w is the seq_len + 1 tokens starting
// at w * seq_len (inputs never overlap; the last token of one window is the first of the next).
// Global sample s = batch_index * batch_size + row belongs to epoch e = s / W and uses window
//   Shuffled:   perm_e[s mod W], perm_e a Fisher-Yates permutation of [0, W) drawn from Rng(seed, e)
//   Sequential: s mod W (in order, for validation)
// so every window is used exactly once per epoch. inputs = window[0, seq_len), targets = window[1, seq_len].
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"
#include "io/token_shard.hpp"

namespace quopt {

enum class BatchOrder { Shuffled, Sequential };

class BatchLoader {
 public:
  // `shard` must outlive the loader. Throws quopt::Error (naming the shard) if it has fewer than
  // seq_len + 1 tokens or a vocabulary that does not fit int32.
  BatchLoader(const TokenShard& shard, std::int64_t seq_len, std::uint64_t seed,
              BatchOrder order = BatchOrder::Shuffled);

  // Fills rows [row_begin, row_end) of global batch `batch_index` (of batch_size rows) into i32
  // tensors of shape [row_end - row_begin, seq_len]. An undefined tensor is allocated on the host; a
  // defined one must already have that shape and dtype (any device: filled through a host copy).
  void load(std::int64_t batch_index, std::int64_t batch_size, std::int64_t row_begin, std::int64_t row_end,
            Tensor& inputs, Tensor& targets);

  // The window used by global sample s.
  std::int64_t window_of_sample(std::int64_t sample);
  std::int64_t num_windows() const { return windows_; }
  std::int64_t seq_len() const { return seq_len_; }
  std::uint64_t seed() const { return seed_; }
  BatchOrder order() const { return order_; }
  const TokenShard& shard() const { return *shard_; }

 private:
  const std::vector<std::uint32_t>& permutation(std::int64_t epoch);
  const TokenShard* shard_;
  std::int64_t seq_len_, windows_ = 0;
  std::uint64_t seed_;
  BatchOrder order_;
  // The two most recently used epochs' permutations (a batch can straddle an epoch boundary).
  struct CachedPerm {
    std::int64_t epoch = -1;
    std::vector<std::uint32_t> perm;
  };
  CachedPerm cache_[2];
  int cache_next_ = 0;
};

}  // namespace quopt
