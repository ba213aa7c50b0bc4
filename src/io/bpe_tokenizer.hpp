#pragma once
// Byte-level BPE tokenizers in Hugging Face's tokenizer.json form (the `tokenizers` library's
// serialisation; GPT-2, Llama 3, OLMo2's dolma2 tokenizer): encoding and decoding as `tokenizers`
// does them, for what quopt needs from a tokenizer (encode text, decode ids, find EOS).
//
// Supported (anything else in the file is an error naming the field):
//   normalizer     null
//   pre_tokenizer  ByteLevel {add_prefix_space, use_regex (GPT-2's pattern)}, or a Sequence of Split
//                  {pattern: {Regex | String}, behavior: Isolated | Removed | MergedWithPrevious |
//                  MergedWithNext, invert} steps and ByteLevel steps
//   model          BPE {vocab, merges ("a b" strings or [a, b] pairs), ignore_merges, unk_token};
//                  no dropout, no continuing_subword_prefix / end_of_word_suffix, no byte_fallback
//   added_tokens   matched literally in the input before pre-tokenization, longest first
//                  (single_word / lstrip / rstrip are not supported)
//   decoder        ByteLevel (or null)
//   post_processor ignored: quopt adds no special tokens when it encodes (it places EOS itself)
// The regexes run on PCRE2 (UTF + Unicode properties), which reads the patterns these tokenizers use
// (\p{L}, \p{N}, (?i:...), (?!\S)) as Oniguruma, the `tokenizers` library's engine, does.
// BPE merges the lowest-ranked adjacent pair first, the leftmost among equal ranks (tokenizers'
// Word::merge_all).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace quopt {

class BpeTokenizer {
 public:
  // Parses tokenizer.json text; `origin` names it in errors.
  static BpeTokenizer from_json(std::string_view text, const std::string& origin);

  BpeTokenizer();
  ~BpeTokenizer();
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;

  // Thread-safe.
  std::vector<std::int32_t> encode(std::string_view text) const;
  // Added tokens decode to their content; other ids to their bytes. Ids must be < vocab_size().
  std::string decode(std::span<const std::int32_t> ids) const;
  std::int64_t vocab_size() const { return static_cast<std::int64_t>(pieces_.size()); }
  // The token's string as stored in the vocabulary (byte-level characters), "" for an unused id.
  const std::string& piece(std::int32_t id) const;
  // The id of a vocabulary entry or added token with this exact string, or -1.
  std::int32_t token_id(std::string_view token) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> pieces_;  // id -> token string
};

}  // namespace quopt
