// Tokenizer (SentencePiece wrapper) and tokenize_corpus on synthetic text generated in-process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/run_config.hpp"
#include "io/token_shard.hpp"
#include "io/tokenize.hpp"
#include "io/tokenizer.hpp"
#include "support/error_of.hpp"
#include "support/text_gen.hpp"

namespace fs = std::filesystem;
using quopt::Tokenizer;
using quopt::testing::error_of;

namespace {

// The tokenizer tests' text: 300 words, index floor(300 u^3), stream 7.
quopt::testing::TextGen text_gen(std::uint64_t seed) {
  return {seed, 7, 300, 3};
}

std::string spaces_for_newlines(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "quopt_tok_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static void write(const std::string& p, const std::string& text) {
    std::ofstream f(p, std::ios::binary);
    f << text;
  }
  static std::string read(const std::string& p) {
    std::ifstream f(p, std::ios::binary | std::ios::ate);
    std::string s(static_cast<std::size_t>(f.tellg()), '\0');
    f.seekg(0);
    f.read(s.data(), static_cast<std::streamsize>(s.size()));
    return s;
  }
  // Writes `ndocs` generated documents separated by blank lines; returns them.
  std::vector<std::string> write_corpus(const std::string& p, int ndocs, std::uint64_t seed) {
    auto gen = text_gen(seed);
    std::vector<std::string> docs;
    std::string text;
    for (int i = 0; i < ndocs; ++i) {
      docs.push_back(gen.document());
      text += docs.back() + (i % 5 == 0 ? "\n  \n\n" : "\n\n");  // blank lines may hold spaces
    }
    write(p, text);
    return docs;
  }
  static quopt::TokenizerTrainOptions opts(std::int64_t vocab) {
    quopt::TokenizerTrainOptions o;
    o.vocab_size = vocab;
    o.num_threads = 2;
    return o;
  }
  fs::path dir_;
};

}  // namespace

TEST(TokenizerHelpers, EvenlySpacedSubsetKeepsOrderAndSpreads) {
  std::vector<std::string> v;
  for (int i = 0; i < 10; ++i) v.push_back(std::to_string(i));
  EXPECT_EQ(quopt::evenly_spaced_subset(v, 3), (std::vector<std::string>{"0", "3", "6"}));  // floor(k*10/3)
  EXPECT_EQ(quopt::evenly_spaced_subset(v, 4), (std::vector<std::string>{"0", "2", "5", "7"}));
  EXPECT_EQ(quopt::evenly_spaced_subset(v, 0), v);
  EXPECT_EQ(quopt::evenly_spaced_subset(v, 10), v);
  EXPECT_EQ(quopt::evenly_spaced_subset(v, 99), v);
  const auto nine = quopt::evenly_spaced_subset(v, 9);
  EXPECT_EQ(nine.size(), 9u);
  EXPECT_TRUE(std::is_sorted(nine.begin(), nine.end()));
}

TEST(TokenizerHelpers, NonblankLines) {
  EXPECT_EQ(quopt::nonblank_lines("a b\r\n\n  \t\nc\n\nd"), (std::vector<std::string>{"a b", "c", "d"}));
  EXPECT_TRUE(quopt::nonblank_lines("\n \n").empty());
}

TEST_F(TokenizerTest, TrainsEncodesDecodes) {
  const auto docs = write_corpus(path("a.txt"), 300, 1);
  const Tokenizer tok = Tokenizer::train({path("a.txt")}, opts(400));
  EXPECT_EQ(tok.vocab_size(), 400);
  EXPECT_GE(tok.eos_id(), 0);
  EXPECT_LT(tok.eos_id(), 400);

  std::int64_t bytes = 0, tokens = 0;
  for (const auto& d : docs) {
    const auto ids = tok.encode(d);
    for (auto id : ids) ASSERT_TRUE(id >= 0 && id < 400);
    EXPECT_EQ(tok.decode(ids), spaces_for_newlines(d));  // newlines are normalised to spaces
    bytes += static_cast<std::int64_t>(d.size());
    tokens += static_cast<std::int64_t>(ids.size());
  }
  // BPE merges must compress the text it was trained on well beyond one token per byte.
  EXPECT_GT(static_cast<double>(bytes) / static_cast<double>(tokens), 2.0);

  // Byte fallback: characters never seen in training still round-trip, without <unk> (id 0).
  const std::string novel = "Zürich 42 ☃ — naïve QUIRK";
  const auto ids = tok.encode(novel);
  EXPECT_EQ(tok.decode(ids), novel);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 0);
  EXPECT_TRUE(tok.encode("").empty());
}

TEST_F(TokenizerTest, TrainingIsDeterministicAndSaveLoadRoundTrips) {
  write_corpus(path("a.txt"), 200, 2);
  const Tokenizer a = Tokenizer::train({path("a.txt")}, opts(350));
  const Tokenizer b = Tokenizer::train({path("a.txt")}, opts(350));
  EXPECT_TRUE(a.serialized() == b.serialized());

  a.save(path("tok.model"));
  EXPECT_FALSE(fs::exists(path("tok.model.tmp")));
  const Tokenizer c = Tokenizer::load(path("tok.model"));
  EXPECT_TRUE(c.serialized() == a.serialized());
  EXPECT_EQ(c.vocab_size(), a.vocab_size());
  EXPECT_EQ(c.eos_id(), a.eos_id());
  const std::string text = "kalo miter dis ro, ve sun.";
  EXPECT_EQ(c.encode(text), a.encode(text));
  EXPECT_EQ(c.piece(a.eos_id()), "</s>");
}

TEST_F(TokenizerTest, SentenceCapChangesTheModel) {
  write_corpus(path("a.txt"), 300, 3);
  auto o = opts(350);
  const Tokenizer full = Tokenizer::train({path("a.txt")}, o);
  o.max_sentences = 20;
  const Tokenizer capped = Tokenizer::train({path("a.txt")}, o);
  EXPECT_EQ(capped.vocab_size(), 350);
  EXPECT_TRUE(capped.serialized() != full.serialized());
}

TEST_F(TokenizerTest, Errors) {
  write_corpus(path("a.txt"), 50, 4);
  std::string msg = error_of([&] { Tokenizer::train({}, opts(300)); });
  EXPECT_NE(msg.find("at least one input"), std::string::npos) << msg;

  msg = error_of([&] { Tokenizer::train({path("a.txt"), path("missing.txt")}, opts(300)); });
  EXPECT_NE(msg.find(path("missing.txt")), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;

  write(path("blank.txt"), "\n   \n\t\n");
  msg = error_of([&] { Tokenizer::train({path("blank.txt")}, opts(300)); });
  EXPECT_NE(msg.find(path("blank.txt")), std::string::npos) << msg;
  EXPECT_NE(msg.find("no text"), std::string::npos) << msg;
  msg = error_of([&] { Tokenizer::train_on_sentences({}, opts(300), "nothing"); });
  EXPECT_NE(msg.find("empty input"), std::string::npos) << msg;

  // Far more pieces than 50 short documents can provide: SentencePiece's message is passed on.
  msg = error_of([&] { Tokenizer::train({path("a.txt")}, opts(50000)); });
  EXPECT_NE(msg.find("Vocabulary size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("50000"), std::string::npos) << msg;

  auto bad = opts(300);
  bad.model_type = "wordpiece";
  msg = error_of([&] { Tokenizer::train({path("a.txt")}, bad); });
  EXPECT_NE(msg.find("wordpiece"), std::string::npos) << msg;
  msg = error_of([&] { Tokenizer::train({path("a.txt")}, opts(0)); });
  EXPECT_NE(msg.find("vocabulary size"), std::string::npos) << msg;

  msg = error_of([&] { Tokenizer::load(path("a.txt")); });  // a text file is not a model
  EXPECT_NE(msg.find(path("a.txt")), std::string::npos) << msg;
  msg = error_of([&] { Tokenizer::load(path("none.model")); });
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;

  const Tokenizer tok = Tokenizer::train({path("a.txt")}, opts(300));
  const std::vector<std::int32_t> out_of_range = {1, 300};
  msg = error_of([&] { tok.decode(out_of_range); });
  EXPECT_NE(msg.find("300"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------------
// tokenize_corpus

namespace {

// Splits a shard into documents at EOS and decodes each.
std::vector<std::string> decoded_documents(const std::string& shard_path, const Tokenizer& tok) {
  const auto shard = quopt::TokenShard::open(shard_path);
  std::vector<std::string> out;
  std::vector<std::int32_t> cur;
  for (std::uint64_t i = 0; i < shard.size(); ++i) {
    const auto t = static_cast<std::int32_t>(shard.token(i));
    if (t == tok.eos_id()) {
      out.push_back(tok.decode(cur));
      cur.clear();
    } else {
      cur.push_back(t);
    }
  }
  EXPECT_TRUE(cur.empty()) << shard_path << " does not end with EOS";
  return out;
}

}  // namespace

TEST_F(TokenizerTest, TokenizeCorpusWritesAllDocumentsAndIsDeterministic) {
  auto docs = write_corpus(path("one.txt"), 250, 5);
  const auto more = write_corpus(path("two.txt"), 150, 6);
  docs.insert(docs.end(), more.begin(), more.end());

  quopt::TokenizeConfig cfg;
  cfg.inputs = {path("one.txt"), path("two.txt")};
  cfg.val_fraction = 0.2;
  cfg.out_dir = path("out1");
  const auto s1 = quopt::tokenize_corpus(cfg, 400, 2);
  cfg.out_dir = path("out2");
  const auto s2 = quopt::tokenize_corpus(cfg, 400, 1);  // thread count must not matter
  for (const char* f : {"tokenizer.model", "train.bin", "val.bin"}) {
    ASSERT_TRUE(fs::exists(path("out1") + "/" + f)) << f;
    EXPECT_TRUE(read(path("out1") + "/" + f) == read(path("out2") + "/" + f)) << f << " differs between runs";
  }

  EXPECT_EQ(s1.files, 2);
  EXPECT_EQ(s1.documents, 400);
  EXPECT_EQ(s1.train_documents + s1.val_documents, 400);
  EXPECT_EQ(s1.vocab_size, 400);
  // Hash-based split: a Binomial(400, 0.2) count has sd 8; allow 4 sd.
  EXPECT_NEAR(static_cast<double>(s1.val_documents), 80.0, 32.0);

  const Tokenizer tok = Tokenizer::load(s1.tokenizer_path);
  EXPECT_EQ(quopt::TokenShard::open(s1.train_path).size(), static_cast<std::uint64_t>(s1.train_tokens));
  EXPECT_EQ(quopt::TokenShard::open(s1.val_path).size(), static_cast<std::uint64_t>(s1.val_tokens));
  EXPECT_EQ(quopt::TokenShard::open(s1.train_path).vocab_size(), 400u);

  // Every document appears exactly once, in one of the splits, intact.
  const auto train_docs = decoded_documents(s1.train_path, tok);
  const auto val_docs = decoded_documents(s1.val_path, tok);
  EXPECT_EQ(static_cast<std::int64_t>(train_docs.size()), s1.train_documents);
  EXPECT_EQ(static_cast<std::int64_t>(val_docs.size()), s1.val_documents);
  std::vector<std::string> got = train_docs, want;
  got.insert(got.end(), val_docs.begin(), val_docs.end());
  for (const auto& d : docs) want.push_back(spaces_for_newlines(d));
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);

  // Statistics agree with the shards.
  std::int64_t bytes = 0;
  for (const auto& d : docs) bytes += static_cast<std::int64_t>(d.size());
  EXPECT_EQ(s1.train_bytes + s1.val_bytes, bytes);
  const double text_tokens =
      static_cast<double>(s1.train_tokens + s1.val_tokens - 400);  // minus one EOS per doc
  EXPECT_NEAR(s1.bytes_per_token, static_cast<double>(bytes) / text_tokens, 1e-9);
  EXPECT_NE(quopt::describe(s1).find("400 documents"), std::string::npos);
}

TEST_F(TokenizerTest, IdenticalDocumentsShareASplitAndValFractionFollowsTheSetting) {
  auto gen = text_gen(8);
  const std::string dup = "the same document again and again.";
  std::string text;
  for (int i = 0; i < 600; ++i) text += (i % 20 == 0 ? dup : gen.document()) + "\n\n";
  write(path("d.txt"), text);
  quopt::TokenizeConfig cfg;
  cfg.inputs = {path("d.txt")};
  cfg.out_dir = path("o");
  for (double frac : {0.05, 0.5}) {
    cfg.val_fraction = frac;
    const auto st = quopt::tokenize_corpus(cfg, 400, 2);
    const double sd = std::sqrt(600 * frac * (1 - frac));
    EXPECT_NEAR(static_cast<double>(st.val_documents), 600 * frac,
                4 * sd + 30 /* the 30 duplicates move together */);
    const Tokenizer tok = Tokenizer::load(st.tokenizer_path);
    const auto tr = decoded_documents(st.train_path, tok), va = decoded_documents(st.val_path, tok);
    const auto n_tr = std::count(tr.begin(), tr.end(), dup), n_va = std::count(va.begin(), va.end(), dup);
    EXPECT_EQ(n_tr + n_va, 30);
    EXPECT_TRUE(n_tr == 0 || n_va == 0) << n_tr << " in train, " << n_va << " in val";
  }
}

TEST_F(TokenizerTest, TinyCorpusStillGetsAValidationDocument) {
  std::string text;
  auto gen = text_gen(9);
  for (int i = 0; i < 40; ++i) text += gen.document() + "\n\n";
  write(path("t.txt"), text);
  quopt::TokenizeConfig cfg;
  cfg.inputs = {path("t.txt")};
  cfg.out_dir = path("o");
  cfg.val_fraction = 1e-6;  // would give no val document by the hash alone
  const auto st = quopt::tokenize_corpus(cfg, 320, 1);
  EXPECT_EQ(st.val_documents, 1);
  EXPECT_EQ(st.train_documents, 39);
}

TEST_F(TokenizerTest, OneDocumentLeavesNoValidationAndIsAnError) {
  // A text without blank lines is one document: no split can give both shards text, and an empty val.bin
  // would only fail later (or silently evaluate nothing).
  std::string text;
  auto gen = text_gen(10);
  for (int i = 0; i < 60; ++i) text += gen.document() + "\n";
  write(path("one.txt"), text);
  quopt::TokenizeConfig cfg;
  cfg.inputs = {path("one.txt")};
  cfg.out_dir = path("o");
  const std::string msg = error_of([&] { quopt::tokenize_corpus(cfg, 320, 1); });
  EXPECT_NE(msg.find("1 document"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tokenize.val_fraction"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(path("o/val.bin")));
  cfg.val_fraction = 0.0;  // asked for: everything is training text
  const auto st = quopt::tokenize_corpus(cfg, 320, 1);
  EXPECT_EQ(st.val_documents, 0);
  EXPECT_EQ(st.train_documents, 1);
}

TEST_F(TokenizerTest, TokenizeCorpusErrors) {
  write_corpus(path("a.txt"), 30, 10);
  quopt::TokenizeConfig cfg;
  cfg.out_dir = path("o");
  std::string msg = error_of([&] { quopt::tokenize_corpus(cfg, 300); });
  EXPECT_NE(msg.find("tokenize.inputs"), std::string::npos) << msg;

  cfg.inputs = {path("a.txt"), path("gone.txt")};
  msg = error_of([&] { quopt::tokenize_corpus(cfg, 300); });
  EXPECT_NE(msg.find(path("gone.txt")), std::string::npos) << msg;

  write(path("empty.txt"), "");
  cfg.inputs = {path("a.txt"), path("empty.txt")};
  msg = error_of([&] { quopt::tokenize_corpus(cfg, 300); });
  EXPECT_NE(msg.find(path("empty.txt")), std::string::npos) << msg;
  EXPECT_NE(msg.find("no text"), std::string::npos) << msg;

  cfg.inputs = {path("a.txt")};
  cfg.val_fraction = 1.0;
  msg = error_of([&] { quopt::tokenize_corpus(cfg, 300); });
  EXPECT_NE(msg.find("tokenize.val_fraction"), std::string::npos) << msg;
  cfg.val_fraction = 0.1;
  msg = error_of([&] { quopt::tokenize_corpus(cfg, 0); });
  EXPECT_NE(msg.find("vocab"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(path("o/train.bin")));
  EXPECT_FALSE(fs::exists(path("o/train.bin.tmp")));
}
