// BatchLoader: windows, shifts, epochs, rank slices, seeds, the sequential mode and errors, on shards
// whose token at position i is i itself (so a row's first input tells which window it came from).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/tensor.hpp"
#include "io/batch_loader.hpp"
#include "io/token_shard.hpp"

namespace fs = std::filesystem;
using quopt::BatchLoader;
using quopt::BatchOrder;
using quopt::Tensor;
using quopt::TokenShard;

namespace {

class BatchLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "quopt_batch_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A shard of n tokens with token(i) == i.
  TokenShard iota_shard(std::uint32_t n, const std::string& name = "iota.bin") {
    std::vector<std::uint32_t> t(n);
    std::iota(t.begin(), t.end(), 0u);
    const std::string p = (dir_ / name).string();
    quopt::write_token_shard(p, t, 1u << 20);
    return TokenShard::open(p);
  }
  // Window index of each row: the first input token of a row is window * seq_len.
  static std::vector<std::int64_t> windows(const Tensor& inputs, std::int64_t seq_len) {
    std::vector<std::int64_t> w;
    for (std::int64_t r = 0; r < inputs.dim(0); ++r)
      w.push_back(static_cast<std::int64_t>(inputs.item(r * seq_len)) / seq_len);
    return w;
  }
  static std::vector<std::int32_t> values(const Tensor& t) {
    const auto* p = t.data<std::int32_t>();
    return std::vector<std::int32_t>(p, p + t.numel());
  }
  fs::path dir_;
};

}  // namespace

TEST_F(BatchLoaderTest, RowsAreContiguousWindowsAndTargetsAreShiftedByOne) {
  const auto shard = iota_shard(1000);
  const std::int64_t L = 16;
  BatchLoader loader(shard, L, 42);
  EXPECT_EQ(loader.num_windows(), (1000 - 1) / 16);  // 62
  Tensor in, tg;
  loader.load(3, 8, 0, 8, in, tg);
  ASSERT_EQ(in.shape(), (quopt::Shape{8, L}));
  ASSERT_EQ(tg.shape(), (quopt::Shape{8, L}));
  EXPECT_EQ(in.dtype(), quopt::DType::I32);
  for (std::int64_t r = 0; r < 8; ++r) {
    const auto start = static_cast<std::int64_t>(in.item(r * L));
    EXPECT_EQ(start % L, 0) << "windows start at multiples of seq_len";
    for (std::int64_t k = 0; k < L; ++k) {
      EXPECT_EQ(in.item(r * L + k), static_cast<double>(start + k));
      EXPECT_EQ(tg.item(r * L + k), static_cast<double>(start + k + 1));  // next token
    }
    EXPECT_LE(start + L, 999);  // the last target is inside the shard
  }
}

TEST_F(BatchLoaderTest, EveryWindowExactlyOncePerEpoch) {
  const auto shard = iota_shard(12 * 37 + 5);  // W = 37 windows of 12 (the tail is never used)
  const std::int64_t L = 12, B = 5;            // 37 is not a multiple of 5: batches straddle epochs
  BatchLoader loader(shard, L, 7);
  ASSERT_EQ(loader.num_windows(), 37);
  std::vector<std::int64_t> seen;
  for (std::int64_t b = 0; b < 3 * 37 / B + 1; ++b) {
    Tensor in, tg;
    loader.load(b, B, 0, B, in, tg);
    for (auto w : windows(in, L)) seen.push_back(w);
  }
  std::vector<std::int64_t> all(37);
  std::iota(all.begin(), all.end(), 0);
  std::vector<std::vector<std::int64_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<std::int64_t> ep(seen.begin() + e * 37, seen.begin() + (e + 1) * 37);
    epochs.push_back(ep);
    std::sort(ep.begin(), ep.end());
    EXPECT_EQ(ep, all) << "epoch " << e;
  }
  // Each epoch is reshuffled, and the order is not the identity.
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
  EXPECT_NE(epochs[0], all);
  EXPECT_EQ(loader.window_of_sample(37 + 4), epochs[1][4]);
}

TEST_F(BatchLoaderTest, OrderIsTheFisherYatesPermutationOfRngSeedEpoch) {
  // The documented order, computed here from its definition.
  const auto shard = iota_shard(8 * 20 + 1);
  BatchLoader loader(shard, 8, 1234);
  const std::size_t W = 20;
  for (std::uint64_t e = 0; e < 2; ++e) {
    std::vector<std::int64_t> perm(W);
    std::iota(perm.begin(), perm.end(), 0);
    quopt::Rng rng(1234, e);
    for (std::size_t i = W - 1; i >= 1; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
    for (std::size_t s = 0; s < W; ++s)
      EXPECT_EQ(loader.window_of_sample(static_cast<std::int64_t>(e * W + s)), perm[s]) << e << " " << s;
  }
}

TEST_F(BatchLoaderTest, RankSlicesConcatenateToTheFullBatch) {
  const auto shard = iota_shard(3000);
  const std::int64_t L = 10, B = 12;
  BatchLoader full_loader(shard, L, 99);
  for (std::int64_t b : {0, 1, 24, 25}) {  // 299 windows: batch 24 straddles the epoch boundary
    Tensor in, tg;
    full_loader.load(b, B, 0, B, in, tg);
    const auto want_in = values(in), want_tg = values(tg);
    for (std::int64_t k : {0, 1, 5, 11, 12}) {
      BatchLoader rank_loader(shard, L, 99);  // a fresh loader, as on another rank
      Tensor in_a, tg_a, in_b, tg_b;
      rank_loader.load(b, B, 0, k, in_a, tg_a);
      rank_loader.load(b, B, k, B, in_b, tg_b);
      EXPECT_EQ(in_a.dim(0), k);
      EXPECT_EQ(in_b.dim(0), B - k);
      std::vector<std::int32_t> got_in = k > 0 ? values(in_a) : std::vector<std::int32_t>{};
      std::vector<std::int32_t> got_tg = k > 0 ? values(tg_a) : std::vector<std::int32_t>{};
      if (k < B) {
        const auto vi = values(in_b), vt = values(tg_b);
        got_in.insert(got_in.end(), vi.begin(), vi.end());
        got_tg.insert(got_tg.end(), vt.begin(), vt.end());
      }
      EXPECT_EQ(got_in, want_in) << "batch " << b << " split at " << k;
      EXPECT_EQ(got_tg, want_tg) << "batch " << b << " split at " << k;
    }
  }
}

TEST_F(BatchLoaderTest, SeedsDetermineTheOrder) {
  const auto shard = iota_shard(5000);
  const std::int64_t L = 20, B = 16;
  BatchLoader a(shard, L, 5), b(shard, L, 5), c(shard, L, 6);
  bool any_difference = false;
  for (std::int64_t i = 0; i < 4; ++i) {
    Tensor ia, ta, ib, tb, ic, tc;
    a.load(i, B, 0, B, ia, ta);
    b.load(i, B, 0, B, ib, tb);
    c.load(i, B, 0, B, ic, tc);
    EXPECT_EQ(values(ia), values(ib));
    EXPECT_EQ(values(ta), values(tb));
    any_difference = any_difference || values(ia) != values(ic);
  }
  EXPECT_TRUE(any_difference) << "seed 6 produced the same batches as seed 5";
  // Loading out of order (as after a resume) gives the same batch.
  Tensor x1, y1, x2, y2;
  a.load(2, B, 0, B, x1, y1);
  BatchLoader fresh(shard, L, 5);
  fresh.load(2, B, 0, B, x2, y2);
  EXPECT_EQ(values(x1), values(x2));
}

TEST_F(BatchLoaderTest, SequentialModeReadsWindowsInOrderAndWraps) {
  const auto shard = iota_shard(8 * 10 + 3);  // W = 10
  BatchLoader loader(shard, 8, 1, BatchOrder::Sequential);
  Tensor in, tg;
  loader.load(0, 4, 0, 4, in, tg);
  EXPECT_EQ(windows(in, 8), (std::vector<std::int64_t>{0, 1, 2, 3}));
  Tensor in3, tg3;
  loader.load(2, 4, 1, 4, in3, tg3);  // samples 9, 10, 11 -> windows 9, 0, 1
  EXPECT_EQ(windows(in3, 8), (std::vector<std::int64_t>{9, 0, 1}));
  BatchLoader other_seed(shard, 8, 777, BatchOrder::Sequential);
  EXPECT_EQ(other_seed.window_of_sample(13), 3);
}

TEST_F(BatchLoaderTest, ExactlyOneWindowAndReusedTensors) {
  const auto shard = iota_shard(33);  // seq_len + 1 tokens: W = 1
  BatchLoader loader(shard, 32, 3);
  EXPECT_EQ(loader.num_windows(), 1);
  Tensor in = Tensor::zeros({2, 32}, quopt::DType::I32), tg = Tensor::zeros({2, 32}, quopt::DType::I32);
  const void* in_ptr = in.raw();
  loader.load(5, 2, 0, 2, in, tg);
  EXPECT_EQ(in.raw(), in_ptr) << "a preallocated tensor of the right shape is filled in place";
  EXPECT_EQ(in.item(32 + 31), 31.0);
  EXPECT_EQ(tg.item(32 + 31), 32.0);
}

TEST_F(BatchLoaderTest, Errors) {
  const auto small = iota_shard(32, "small.bin");
  try {
    BatchLoader l(small, 32, 1);
    ADD_FAILURE() << "expected an error";
  } catch (const quopt::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("small.bin"), std::string::npos) << msg;
    EXPECT_NE(msg.find("32 tokens"), std::string::npos) << msg;
    EXPECT_NE(msg.find("33"), std::string::npos) << msg;
  }
  EXPECT_THROW(BatchLoader(small, 0, 1), quopt::Error);

  const auto shard = iota_shard(200);
  BatchLoader loader(shard, 8, 1);
  Tensor in, tg;
  EXPECT_THROW(loader.load(0, 4, 2, 1, in, tg), quopt::Error);   // row_end < row_begin
  EXPECT_THROW(loader.load(0, 4, 0, 5, in, tg), quopt::Error);   // beyond the batch
  EXPECT_THROW(loader.load(-1, 4, 0, 4, in, tg), quopt::Error);  // negative batch
  EXPECT_THROW(loader.load(0, 0, 0, 0, in, tg), quopt::Error);   // empty batch size
  Tensor wrong = Tensor::zeros({4, 7}, quopt::DType::I32), t2;
  EXPECT_THROW(loader.load(0, 4, 0, 4, wrong, t2), quopt::Error);
  Tensor wrong_type = Tensor::zeros({4, 8}, quopt::DType::F32), t3;
  EXPECT_THROW(loader.load(0, 4, 0, 4, wrong_type, t3), quopt::Error);
}

TEST_F(BatchLoaderTest, LazilyCheckedShardRejectsABadWindowWhenLoaded) {
  // 3 windows of 4 (+1) tokens: window 2 holds values 9..13, the only ones >= 10.
  std::vector<std::uint32_t> t = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
  const std::string p = (dir_ / "lazy.bin").string();
  quopt::write_token_shard(p, t, 100);
  // Patch the header's vocabulary size to 10 (bytes 24-31) so ids 10..13 are out of range.
  {
    std::FILE* f = std::fopen(p.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 24, SEEK_SET);
    const unsigned char v[8] = {10, 0, 0, 0, 0, 0, 0, 0};
    std::fwrite(v, 1, 8, f);
    std::fclose(f);
  }
  EXPECT_THROW(TokenShard::open(p), quopt::Error);  // small shards are checked on open
  const auto shard = TokenShard::open(p, /*eager_check_limit=*/0);
  BatchLoader loader(shard, 4, 1, BatchOrder::Sequential);
  Tensor in, tg;
  EXPECT_NO_THROW(loader.load(0, 2, 0, 2, in, tg));  // windows 0 and 1: tokens 1..9
  Tensor in2, tg2;
  try {
    loader.load(1, 2, 0, 1, in2, tg2);  // window 2: tokens 9..13
    ADD_FAILURE() << "expected an error";
  } catch (const quopt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 10"), std::string::npos) << e.what();
  }
}
