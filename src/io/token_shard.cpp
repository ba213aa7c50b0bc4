#include "io/token_shard.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace quopt {

namespace {

std::uint32_t load_u32(const unsigned char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint64_t load_u64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void store_u32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void store_u64(unsigned char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

// Closes a file descriptor on scope exit (the mapping stays valid after close).
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

constexpr const char* kHowToCreate = "create one with `quopt tokenize`";

}  // namespace

std::uint32_t token_width_for_vocab(std::uint64_t vocab_size) {
  return vocab_size <= 65536 ? 2 : 4;
}

// ---------------------------------------------------------------------------------------------------
// Reader

TokenShard TokenShard::open(const std::string& path, std::uint64_t eager_check_limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open token shard ", path, ": ", std::strerror(errno));
  FdGuard guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("cannot stat token shard ", path, ": ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("token shard ", path, " is not a regular file; ", kHowToCreate);
  const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
  if (file_bytes == 0) fail("token shard ", path, " is empty (0 bytes); ", kHowToCreate);

  unsigned char header[kTokenShardHeaderBytes] = {};
  const std::size_t header_bytes = file_bytes < kTokenShardHeaderBytes ? file_bytes : kTokenShardHeaderBytes;
  std::size_t got = 0;
  while (got < header_bytes) {
    const ssize_t n = ::pread(fd, header + got, header_bytes - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      fail("cannot read the header of token shard ", path, ": ", n < 0 ? std::strerror(errno) : "EOF");
    got += static_cast<std::size_t>(n);
  }
  if (header_bytes < sizeof(kTokenShardMagic) ||
      std::memcmp(header, kTokenShardMagic, sizeof(kTokenShardMagic)) != 0)
    fail(path, " is not a quopt token shard (its first bytes are not \"QUOPTTOK\"); ", kHowToCreate);
  if (header_bytes < kTokenShardHeaderBytes)
    fail("token shard ", path, " is truncated: ", file_bytes, " bytes, shorter than the ",
         kTokenShardHeaderBytes, "-byte header; recreate it with `quopt tokenize`");

  const std::uint32_t version = load_u32(header + 8);
  const std::uint32_t width = load_u32(header + 12);
  const std::uint64_t count = load_u64(header + 16);
  const std::uint64_t vocab = load_u64(header + 24);
  if (version != kTokenShardVersion)
    fail("token shard ", path, " has unsupported format version ", version, " (this quopt reads version ",
         kTokenShardVersion, "); recreate it with this quopt's `quopt tokenize`");
  if (width != 2 && width != 4)
    fail("token shard ", path, " has unsupported token width ", width,
         " bytes (supported: 2 = uint16, 4 = uint32)");
  if (vocab == 0 || vocab > (std::uint64_t{1} << 32))
    fail("token shard ", path, " has an invalid vocabulary size ", vocab, " in its header (must be 1..2^32)");
  if (width == 2 && vocab > 65536)
    fail("token shard ", path, " stores 2-byte tokens but declares vocabulary size ", vocab,
         " (> 65536 ids cannot be stored in 2 bytes); the file is corrupt, recreate it");
  const std::uint64_t max_count =
      (std::numeric_limits<std::uint64_t>::max() - kTokenShardHeaderBytes) / width;
  if (count > max_count)
    fail("token shard ", path, " declares an impossible token count ", count, "; the file is corrupt");
  const std::uint64_t expected = kTokenShardHeaderBytes + count * width;
  if (file_bytes != expected)
    fail("token shard ", path, " has ", file_bytes, " bytes but its header (", count, " tokens x ", width,
         " bytes + ", kTokenShardHeaderBytes, "-byte header) needs ", expected, " bytes: the file is ",
         file_bytes < expected ? "truncated" : "followed by trailing bytes",
         "; recreate it with `quopt tokenize`");

  void* map = ::mmap(nullptr, static_cast<std::size_t>(file_bytes), PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) fail("cannot mmap token shard ", path, ": ", std::strerror(errno));
  TokenShard shard;
  shard.path_ = path;
  shard.map_ = map;
  shard.map_bytes_ = static_cast<std::size_t>(file_bytes);
  shard.tokens_ = static_cast<const unsigned char*>(map) + kTokenShardHeaderBytes;
  shard.count_ = count;
  shard.vocab_size_ = vocab;
  shard.width_ = width;
  if (count <= eager_check_limit) {
    shard.check_range(0, count);
    shard.fully_checked_ = true;
  }
  return shard;
}

TokenShard::~TokenShard() {
  release();
}

TokenShard::TokenShard(TokenShard&& other) noexcept {
  *this = std::move(other);
}

TokenShard& TokenShard::operator=(TokenShard&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    tokens_ = std::exchange(other.tokens_, nullptr);
    count_ = std::exchange(other.count_, 0);
    vocab_size_ = std::exchange(other.vocab_size_, 0);
    width_ = std::exchange(other.width_, 0);
    fully_checked_ = std::exchange(other.fully_checked_, false);
  }
  return *this;
}

void TokenShard::release() noexcept {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  tokens_ = nullptr;
}

void TokenShard::check_range(std::uint64_t begin, std::uint64_t end) const {
  if (fully_checked_) return;
  QUOPT_CHECK(begin <= end && end <= count_, "TokenShard::check_range: [", begin, ", ", end, ") outside the ",
              count_, " tokens of ", path_);
  for (std::uint64_t i = begin; i < end; ++i) {
    const std::uint32_t t = token(i);
    if (t >= vocab_size_)
      fail("token shard ", path_, " holds token id ", t, " at position ", i,
           ", not below its vocabulary size ", vocab_size_,
           "; the file is corrupt or was written with a different tokenizer, recreate it");
  }
}

// ---------------------------------------------------------------------------------------------------
// Writer

TokenShardWriter::TokenShardWriter(std::string path, std::uint64_t vocab_size)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp"), vocab_size_(vocab_size) {
  if (vocab_size == 0 || vocab_size > (std::uint64_t{1} << 32))
    fail("cannot write token shard ", path_, ": vocabulary size ", vocab_size, " is outside 1..2^32");
  width_ = token_width_for_vocab(vocab_size);
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) fail("cannot create ", tmp_path_, ": ", std::strerror(errno));
  write_header();
}

TokenShardWriter::~TokenShardWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) std::remove(tmp_path_.c_str());
}

void TokenShardWriter::write_header() {
  unsigned char header[kTokenShardHeaderBytes] = {};
  std::memcpy(header, kTokenShardMagic, sizeof(kTokenShardMagic));
  store_u32(header + 8, kTokenShardVersion);
  store_u32(header + 12, width_);
  store_u64(header + 16, count_);
  store_u64(header + 24, vocab_size_);
  if (std::fwrite(header, 1, sizeof(header), file_) != sizeof(header))
    fail("cannot write ", tmp_path_, ": ", std::strerror(errno));
}

void TokenShardWriter::append(std::span<const std::uint32_t> ids) {
  QUOPT_CHECK(file_ != nullptr && !finished_, "TokenShardWriter::append after finish() for ", path_);
  std::vector<unsigned char> buf(ids.size() * width_);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::uint32_t t = ids[i];
    if (t >= vocab_size_)
      fail("cannot write token id ", t, " to ", path_, ": not below the vocabulary size ", vocab_size_);
    for (std::uint32_t b = 0; b < width_; ++b) buf[i * width_ + b] = static_cast<unsigned char>(t >> (8 * b));
  }
  if (!buf.empty() && std::fwrite(buf.data(), 1, buf.size(), file_) != buf.size())
    fail("cannot write ", tmp_path_, ": ", std::strerror(errno));
  count_ += ids.size();
}

void TokenShardWriter::append(std::span<const std::int32_t> ids) {
  std::vector<std::uint32_t> u(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0) fail("cannot write negative token id ", ids[i], " to ", path_);
    u[i] = static_cast<std::uint32_t>(ids[i]);
  }
  append(std::span<const std::uint32_t>(u));
}

void TokenShardWriter::finish() {
  QUOPT_CHECK(file_ != nullptr && !finished_, "TokenShardWriter::finish called twice for ", path_);
  if (std::fseek(file_, 0, SEEK_SET) != 0) fail("cannot seek in ", tmp_path_, ": ", std::strerror(errno));
  write_header();
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int flush_errno = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed)
    fail("cannot write ", tmp_path_, ": ", std::strerror(flushed ? errno : flush_errno));
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    fail("cannot rename ", tmp_path_, " to ", path_, ": ", std::strerror(errno));
  finished_ = true;
}

void write_token_shard(const std::string& path, std::span<const std::uint32_t> ids,
                       std::uint64_t vocab_size) {
  TokenShardWriter w(path, vocab_size);
  w.append(ids);
  w.finish();
}

}  // namespace quopt
