#include "io/tokenize.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/timer.hpp"
#include "io/run_config.hpp"
#include "io/token_shard.hpp"
#include "io/tokenizer.hpp"

namespace quopt {

namespace {

// Stream of the hash-based split draw ("val" in ASCII), so it shares no numbers with other uses.
constexpr std::uint64_t kSplitStream = 0x76616cULL;

bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v') return false;
  return true;
}

// Splits text into documents at blank lines; each document is its lines joined with '\n'.
void split_documents(std::string_view text, std::vector<std::string>& docs) {
  std::string cur;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (is_blank(line)) {
      if (!cur.empty()) docs.push_back(std::move(cur));
      cur.clear();
    } else {
      if (!cur.empty()) cur.push_back('\n');
      cur.append(line);
    }
    pos = end + 1;
  }
  if (!cur.empty()) docs.push_back(std::move(cur));
}

// Uniform in [0, 1), a pure function of the document's text.
double split_draw(const std::string& doc) {
  return Rng(hash_name(doc), kSplitStream).uniform();
}

// Step 3 of tokenize_corpus: a SentencePiece tokenizer trained on the train documents' lines.
Tokenizer train_tokenizer(const TokenizeConfig& cfg, const std::vector<std::string>& docs,
                          const std::vector<char>& in_val, std::int64_t vocab_size, TokenizeStats& st) {
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    if (in_val[i]) continue;
    for (auto& l : nonblank_lines(docs[i])) lines.push_back(std::move(l));
  }
  st.training_lines = std::min<std::int64_t>(
      static_cast<std::int64_t>(lines.size()),
      cfg.max_train_lines > 0 ? cfg.max_train_lines : std::numeric_limits<std::int64_t>::max());
  TokenizerTrainOptions opts;
  opts.vocab_size = vocab_size;
  opts.model_type = cfg.model_type;
  // One trainer thread: SentencePiece's BPE model depends on its thread count (measured with 0.1.97:
  // 1 and 2 threads give different merges) and BPE training gains nothing from more threads, so a
  // fixed count keeps the outputs identical across machines. Encoding below uses num_threads.
  opts.num_threads = 1;
  opts.max_sentences = cfg.max_train_lines;
  const std::string origin = cfg.inputs.size() == 1
                                 ? cfg.inputs.front()
                                 : cat(cfg.inputs.size(), " files (", cfg.inputs.front(), ", ...)");
  return Tokenizer::train_on_sentences(lines, opts, origin);
}

}  // namespace

TokenizeStats tokenize_corpus(const TokenizeConfig& cfg, std::int64_t vocab_size, int num_threads) {
  namespace fs = std::filesystem;
  if (cfg.inputs.empty()) fail("tokenize.inputs is empty: list the text files to tokenize");
  if (cfg.out_dir.empty())
    fail("tokenize.out_dir is empty: set the directory for tokenizer.model, train.bin, val.bin");
  if (!(cfg.val_fraction >= 0.0 && cfg.val_fraction < 1.0))
    fail("tokenize.val_fraction = ", cfg.val_fraction, " is outside [0, 1)");
  if (cfg.max_train_lines < 0)
    fail("tokenize.max_train_lines = ", cfg.max_train_lines, " must be >= 0 (0: all)");
  if (vocab_size <= 0)
    fail("tokenize: vocabulary size ", vocab_size,
         " must be positive (set tokenize.vocab_size or model.vocab_size)");
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  TokenizeStats st;
  st.files = static_cast<std::int64_t>(cfg.inputs.size());

  // 1. documents, in input order
  std::vector<std::string> docs;
  for (const auto& f : cfg.inputs) {
    const std::size_t before = docs.size();
    split_documents(read_text_file(f, "tokenize input"), docs);
    if (docs.size() == before) fail("tokenize input ", f, " contains no text (empty or only blank lines)");
  }
  st.documents = static_cast<std::int64_t>(docs.size());

  // 2. hash-based split; keep both splits non-empty when there are at least two documents
  std::vector<double> draw(docs.size());
  std::vector<char> in_val(docs.size(), 0);
  for (std::size_t i = 0; i < docs.size(); ++i) {
    draw[i] = split_draw(docs[i]);
    in_val[i] = draw[i] < cfg.val_fraction;
  }
  if (docs.size() >= 2 && cfg.val_fraction > 0) {
    if (std::none_of(in_val.begin(), in_val.end(), [](char v) { return v != 0; }))
      in_val[static_cast<std::size_t>(std::min_element(draw.begin(), draw.end()) - draw.begin())] = 1;
    if (std::all_of(in_val.begin(), in_val.end(), [](char v) { return v != 0; }))
      in_val[static_cast<std::size_t>(std::max_element(draw.begin(), draw.end()) - draw.begin())] = 0;
  }
  for (std::size_t i = 0; i < docs.size(); ++i) {
    (in_val[i] ? st.val_documents : st.train_documents) += 1;
    (in_val[i] ? st.val_bytes : st.train_bytes) += static_cast<std::int64_t>(docs[i].size());
  }
  if (st.train_documents == 0)
    fail("tokenize: no documents left for training in ", cfg.inputs.front(), " ...");
  if (st.val_documents == 0 && cfg.val_fraction > 0)
    fail("tokenize: the inputs hold ", st.documents, " document", st.documents == 1 ? "" : "s",
         " (documents are separated by blank lines), so none is left for validation with "
         "tokenize.val_fraction = ",
         cfg.val_fraction,
         "; give more text or separate its documents by blank lines, or set "
         "tokenize.val_fraction = 0 and point data.val at a shard of other text");

  // 3. tokenizer on the train documents' lines, unless an existing one is given
  double t0 = wall_seconds();
  const Tokenizer tok = cfg.tokenizer.empty() ? train_tokenizer(cfg, docs, in_val, vocab_size, st)
                                              : Tokenizer::load(cfg.tokenizer);
  st.train_seconds = wall_seconds() - t0;
  st.vocab_size = tok.vocab_size();
  const std::int32_t eos = tok.eos_id();
  if (eos < 0) fail("the tokenizer ", tok.origin(), " has no EOS token (quopt ends every document with one)");

  // 4. encode (documents split over threads, results kept in input order) and write
  t0 = wall_seconds();
  std::vector<std::vector<std::int32_t>> ids(docs.size());
  {
    std::vector<std::thread> pool;
    std::vector<std::string> errors(static_cast<std::size_t>(num_threads));
    for (int t = 0; t < num_threads; ++t) {
      pool.emplace_back([&, t] {
        try {
          for (std::size_t i = static_cast<std::size_t>(t); i < docs.size();
               i += static_cast<std::size_t>(num_threads))
            ids[i] = tok.encode(docs[i]);
        } catch (const std::exception& e) {
          errors[static_cast<std::size_t>(t)] = e.what();
        }
      });
    }
    for (auto& th : pool) th.join();
    for (const auto& e : errors)
      if (!e.empty()) fail(e);
  }
  std::error_code ec;
  fs::create_directories(cfg.out_dir, ec);
  if (ec) fail("cannot create tokenize.out_dir ", cfg.out_dir, ": ", ec.message());
  const fs::path out(cfg.out_dir);
  // A tokenizer.json keeps its name (Tokenizer::load tells the formats apart by it).
  st.tokenizer_path =
      (out / (is_tokenizer_json(cfg.tokenizer) ? "tokenizer.json" : "tokenizer.model")).string();
  st.train_path = (out / "train.bin").string();
  st.val_path = (out / "val.bin").string();
  const auto vocab = static_cast<std::uint64_t>(st.vocab_size);
  TokenShardWriter train_w(st.train_path, vocab), val_w(st.val_path, vocab);
  std::int64_t text_tokens = 0;
  const std::vector<std::int32_t> eos_one = {eos};
  for (std::size_t i = 0; i < docs.size(); ++i) {
    TokenShardWriter& w = in_val[i] ? val_w : train_w;
    w.append(std::span<const std::int32_t>(ids[i]));
    w.append(std::span<const std::int32_t>(eos_one));
    text_tokens += static_cast<std::int64_t>(ids[i].size());
  }
  st.train_tokens = static_cast<std::int64_t>(train_w.count());
  st.val_tokens = static_cast<std::int64_t>(val_w.count());
  tok.save(st.tokenizer_path);
  train_w.finish();
  val_w.finish();
  st.encode_seconds = wall_seconds() - t0;
  st.bytes_per_token =
      text_tokens > 0 ? static_cast<double>(st.train_bytes + st.val_bytes) / text_tokens : 0.0;
  return st;
}

std::string describe(const TokenizeStats& s) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(2);
  os << "tokenize: " << s.files << " files, " << s.documents << " documents (" << s.train_documents
     << " train, " << s.val_documents << " val)\n"
     << "tokenizer: vocab " << s.vocab_size << ", trained on " << s.training_lines << " lines in "
     << s.train_seconds << " s -> " << s.tokenizer_path << "\n"
     << "train: " << s.train_tokens << " tokens (" << s.train_bytes << " text bytes) -> " << s.train_path
     << "\n"
     << "val:   " << s.val_tokens << " tokens (" << s.val_bytes << " text bytes) -> " << s.val_path << "\n"
     << "bytes per token " << s.bytes_per_token << ", encoded in " << s.encode_seconds << " s";
  return os.str();
}

}  // namespace quopt
