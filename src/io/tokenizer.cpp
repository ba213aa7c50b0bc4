#include "io/tokenizer.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "core/error.hpp"
#include "io/bpe_tokenizer.hpp"
#include "io/json.hpp"

namespace quopt {

namespace {

// Feeds our sentence list to the SentencePiece trainer (so it never reads or samples files itself).
class VectorSentenceIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentenceIterator(const std::vector<std::string>& v) : v_(v) {}
  bool done() const override { return i_ >= v_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return v_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& v_;
  std::size_t i_ = 0;
};

bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v') return false;
  return true;
}

}  // namespace

std::string read_text_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail("cannot read ", what, " ", path, ": it is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot read ", what, " ", path, ": ", std::strerror(errno));
  std::ostringstream os;
  os << f.rdbuf();
  if (f.bad()) fail("error while reading ", what, " ", path);
  return std::move(os).str();
}

std::vector<std::string> nonblank_lines(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!is_blank(line)) out.emplace_back(line);
    pos = end + 1;
  }
  return out;
}

std::vector<std::string> evenly_spaced_subset(std::vector<std::string> items, std::int64_t cap) {
  const auto n = static_cast<std::uint64_t>(items.size());
  if (cap <= 0 || static_cast<std::uint64_t>(cap) >= n) return items;
  const auto c = static_cast<std::uint64_t>(cap);
  std::vector<std::string> out;
  out.reserve(c);
  // Index floor(k*n/c), strictly increasing in k for c < n, kept as quotient + remainder (no overflow).
  const std::uint64_t q = n / c, r = n % c;
  std::uint64_t idx = 0, rem = 0;
  for (std::uint64_t k = 0; k < c; ++k) {
    out.push_back(std::move(items[static_cast<std::size_t>(idx)]));
    idx += q;
    rem += r;
    if (rem >= c) {
      rem -= c;
      ++idx;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::train(const std::vector<std::string>& files, const TokenizerTrainOptions& opts) {
  if (files.empty()) fail("tokenizer training needs at least one input text file (tokenize.inputs is empty)");
  std::vector<std::string> sentences;
  for (const auto& f : files) {
    auto lines = nonblank_lines(read_text_file(f, "tokenizer input"));
    if (lines.empty()) fail("tokenizer input ", f, " contains no text (every line is blank)");
    for (auto& l : lines) sentences.push_back(std::move(l));
  }
  std::string origin = files.front();
  if (files.size() > 1) origin = cat(files.size(), " files (", files.front(), ", ...)");
  return train_on_sentences(sentences, opts, origin);
}

Tokenizer Tokenizer::train_on_sentences(const std::vector<std::string>& sentences,
                                        const TokenizerTrainOptions& opts, const std::string& origin) {
  if (opts.vocab_size <= 0 || opts.vocab_size > std::numeric_limits<std::int32_t>::max())
    fail("tokenizer vocabulary size must be a positive 32-bit integer, got ", opts.vocab_size,
         " (set tokenize.vocab_size or model.vocab_size)");
  if (opts.model_type != "bpe" && opts.model_type != "unigram")
    fail("unknown tokenizer model type '", opts.model_type, "' (allowed: bpe, unigram)");
  if (opts.num_threads <= 0) fail("tokenizer training needs num_threads >= 1, got ", opts.num_threads);
  bool any_text = false;
  for (const auto& s : sentences) any_text = any_text || !is_blank(s);
  if (!any_text) fail("no text to train the tokenizer on in ", origin, " (empty input)");

  const std::vector<std::string> subset = evenly_spaced_subset(sentences, opts.max_sentences);
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", opts.model_type},
      {"vocab_size", std::to_string(opts.vocab_size)},
      {"character_coverage", cat(opts.character_coverage)},
      // Every byte gets a piece, so any UTF-8 text encodes without <unk> (as in Llama's tokenizer).
      {"byte_fallback", "true"},
      {"num_threads", std::to_string(opts.num_threads)},
      // Determinism: we pick the sentences, SentencePiece must not subsample or shuffle them.
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      // Quiet unless asked: 2 = errors only (SentencePiece logging levels: 0 info, 1 warning, 2 error).
      {"minloglevel", opts.verbose ? "0" : "2"},
  };
  // Fixed seed for anything in SentencePiece that still draws random numbers (e.g. unigram sampling).
  sentencepiece::SetRandomGeneratorSeed(1);
  VectorSentenceIterator it(subset);
  std::string proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
  if (!status.ok())
    fail("SentencePiece could not train a ", opts.model_type, " tokenizer with vocabulary size ",
         opts.vocab_size, " on ", origin, " (", subset.size(), " lines): ", status.ToString());
  return from_serialized(std::move(proto), cat("tokenizer trained on ", origin));
}

namespace {

// The EOS token of a tokenizer.json: tokenizer_config.json's "eos_token" (a string or {"content": s})
// when the file is there, else a conventional name.
std::int32_t hf_eos_id(const BpeTokenizer& t, const std::string& path) {
  const std::filesystem::path cfg = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(cfg)) {
    Json j;
    try {
      j = parse_json(read_text_file(cfg.string(), "tokenizer config"));
    } catch (const Error& e) {
      fail(cfg.string(), ": ", e.what());
    }
    if (j.is_object() && j.contains("eos_token") && !j["eos_token"].is_null()) {
      const Json& e = j["eos_token"];
      const std::string name = e.is_string() ? e.get<std::string>() : e.value("content", std::string());
      const std::int32_t id = t.token_id(name);
      if (id < 0) fail(cfg.string(), ": eos_token \"", name, "\" is not a token of ", path);
      return id;
    }
  }
  for (const char* name : {"<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"})
    if (t.token_id(name) >= 0) return t.token_id(name);
  return -1;
}

}  // namespace

bool is_tokenizer_json(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
}

Tokenizer Tokenizer::load(const std::string& path) {
  if (is_tokenizer_json(path)) {
    Tokenizer t;
    t.proto_ = read_text_file(path, "tokenizer");
    t.bpe_ = std::make_unique<BpeTokenizer>(BpeTokenizer::from_json(t.proto_, path));
    t.bpe_eos_ = hf_eos_id(*t.bpe_, path);
    t.origin_ = path;
    return t;
  }
  return from_serialized(read_text_file(path, "tokenizer model"), path);
}

Tokenizer Tokenizer::from_serialized(std::string model_proto, const std::string& origin) {
  Tokenizer t;
  t.sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = t.sp_->LoadFromSerializedProto(model_proto);
  if (!status.ok())
    fail("cannot load SentencePiece model ", origin, ": ", status.ToString(),
         " (is it a tokenizer.model written by `quopt tokenize`?)");
  t.proto_ = std::move(model_proto);
  t.origin_ = origin;
  return t;
}

void Tokenizer::save(const std::string& path) const {
  QUOPT_CHECK(sp_ != nullptr || bpe_ != nullptr, "Tokenizer::save on an empty tokenizer");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail("cannot create ", tmp, ": ", std::strerror(errno));
    f.write(proto_.data(), static_cast<std::streamsize>(proto_.size()));
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      fail("cannot write ", tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    fail("cannot rename ", tmp, " to ", path, ": ", std::strerror(errno));
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text) const {
  if (bpe_) return bpe_->encode(text);
  QUOPT_CHECK(sp_ != nullptr, "Tokenizer::encode on an empty tokenizer");
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) fail("SentencePiece could not encode text with ", origin_, ": ", status.ToString());
  return std::vector<std::int32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids) const {
  if (bpe_) return bpe_->decode(ids);
  QUOPT_CHECK(sp_ != nullptr, "Tokenizer::decode on an empty tokenizer");
  const std::int64_t n = vocab_size();
  for (std::int32_t id : ids)
    if (id < 0 || id >= n)
      fail("cannot decode token id ", id, ": outside the vocabulary [0, ", n, ") of ", origin_);
  std::string out;
  const auto status = sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &out);
  if (!status.ok()) fail("SentencePiece could not decode ids with ", origin_, ": ", status.ToString());
  return out;
}

std::int32_t Tokenizer::eos_id() const {
  if (bpe_) return bpe_eos_;
  QUOPT_CHECK(sp_ != nullptr, "Tokenizer::eos_id on an empty tokenizer");
  return sp_->eos_id();
}

std::int32_t Tokenizer::bos_id() const {
  if (bpe_) return -1;  // quopt never adds BOS; a tokenizer.json's post-processor is not applied
  QUOPT_CHECK(sp_ != nullptr, "Tokenizer::bos_id on an empty tokenizer");
  return sp_->bos_id();
}

std::int64_t Tokenizer::vocab_size() const {
  if (bpe_) return bpe_->vocab_size();
  QUOPT_CHECK(sp_ != nullptr, "Tokenizer::vocab_size on an empty tokenizer");
  return sp_->GetPieceSize();
}

std::string Tokenizer::piece(std::int32_t id) const {
  if (bpe_) return bpe_->piece(id);
  QUOPT_CHECK(sp_ != nullptr, "Tokenizer::piece on an empty tokenizer");
  QUOPT_CHECK(id >= 0 && id < vocab_size(), "Tokenizer::piece: id ", id, " outside [0, ", vocab_size(), ")");
  return sp_->IdToPiece(id);
}

}  // namespace quopt
