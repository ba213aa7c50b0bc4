#pragma once
// Token shards: a flat little-endian file of token ids behind a 32-byte header, read through a
// read-only mmap. Layout (docs/data.md):
//   bytes  0-7   magic "QUOPTTOK"
//   bytes  8-11  u32 format version (1)
//   bytes 12-15  u32 token width in bytes (2: uint16, 4: uint32)
//   bytes 16-23  u64 token count
//   bytes 24-31  u64 vocabulary size (every token id is < this)
//   bytes 32-    the tokens, `width` bytes each
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>

namespace quopt {

static_assert(
    std::endian::native == std::endian::little,
    "token shards are read by reinterpreting little-endian bytes; add byte swapping for big-endian hosts");

inline constexpr char kTokenShardMagic[8] = {'Q', 'U', 'O', 'P', 'T', 'T', 'O', 'K'};
inline constexpr std::uint32_t kTokenShardVersion = 1;
inline constexpr std::size_t kTokenShardHeaderBytes = 32;
// Shards with at most this many tokens have every id checked against the vocabulary on open (a linear
// scan, ~12 ms per 16 Mi tokens from the page cache; quopt choice); larger ones are checked window by window
// as they are read (TokenShard::check_range, called by the BatchLoader), so opening a big shard stays O(1).
inline constexpr std::uint64_t kTokenShardEagerCheckLimit = std::uint64_t{1} << 26;

// The width a writer uses for a vocabulary: 2 bytes when every id fits in uint16.
std::uint32_t token_width_for_vocab(std::uint64_t vocab_size);

class TokenShard {
 public:
  // Maps and validates the shard; throws quopt::Error naming the file and the problem. Token ids are
  // checked against the vocabulary here when size() <= eager_check_limit, otherwise by check_range.
  static TokenShard open(const std::string& path,
                         std::uint64_t eager_check_limit = kTokenShardEagerCheckLimit);

  TokenShard() = default;
  ~TokenShard();
  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  std::uint64_t size() const { return count_; }
  std::uint64_t vocab_size() const { return vocab_size_; }
  std::uint32_t width() const { return width_; }
  const std::string& path() const { return path_; }
  // Token i (no bounds or vocabulary check; i < size()).
  std::uint32_t token(std::uint64_t i) const {
    return width_ == 2 ? reinterpret_cast<const std::uint16_t*>(tokens_)[i]
                       : reinterpret_cast<const std::uint32_t*>(tokens_)[i];
  }
  // Throws quopt::Error (file, position, id) if a token in [begin, end) is >= vocab_size(). A no-op for
  // shards already checked on open.
  void check_range(std::uint64_t begin, std::uint64_t end) const;
  // Whether every token was checked against the vocabulary when the shard was opened.
  bool fully_checked() const { return fully_checked_; }

 private:
  void release() noexcept;
  std::string path_;
  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  const unsigned char* tokens_ = nullptr;
  std::uint64_t count_ = 0, vocab_size_ = 0;
  std::uint32_t width_ = 0;
  bool fully_checked_ = false;
};

// Streams tokens into "<path>.tmp" and renames it to `path` on finish(); the real name never holds a
// partial shard. Dropping an unfinished writer deletes the temporary file.
class TokenShardWriter {
 public:
  TokenShardWriter(std::string path, std::uint64_t vocab_size);
  ~TokenShardWriter();
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;

  // Appends ids; throws quopt::Error if one is >= vocab_size.
  void append(std::span<const std::uint32_t> ids);
  void append(std::span<const std::int32_t> ids);
  // Writes the header, flushes, closes and renames into place.
  void finish();
  std::uint64_t count() const { return count_; }

 private:
  void write_header();
  std::string path_, tmp_path_;
  std::FILE* file_ = nullptr;
  std::uint64_t vocab_size_ = 0, count_ = 0;
  std::uint32_t width_ = 0;
  bool finished_ = false;
};

// One-shot helper: writes `ids` as a shard at `path` (atomically, as above).
void write_token_shard(const std::string& path, std::span<const std::uint32_t> ids, std::uint64_t vocab_size);

}  // namespace quopt
