// Token shard format: round trips in both widths, the exact bytes of the header, every open() error,
// atomic writing, and mmap reads of shards spanning many pages.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/token_shard.hpp"

namespace fs = std::filesystem;
using quopt::TokenShard;

namespace {

class TokenShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "quopt_shard_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Builds shard bytes by hand (independently of the writer), little-endian.
  static std::string raw_shard(const char magic[8], std::uint32_t version, std::uint32_t width,
                               std::uint64_t count, std::uint64_t vocab,
                               const std::vector<std::uint32_t>& tokens) {
    std::string s(magic, 8);
    auto put = [&s](std::uint64_t v, int bytes) {
      for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    };
    put(version, 4);
    put(width, 4);
    put(count, 8);
    put(vocab, 8);
    for (std::uint32_t t : tokens) put(t, static_cast<int>(width));
    return s;
  }
  void write_file(const std::string& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  static std::string read_file(const std::string& p) {
    std::ifstream f(p, std::ios::binary | std::ios::ate);
    std::string s(static_cast<std::size_t>(f.tellg()), '\0');
    f.seekg(0);
    f.read(s.data(), static_cast<std::streamsize>(s.size()));
    return s;
  }
  // Runs open() and returns the error message (fails the test if it does not throw quopt::Error).
  static std::string open_error(const std::string& p) {
    try {
      TokenShard::open(p);
    } catch (const quopt::Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "open(" << p << ") did not throw";
    return {};
  }
  fs::path dir_;
};

constexpr char kMagic[8] = {'Q', 'U', 'O', 'P', 'T', 'T', 'O', 'K'};

std::vector<std::uint32_t> random_tokens(std::size_t n, std::uint64_t vocab, std::uint64_t seed) {
  quopt::Rng rng(seed, 0);
  std::vector<std::uint32_t> v(n);
  for (auto& t : v) t = static_cast<std::uint32_t>(rng.below(vocab));
  return v;
}

}  // namespace

TEST_F(TokenShardTest, WidthFollowsVocabulary) {
  EXPECT_EQ(quopt::token_width_for_vocab(1), 2u);
  EXPECT_EQ(quopt::token_width_for_vocab(65536), 2u);  // ids 0..65535 fit in uint16
  EXPECT_EQ(quopt::token_width_for_vocab(65537), 4u);
  EXPECT_EQ(quopt::token_width_for_vocab(100352), 4u);
}

TEST_F(TokenShardTest, RoundTripUint16MatchesHandBuiltBytes) {
  const std::uint64_t vocab = 65536;
  auto tokens = random_tokens(1000, vocab, 1);
  tokens[0] = 0;
  tokens[1] = 65535;  // extremes of the 2-byte range
  quopt::write_token_shard(path("a.bin"), tokens, vocab);
  EXPECT_EQ(read_file(path("a.bin")), raw_shard(kMagic, 1, 2, tokens.size(), vocab, tokens));
  EXPECT_FALSE(fs::exists(path("a.bin.tmp")));

  const TokenShard s = TokenShard::open(path("a.bin"));
  EXPECT_EQ(s.size(), tokens.size());
  EXPECT_EQ(s.vocab_size(), vocab);
  EXPECT_EQ(s.width(), 2u);
  EXPECT_EQ(s.path(), path("a.bin"));
  EXPECT_TRUE(s.fully_checked());
  for (std::size_t i = 0; i < tokens.size(); ++i) ASSERT_EQ(s.token(i), tokens[i]) << i;
}

TEST_F(TokenShardTest, RoundTripUint32MatchesHandBuiltBytes) {
  const std::uint64_t vocab = 100352;
  auto tokens = random_tokens(777, vocab, 2);
  tokens[5] = 100351;
  tokens[6] = 70000;  // needs more than 16 bits
  quopt::write_token_shard(path("b.bin"), tokens, vocab);
  EXPECT_EQ(read_file(path("b.bin")), raw_shard(kMagic, 1, 4, tokens.size(), vocab, tokens));
  const TokenShard s = TokenShard::open(path("b.bin"));
  EXPECT_EQ(s.width(), 4u);
  EXPECT_EQ(s.size(), tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) ASSERT_EQ(s.token(i), tokens[i]) << i;
}

TEST_F(TokenShardTest, StreamingWriterAppendsInOrderAndEmptyShardIsValid) {
  {
    quopt::TokenShardWriter w(path("s.bin"), 50);
    const std::vector<std::uint32_t> a = {1, 2, 3};
    const std::vector<std::int32_t> b = {49, 0};
    w.append(a);
    w.append(b);
    EXPECT_FALSE(fs::exists(path("s.bin")));  // only the .tmp exists until finish()
    EXPECT_TRUE(fs::exists(path("s.bin.tmp")));
    w.finish();
  }
  const TokenShard s = TokenShard::open(path("s.bin"));
  ASSERT_EQ(s.size(), 5u);
  const std::uint32_t want[] = {1, 2, 3, 49, 0};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.token(i), want[i]);

  quopt::write_token_shard(path("empty_tokens.bin"), {}, 10);
  EXPECT_EQ(TokenShard::open(path("empty_tokens.bin")).size(), 0u);
}

TEST_F(TokenShardTest, UnfinishedWriterLeavesNothingBehind) {
  {
    quopt::TokenShardWriter w(path("u.bin"), 100);
    const std::vector<std::uint32_t> a = {1, 2, 3};
    w.append(a);
  }
  EXPECT_FALSE(fs::exists(path("u.bin")));
  EXPECT_FALSE(fs::exists(path("u.bin.tmp")));
  // A failing append (id out of range) also leaves nothing.
  {
    quopt::TokenShardWriter w(path("v.bin"), 100);
    const std::vector<std::uint32_t> bad = {5, 100};
    EXPECT_THROW(w.append(bad), quopt::Error);
  }
  EXPECT_FALSE(fs::exists(path("v.bin")));
  EXPECT_FALSE(fs::exists(path("v.bin.tmp")));
}

TEST_F(TokenShardTest, RewritingReplacesAtomically) {
  const std::vector<std::uint32_t> a = {1, 2, 3}, b = {7, 8};
  quopt::write_token_shard(path("r.bin"), a, 10);
  const TokenShard old_map = TokenShard::open(path("r.bin"));
  quopt::write_token_shard(path("r.bin"), b, 10);
  // The old mapping still sees the old file (rename replaced the directory entry, not the data).
  EXPECT_EQ(old_map.size(), 3u);
  EXPECT_EQ(old_map.token(2), 3u);
  const TokenShard now = TokenShard::open(path("r.bin"));
  EXPECT_EQ(now.size(), 2u);
  EXPECT_EQ(now.token(1), 8u);
}

TEST_F(TokenShardTest, LargerThanAPageIsReadThroughTheMapping) {
  const long page = ::sysconf(_SC_PAGESIZE);
  const std::size_t n = static_cast<std::size_t>(page) * 3 + 123;  // > 6 pages of uint16, > 12 of uint32
  for (std::uint64_t vocab : {std::uint64_t{5000}, std::uint64_t{1} << 20}) {
    const auto tokens = random_tokens(n, vocab, vocab);
    const std::string p = path("big" + std::to_string(vocab) + ".bin");
    quopt::write_token_shard(p, tokens, vocab);
    ASSERT_GT(fs::file_size(p), static_cast<std::uintmax_t>(4 * page));
    const TokenShard s = TokenShard::open(p);
    ASSERT_EQ(s.size(), n);
    std::uint64_t sum_got = 0, sum_want = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sum_got += s.token(i);
      sum_want += tokens[i];
    }
    EXPECT_EQ(sum_got, sum_want);
    EXPECT_EQ(s.token(n - 1), tokens[n - 1]);  // the last token, on the last page
    EXPECT_EQ(s.token(static_cast<std::size_t>(page)), tokens[static_cast<std::size_t>(page)]);
  }
}

TEST_F(TokenShardTest, MoveTransfersTheMapping) {
  const std::vector<std::uint32_t> a = {4, 5, 6};
  quopt::write_token_shard(path("m.bin"), a, 10);
  TokenShard s = TokenShard::open(path("m.bin"));
  TokenShard t = std::move(s);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.token(1), 5u);
  TokenShard u;
  u = std::move(t);
  EXPECT_EQ(u.token(2), 6u);
}

// ---------------------------------------------------------------------------------------------------
// Errors: each message names the file and the problem.

TEST_F(TokenShardTest, MissingFile) {
  const std::string msg = open_error(path("nope.bin"));
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("nope.bin")), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST_F(TokenShardTest, DirectoryIsRejected) {
  fs::create_directory(path("adir"));
  const std::string msg = open_error(path("adir"));
  EXPECT_NE(msg.find(path("adir")), std::string::npos) << msg;
}

TEST_F(TokenShardTest, EmptyFile) {
  write_file(path("e.bin"), "");
  const std::string msg = open_error(path("e.bin"));
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("e.bin")), std::string::npos) << msg;
}

TEST_F(TokenShardTest, WrongMagic) {
  write_file(path("text.bin"), "hello, this is a text file and not a token shard at all\n");
  std::string msg = open_error(path("text.bin"));
  EXPECT_NE(msg.find("not a quopt token shard"), std::string::npos) << msg;
  EXPECT_NE(msg.find("quopt tokenize"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("text.bin")), std::string::npos) << msg;
  write_file(path("tiny.bin"), "QUO");  // shorter than the magic
  msg = open_error(path("tiny.bin"));
  EXPECT_NE(msg.find("not a quopt token shard"), std::string::npos) << msg;
}

TEST_F(TokenShardTest, TruncatedHeader) {
  write_file(path("h.bin"), raw_shard(kMagic, 1, 2, 0, 10, {}).substr(0, 20));
  const std::string msg = open_error(path("h.bin"));
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("20 bytes"), std::string::npos) << msg;
}

TEST_F(TokenShardTest, UnsupportedVersion) {
  write_file(path("v.bin"), raw_shard(kMagic, 2, 2, 1, 10, {3}));
  const std::string msg = open_error(path("v.bin"));
  EXPECT_NE(msg.find("version 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("v.bin")), std::string::npos) << msg;
}

TEST_F(TokenShardTest, UnsupportedWidth) {
  write_file(path("w.bin"), raw_shard(kMagic, 1, 3, 1, 10, {3}));
  const std::string msg = open_error(path("w.bin"));
  EXPECT_NE(msg.find("width 3"), std::string::npos) << msg;
  // 2-byte tokens cannot carry a vocabulary above 65536.
  write_file(path("w2.bin"), raw_shard(kMagic, 1, 2, 1, 70000, {3}));
  EXPECT_NE(open_error(path("w2.bin")).find("70000"), std::string::npos);
  write_file(path("w0.bin"), raw_shard(kMagic, 1, 2, 1, 0, {0}));
  EXPECT_NE(open_error(path("w0.bin")).find("invalid vocabulary size 0"), std::string::npos);
  // A header with vocabulary 0 is invalid in itself, even with no token to contradict it.
  write_file(path("w00.bin"), raw_shard(kMagic, 1, 2, 0, 0, {}));
  EXPECT_NE(open_error(path("w00.bin")).find("invalid vocabulary size 0"), std::string::npos);
}

TEST_F(TokenShardTest, TruncatedTokensGiveBothSizes) {
  std::string bytes = raw_shard(kMagic, 1, 2, 10, 100, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  bytes.resize(bytes.size() - 3);  // 32 + 20 - 3 = 49 bytes
  write_file(path("t.bin"), bytes);
  const std::string msg = open_error(path("t.bin"));
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("49 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("52 bytes"), std::string::npos) << msg;
}

TEST_F(TokenShardTest, TrailingBytesGiveBothSizes) {
  std::string bytes = raw_shard(kMagic, 1, 4, 2, 100, {1, 2});
  bytes += "xyz";  // 32 + 8 + 3 = 43 bytes
  write_file(path("x.bin"), bytes);
  const std::string msg = open_error(path("x.bin"));
  EXPECT_NE(msg.find("trailing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("43 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("40 bytes"), std::string::npos) << msg;
}

TEST_F(TokenShardTest, HugeCountDoesNotOverflow) {
  write_file(path("o.bin"), raw_shard(kMagic, 1, 4, ~std::uint64_t{0} / 2, 100, {1}));
  const std::string msg = open_error(path("o.bin"));
  EXPECT_NE(msg.find(path("o.bin")), std::string::npos) << msg;
}

TEST_F(TokenShardTest, TokenOutsideVocabularyIsFoundOnOpen) {
  write_file(path("bad.bin"), raw_shard(kMagic, 1, 2, 4, 100, {1, 99, 100, 5}));
  const std::string msg = open_error(path("bad.bin"));
  EXPECT_NE(msg.find("token id 100"), std::string::npos) << msg;
  EXPECT_NE(msg.find("position 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("bad.bin")), std::string::npos) << msg;
}

TEST_F(TokenShardTest, LazyCheckFindsTokenOutsideVocabularyWhenRead) {
  write_file(path("lazy.bin"), raw_shard(kMagic, 1, 2, 6, 100, {1, 2, 3, 250, 4, 5}));
  const TokenShard s = TokenShard::open(path("lazy.bin"), /*eager_check_limit=*/0);  // opens fine
  EXPECT_FALSE(s.fully_checked());
  EXPECT_NO_THROW(s.check_range(0, 3));
  EXPECT_NO_THROW(s.check_range(4, 6));
  try {
    s.check_range(2, 5);
    ADD_FAILURE() << "expected an error";
  } catch (const quopt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 250 at position 3"), std::string::npos) << e.what();
  }
}

TEST_F(TokenShardTest, WriterRejectsBadInput) {
  EXPECT_THROW(quopt::TokenShardWriter(path("z.bin"), 0), quopt::Error);
  const std::vector<std::uint32_t> bad = {3, 10};
  try {
    quopt::write_token_shard(path("z.bin"), bad, 10);
    ADD_FAILURE() << "expected an error";
  } catch (const quopt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 10"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path("z.bin")));
  // An unwritable location names the temporary file.
  try {
    quopt::TokenShardWriter w(path("no/such/dir/z.bin"), 10);
    ADD_FAILURE() << "expected an error";
  } catch (const quopt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("z.bin.tmp"), std::string::npos) << e.what();
  }
}
