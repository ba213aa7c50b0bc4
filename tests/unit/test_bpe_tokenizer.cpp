// Byte-level BPE tokenizer.json (io/bpe_tokenizer) on small hand-built tokenizers whose encodings can be
// worked out by hand: the byte alphabet, merges by rank, pre-tokenization boundaries, added tokens,
// decoding back to the exact bytes, and unsupported files rejected by field. (scripts/test-hf.sh checks
// encodings against the `tokenizers` library itself on trained tokenizers.)
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "io/bpe_tokenizer.hpp"
#include "io/json.hpp"
#include "io/tokenizer.hpp"
#include "support/error_of.hpp"
#include "support/temp_dir.hpp"

namespace quopt {
namespace {

using testing::error_of;

// GPT-2's bytes_to_unicode, written out independently: printable bytes map to themselves, the others to
// U+0100 + n in byte order.
std::string byte_char(int b) {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int n = 0;
    for (int c = 0; c < 256; ++c) {
      const bool printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255);
      const int cp = printable ? c : 256 + n++;
      std::string s;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
      t[static_cast<std::size_t>(c)] = s;
    }
    return t;
  }();
  return table[static_cast<std::size_t>(b)];
}

// Vocabulary: the 256 byte characters (id = byte), then the merges' results in order, then
// <|endoftext|>. " " is byte 32 -> "Ġ".
Json tokenizer_json(const std::vector<std::pair<std::string, std::string>>& merges, const Json& pre) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  Json m = Json::array();
  int id = 256;
  for (const auto& [a, b] : merges) {
    m.push_back(a + " " + b);
    if (!vocab.contains(a + b)) vocab[a + b] = id++;
  }
  return {{"version", "1.0"},
          {"added_tokens",
           {{{"id", id},
             {"content", "<|endoftext|>"},
             {"single_word", false},
             {"lstrip", false},
             {"rstrip", false},
             {"normalized", false},
             {"special", true}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", m}}}};
}
const Json kGpt2Pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};

std::int32_t id_of(const BpeTokenizer& t, const std::string& s) {
  const std::int32_t id = t.token_id(s);
  EXPECT_GE(id, 0) << s;
  return id;
}

TEST(BpeTokenizer, MergesByRankWithinPreTokens) {
  const std::string G = byte_char(' ');
  // Ranks: "h e" 0, "l l" 1, "he ll" 2, "Ġ t" 3, "o Ġ" 4 (never usable: GPT-2's pattern puts the space
  // in front of the next word), "Ġt he" 5.
  const auto t = BpeTokenizer::from_json(
      tokenizer_json({{"h", "e"}, {"l", "l"}, {"he", "ll"}, {G, "t"}, {"o", G}, {G + "t", "he"}}, kGpt2Pre)
          .dump(),
      "mem");
  EXPECT_EQ(t.encode("hello"), (std::vector<std::int32_t>{id_of(t, "hell"), 'o'}));
  EXPECT_EQ(t.encode("o the"), (std::vector<std::int32_t>{'o', id_of(t, G + "the")}));
  // "'s" and digits are pre-tokens of their own; a byte outside ASCII goes through the byte alphabet.
  EXPECT_EQ(t.encode("he's 42\xC3\xA9"),
            (std::vector<std::int32_t>{id_of(t, "he"), '\'', 's', ' ', '4', '2', 0xC3, 0xA9}));
  EXPECT_EQ(t.vocab_size(), 256 + 6 + 1);
  EXPECT_EQ(t.piece(id_of(t, G + "the")), G + "the");
}

TEST(BpeTokenizer, DecodesToTheExactBytes) {
  const std::string G = byte_char(' ');
  const auto t = BpeTokenizer::from_json(tokenizer_json({{"h", "e"}, {G, "t"}}, kGpt2Pre).dump(), "mem");
  for (const std::string s :
       {"hello there", "  two  spaces\ttab\nnewline", "caf\xC3\xA9 \xF0\x9F\x99\x82 \xE6\xBC\xA2", "",
        "x<|endoftext|>y", "\x01\x7F control"}) {
    const auto ids = t.encode(s);
    EXPECT_EQ(t.decode(ids), s);
  }
  EXPECT_NE(error_of([&] { t.decode(std::vector<std::int32_t>{999}); }).find("outside the vocabulary"),
            std::string::npos);
}

TEST(BpeTokenizer, AddedTokensAreMatchedBeforePreTokenization) {
  const auto t = BpeTokenizer::from_json(tokenizer_json({{"h", "e"}}, kGpt2Pre).dump(), "mem");
  const std::int32_t eot = id_of(t, "<|endoftext|>");
  EXPECT_EQ(t.encode("he<|endoftext|>he"), (std::vector<std::int32_t>{id_of(t, "he"), eot, id_of(t, "he")}));
  EXPECT_EQ(t.encode("<|endoftext|><|endoftext|>"), (std::vector<std::int32_t>{eot, eot}));
  EXPECT_EQ(t.decode(std::vector<std::int32_t>{eot}), "<|endoftext|>");
}

TEST(BpeTokenizer, SplitStepsAndIgnoreMerges) {
  // Split on spaces, Removed: words lose their spaces; then ByteLevel without its own regex.
  const Json pre = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Removed"}, {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  Json j = tokenizer_json({{"a", "b"}, {"ab", "c"}, {"b", "c"}}, pre);
  auto t = BpeTokenizer::from_json(j.dump(), "mem");
  EXPECT_EQ(t.encode("abc  bc"), (std::vector<std::int32_t>{id_of(t, "abc"), id_of(t, "bc")}));
  // Inverted Removed keeps only the matches: here the runs of letters.
  j["pre_tokenizer"]["pretokenizers"][0] = {
      {"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+"}}}, {"behavior", "Removed"}, {"invert", true}};
  t = BpeTokenizer::from_json(j.dump(), "mem");
  EXPECT_EQ(t.encode("ab, c!"), (std::vector<std::int32_t>{id_of(t, "ab"), 'c'}));
  // MergedWithPrevious / MergedWithNext on "a-b--c" (tokenizers' documented example shape: a delimiter
  // joins its neighbour unless that neighbour is a delimiter): "a-" "b-" "-" "c" and "a" "-b" "-" "-c",
  // seen through merges that can only apply inside a piece.
  Json m = tokenizer_json({{"a", "-"}, {"b", "-"}, {"-", "b"}, {"-", "c"}}, pre);
  m["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Split"},
                                            {"pattern", {{"String", "-"}}},
                                            {"behavior", "MergedWithPrevious"},
                                            {"invert", false}};
  t = BpeTokenizer::from_json(m.dump(), "mem");
  EXPECT_EQ(t.encode("a-b--c"), (std::vector<std::int32_t>{id_of(t, "a-"), id_of(t, "b-"), '-', 'c'}));
  m["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "MergedWithNext";
  t = BpeTokenizer::from_json(m.dump(), "mem");
  EXPECT_EQ(t.encode("a-b--c"), (std::vector<std::int32_t>{'a', id_of(t, "-b"), '-', id_of(t, "-c")}));
  // ignore_merges: a word that is in the vocabulary is one token even where the merges would not get
  // there ("ac" is added to the vocabulary without a merge).
  j["model"]["vocab"]["ac"] = 300;
  EXPECT_EQ(BpeTokenizer::from_json(j.dump(), "mem").encode("ac"), (std::vector<std::int32_t>{'a', 'c'}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(BpeTokenizer::from_json(j.dump(), "mem").encode("ac"), std::vector<std::int32_t>{300});
}

TEST(BpeTokenizer, RejectsWhatItDoesNotImplement) {
  struct Case {
    std::function<void(Json&)> edit;
    const char* expect;
  };
  const Case cases[] = {
      {[](Json& j) {
         j["normalizer"] = {{"type", "NFKC"}};
       },
       "normalizer NFKC is not supported"},
      {[](Json& j) {
         j["pre_tokenizer"] = {{"type", "Whitespace"}};
       },
       "pre_tokenizer Whitespace is not supported"},
      {[](Json& j) { j["pre_tokenizer"] = nullptr; }, "no ByteLevel pre_tokenizer"},
      {[](Json& j) { j["model"]["type"] = "WordPiece"; }, "model type WordPiece is not supported"},
      {[](Json& j) { j["model"]["dropout"] = 0.1; }, "model.dropout = 0.1"},
      {[](Json& j) { j["model"]["byte_fallback"] = true; }, "byte_fallback"},
      {[](Json& j) { j["model"]["merges"].push_back("zz q"); }, "uses a token missing from model.vocab"},
      {[](Json& j) { j["model"]["merges"].push_back("a"); }, "is not two tokens separated by one space"},
      {[](Json& j) { j["added_tokens"][0]["lstrip"] = true; }, "has lstrip = true"},
      {[](Json& j) {
         j["decoder"] = {{"type", "WordPiece"}};
       },
       "decoder WordPiece is not supported"},
      {[](Json& j) { j.erase("model"); }, "no \"model\" object"},
  };
  for (const Case& c : cases) {
    Json j = tokenizer_json({{"a", "b"}}, kGpt2Pre);
    c.edit(j);
    const std::string msg = error_of([&] { BpeTokenizer::from_json(j.dump(), "dir/tokenizer.json"); });
    EXPECT_EQ(msg.rfind("dir/tokenizer.json", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([] {
              BpeTokenizer::from_json("{\"model\": ", "t.json");
            }).find("not a tokenizer.json: column"),
            std::string::npos);
}

TEST(BpeTokenizer, LoadsThroughTokenizerWithItsEos) {
  testing::TempDir dir;
  std::ofstream(dir.file("tokenizer.json")) << tokenizer_json({{"a", "b"}}, kGpt2Pre).dump();
  Tokenizer t = Tokenizer::load(dir.file("tokenizer.json"));
  EXPECT_FALSE(t.is_sentencepiece());
  EXPECT_EQ(t.eos_id(), 257);  // <|endoftext|>, found by name
  EXPECT_EQ(t.bos_id(), -1);
  EXPECT_EQ(t.encode("ab"), std::vector<std::int32_t>{256});
  EXPECT_EQ(t.decode(std::vector<std::int32_t>{256, 'c'}), "abc");
  // tokenizer_config.json names the EOS token.
  std::ofstream(dir.file("tokenizer_config.json")) << R"({"eos_token": {"content": "ab"}})";
  EXPECT_EQ(Tokenizer::load(dir.file("tokenizer.json")).eos_id(), 256);
  std::ofstream(dir.file("tokenizer_config.json")) << R"({"eos_token": "</nope>"})";
  EXPECT_NE(error_of([&] {
              Tokenizer::load(dir.file("tokenizer.json"));
            }).find("eos_token \"</nope>\" is not a token"),
            std::string::npos);
}

}  // namespace
}  // namespace quopt
