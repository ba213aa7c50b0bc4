#include "io/hf_tokenizer_files.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "io/json.hpp"
#include "io/tokenizer.hpp"

namespace quopt {

namespace fs = std::filesystem;

namespace {

// Files that travel with a tokenizer.json (special tokens, the tokenizer class, eos_token).
constexpr const char* kTokenizerSideFiles[] = {"tokenizer_config.json", "special_tokens_map.json"};

void copy_one(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) fail("cannot copy ", from.string(), " to ", to.string(), ": ", ec.message());
}

}  // namespace

void write_hf_tokenizer_files(const Tokenizer& tok, const std::string& dir, std::int64_t model_max_length) {
  if (!tok.is_sentencepiece()) {
    tok.save((fs::path(dir) / "tokenizer.json").string());
    const fs::path src = fs::path(tok.origin()).parent_path();
    for (const char* f : kTokenizerSideFiles)
      if (fs::exists(src / f)) copy_one(src / f, fs::path(dir) / f);
    return;
  }
  tok.save((fs::path(dir) / "tokenizer.model").string());
  Json cfg = {
      {"tokenizer_class", "LlamaTokenizer"},
      {"add_bos_token", false},
      {"add_eos_token", false},
      {"model_max_length", model_max_length},
      {"clean_up_tokenization_spaces", false},
      // legacy: encode with the SentencePiece model as it is (no extra prefix handling).
      {"legacy", true},
  };
  if (tok.bos_id() >= 0) cfg["bos_token"] = tok.piece(tok.bos_id());
  if (tok.eos_id() >= 0) cfg["eos_token"] = cfg["pad_token"] = tok.piece(tok.eos_id());
  if (tok.vocab_size() > 0 && tok.piece(0) == "<unk>") cfg["unk_token"] = "<unk>";  // SentencePiece's id 0
  write_json_file((fs::path(dir) / "tokenizer_config.json").string(), cfg);
}

std::string copy_hf_tokenizer_files(const std::string& hf_dir, const std::string& out_dir) {
  const fs::path in(hf_dir), out(out_dir);
  fs::path loaded;
  if (fs::exists(in / "tokenizer.json")) {
    copy_one(in / "tokenizer.json", out / "tokenizer.json");
    for (const char* f : kTokenizerSideFiles)
      if (fs::exists(in / f)) copy_one(in / f, out / f);
    loaded = out / "tokenizer.json";
  } else if (fs::exists(in / "tokenizer.model")) {
    copy_one(in / "tokenizer.model", out / "tokenizer.model");
    loaded = out / "tokenizer.model";
  } else {
    return "";
  }
  (void)Tokenizer::load(loaded.string());  // an unreadable tokenizer is an error now, not at eval time
  return loaded.string();
}

}  // namespace quopt
