#pragma once
// Tokenizer: a thin wrapper around SentencePiece (BPE or unigram, byte fallback so every UTF-8 string
// encodes without <unk>). Training is deterministic: the sentences are chosen by us (evenly spaced,
// no random sampling inside SentencePiece) and SentencePiece's own shuffling is off.
// It also loads a Hugging Face byte-level BPE tokenizer.json (io/bpe_tokenizer.hpp; the tokenizer of
// an imported OLMo2 checkpoint), which encodes and decodes but is not trained here.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace quopt {

class BpeTokenizer;

struct TokenizerTrainOptions {
  std::int64_t vocab_size = 0;  // required, > 0 (no meaningful default)
  // "bpe" or "unigram"; BPE like OLMo2's tokenizer (arXiv 2501.00656).
  std::string model_type = "bpe";
  // SentencePiece trainer threads. The trained model depends on it (SentencePiece 0.1.97), so keep it
  // fixed where outputs must be reproducible (SentencePiece's own default is 16, trainer_spec.proto;
  // we default to 1, which BPE training runs as fast as with more threads).
  int num_threads = 1;
  // Cap on training sentences (evenly spaced subset); 0: all, like SentencePiece's
  // input_sentence_size = 0 default (trainer_spec.proto).
  std::int64_t max_sentences = 0;
  // SentencePiece's default (trainer_spec.proto: character_coverage = 0.9995); rarer characters are
  // left to the byte-fallback pieces.
  double character_coverage = 0.9995;
  bool verbose =
      false;  // let SentencePiece print its training log to stderr (quiet by default: quopt choice)
};

class Tokenizer {
 public:
  // Trains on the non-blank lines of `files` (one SentencePiece "sentence" per line).
  // Throws quopt::Error: no files, a missing/unreadable file, no text, or SentencePiece's own message
  // (e.g. "Vocabulary size too high (N). Please set it to a value <= M.").
  static Tokenizer train(const std::vector<std::string>& files, const TokenizerTrainOptions& opts);
  // Trains on the given sentences; `origin` names them in error messages.
  static Tokenizer train_on_sentences(const std::vector<std::string>& sentences,
                                      const TokenizerTrainOptions& opts, const std::string& origin);
  // Loads a SentencePiece model file (e.g. tokenizer.model written by `quopt tokenize`), or, for a
  // path ending in .json, a Hugging Face tokenizer.json. Its EOS token is the "eos_token" of the
  // tokenizer_config.json beside it when there is one, else the first of <|endoftext|>, </s>,
  // <|end_of_text|>, <eos> that it has (none: eos_id() = -1).
  static Tokenizer load(const std::string& path);
  // Loads a serialized SentencePiece ModelProto; `origin` names it in error messages.
  static Tokenizer from_serialized(std::string model_proto, const std::string& origin);

  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Writes the model file (SentencePiece model or tokenizer.json) to `path` (through "<path>.tmp" and a
  // rename).
  void save(const std::string& path) const;

  // Thread-safe (SentencePiece processors are immutable once loaded).
  std::vector<std::int32_t> encode(std::string_view text) const;
  std::string decode(std::span<const std::int32_t> ids) const;
  std::int32_t eos_id() const;
  std::int32_t bos_id() const;  // -1 when the tokenizer has none
  std::int64_t vocab_size() const;
  bool is_sentencepiece() const { return sp_ != nullptr; }
  std::string piece(std::int32_t id) const;
  const std::string& serialized() const { return proto_; }
  const std::string& origin() const { return origin_; }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::unique_ptr<BpeTokenizer> bpe_;  // instead of sp_ for a tokenizer.json
  std::int32_t bpe_eos_ = -1;
  std::string proto_, origin_;  // proto_: the file's bytes (SentencePiece ModelProto or tokenizer.json)
};

// True for a path Tokenizer::load reads as a Hugging Face tokenizer.json (it ends in ".json").
bool is_tokenizer_json(const std::string& path);

// Reads a whole text file; throws quopt::Error naming `what` and the file if it cannot be read.
std::string read_text_file(const std::string& path, const std::string& what);
// The non-blank lines of `text` (trailing '\r' removed), in order.
std::vector<std::string> nonblank_lines(std::string_view text);
// At most `cap` items chosen evenly spaced (indices floor(k*n/cap)), keeping their order; cap <= 0 or
// cap >= n keeps everything. Deterministic, and covers the whole input rather than its head.
std::vector<std::string> evenly_spaced_subset(std::vector<std::string> items, std::int64_t cap);

}  // namespace quopt
