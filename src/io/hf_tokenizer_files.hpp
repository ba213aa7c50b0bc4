#pragma once
// The tokenizer files of a Hugging Face model directory, for `quopt export` and `quopt import`.
//
// Export: a SentencePiece model (quopt tokenize's tokenizer.model) is written as tokenizer.model with a
// tokenizer_config.json naming transformers' LlamaTokenizer (the SentencePiece-backed class that loads
// with no custom code), add_bos_token / add_eos_token false (quopt adds neither when it scores text),
// and its bos/eos/unk pieces; pad is EOS. A tokenizer.json (an imported model's) is written as it is,
// with the tokenizer_config.json / special_tokens_map.json that came with it.
// Import: tokenizer.json (with those two files) or tokenizer.model are copied into the run directory.
#include <cstdint>
#include <string>

namespace quopt {

class Tokenizer;

// Writes `tok`'s files into dir (which exists). model_max_length: the model's context.
void write_hf_tokenizer_files(const Tokenizer& tok, const std::string& dir, std::int64_t model_max_length);

// Copies hf_dir's tokenizer files into out_dir and returns the path quopt loads (data.tokenizer), or ""
// when hf_dir has none. Throws quopt::Error when the copied tokenizer cannot be loaded by quopt (the
// copies stay).
std::string copy_hf_tokenizer_files(const std::string& hf_dir, const std::string& out_dir);

}  // namespace quopt
