#pragma once
// `quopt tokenize`: text files -> SentencePiece model + train/val token shards (docs/data.md).
//   1. every input file is split into documents at blank lines (a document's lines are joined with
//      '\n'; SentencePiece's default normalisation turns whitespace runs into single spaces);
//   2. each document goes to val when a hash of its text maps below val_fraction (identical documents
//      always land in the same split), otherwise to train;
//   3. a tokenizer is trained on the non-blank lines of the train documents (at most
//      max_train_lines of them, evenly spaced), unless tokenize.tokenizer names one to use as it is
//      (a SentencePiece model or a Hugging Face tokenizer.json, e.g. an imported checkpoint's);
//   4. out_dir/tokenizer.model (tokenizer.json for a given one), out_dir/train.bin and out_dir/val.bin
//      are written, each document's ids followed by EOS, documents in input order.
// Same inputs and settings -> byte-identical outputs.
#include <cstdint>
#include <string>

namespace quopt {

struct TokenizeConfig;

struct TokenizeStats {
  std::int64_t files = 0;
  std::int64_t documents = 0, train_documents = 0, val_documents = 0;
  std::int64_t train_tokens = 0, val_tokens = 0;  // shard lengths (EOS included)
  std::int64_t train_bytes = 0, val_bytes = 0;    // UTF-8 bytes of the documents' text
  std::int64_t training_lines = 0;                // lines the tokenizer was trained on
  std::int64_t vocab_size = 0;
  double bytes_per_token = 0;  // text bytes per token over both splits, EOS not counted
  double train_seconds = 0, encode_seconds = 0;
  std::string tokenizer_path, train_path, val_path;
};

// vocab_size: the resolved vocabulary (tokenize.vocab_size, or model.vocab_size when that is 0).
// num_threads: encoding threads (0: std::thread::hardware_concurrency()); the outputs do not depend on
// it (the tokenizer is always trained with one thread, see tokenize.cpp).
// Throws quopt::Error for bad settings or unreadable/empty inputs (naming the key or file).
TokenizeStats tokenize_corpus(const TokenizeConfig& cfg, std::int64_t vocab_size, int num_threads = 0);

// A few lines for rank 0 to print.
std::string describe(const TokenizeStats& stats);

}  // namespace quopt
