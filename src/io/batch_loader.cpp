#include "io/batch_loader.hpp"

#include <limits>
#include <numeric>
#include <utility>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace quopt {

BatchLoader::BatchLoader(const TokenShard& shard, std::int64_t seq_len, std::uint64_t seed, BatchOrder order)
    : shard_(&shard), seq_len_(seq_len), seed_(seed), order_(order) {
  if (seq_len <= 0) fail("BatchLoader: seq_len must be positive, got ", seq_len);
  const std::uint64_t n = shard.size();
  if (n < static_cast<std::uint64_t>(seq_len) + 1)
    fail("token shard ", shard.path(), " has ", n, " tokens, fewer than seq_len + 1 = ", seq_len + 1,
         " needed for one training window; use more text (or a shorter model.seq_len)");
  if (shard.vocab_size() > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()) + 1)
    fail("token shard ", shard.path(), " has vocabulary size ", shard.vocab_size(),
         ", too large for int32 token tensors");
  const std::uint64_t w = (n - 1) / static_cast<std::uint64_t>(seq_len);
  if (w > std::numeric_limits<std::uint32_t>::max())
    fail("token shard ", shard.path(), " has ", w, " windows of seq_len ", seq_len,
         "; at most 2^32 - 1 supported");
  windows_ = static_cast<std::int64_t>(w);
}

const std::vector<std::uint32_t>& BatchLoader::permutation(std::int64_t epoch) {
  for (auto& c : cache_)
    if (c.epoch == epoch) return c.perm;
  CachedPerm& c = cache_[cache_next_];
  cache_next_ ^= 1;
  c.epoch = epoch;
  c.perm.resize(static_cast<std::size_t>(windows_));
  std::iota(c.perm.begin(), c.perm.end(), std::uint32_t{0});
  // Fisher-Yates (Durstenfeld): for i = W-1 .. 1 swap element i with a uniform j in [0, i].
  Rng rng(seed_, static_cast<std::uint64_t>(epoch));
  for (std::size_t i = c.perm.size() - 1; i > 0; --i) {
    const auto j = static_cast<std::size_t>(rng.below(i + 1));
    std::swap(c.perm[i], c.perm[j]);
  }
  return c.perm;
}

std::int64_t BatchLoader::window_of_sample(std::int64_t sample) {
  QUOPT_CHECK(sample >= 0, "BatchLoader: negative sample index ", sample);
  const std::int64_t epoch = sample / windows_, pos = sample % windows_;
  if (order_ == BatchOrder::Sequential) return pos;
  return permutation(epoch)[static_cast<std::size_t>(pos)];
}

void BatchLoader::load(std::int64_t batch_index, std::int64_t batch_size, std::int64_t row_begin,
                       std::int64_t row_end, Tensor& inputs, Tensor& targets) {
  if (batch_size <= 0) fail("BatchLoader::load: batch_size must be positive, got ", batch_size);
  if (batch_index < 0) fail("BatchLoader::load: batch_index must be >= 0, got ", batch_index);
  if (!(0 <= row_begin && row_begin <= row_end && row_end <= batch_size))
    fail("BatchLoader::load: rows [", row_begin, ", ", row_end, ") are not within the batch of ", batch_size);
  if (batch_index > (std::numeric_limits<std::int64_t>::max() - batch_size) / batch_size)
    fail("BatchLoader::load: batch_index ", batch_index, " x batch_size ", batch_size, " overflows");
  const std::int64_t rows = row_end - row_begin;
  const Shape shape = {rows, seq_len_};
  for (Tensor* t : {&inputs, &targets}) {
    if (!t->defined()) {
      *t = Tensor::empty(shape, DType::I32);
    } else if (t->dtype() != DType::I32 || t->shape() != shape) {
      fail("BatchLoader::load: expected an i32 tensor of shape ", shape_str(shape), ", got ", t->describe());
    }
  }
  if (rows == 0) return;
  const bool host = inputs.is_host() && targets.is_host();
  Tensor in_h = host ? inputs : Tensor::empty(shape, DType::I32);
  Tensor tg_h = host ? targets : Tensor::empty(shape, DType::I32);
  std::int32_t* in = in_h.data<std::int32_t>();
  std::int32_t* tg = tg_h.data<std::int32_t>();
  const TokenShard& shard = *shard_;
  const auto L = static_cast<std::size_t>(seq_len_);
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t sample = batch_index * batch_size + row_begin + r;
    const auto start = static_cast<std::uint64_t>(window_of_sample(sample)) * L;
    shard.check_range(start, start + L + 1);
    std::int32_t* in_row = in + static_cast<std::size_t>(r) * L;
    std::int32_t* tg_row = tg + static_cast<std::size_t>(r) * L;
    for (std::size_t k = 0; k < L; ++k) {
      in_row[k] = static_cast<std::int32_t>(shard.token(start + k));
      tg_row[k] = static_cast<std::int32_t>(shard.token(start + k + 1));
    }
  }
  if (!host) {
    inputs.copy_from(in_h);
    targets.copy_from(tg_h);
  }
}

}  // namespace quopt
