#include "io/bpe_tokenizer.hpp"

#include <pcre2.h>

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

#include "core/error.hpp"
#include "io/json.hpp"

namespace quopt {

namespace {

// GPT-2's pre-tokenizer pattern, used by ByteLevel with use_regex = true (tokenizers'
// pre_tokenizers/byte_level.rs).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Byte-level alphabet (GPT-2's bytes_to_unicode): printable Latin-1 bytes stand for themselves, the
// other 68 bytes for U+0100.. in byte order, so every byte is one visible character.
struct ByteAlphabet {
  std::array<std::string, 256> to_char;
  std::unordered_map<std::string, unsigned char> to_byte;
  ByteAlphabet() {
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      append_utf8(to_char[b], printable ? b : next++);
      to_byte[to_char[b]] = static_cast<unsigned char>(b);
    }
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

// Length of the UTF-8 character starting at s[i] (1 for a stray byte; byte-level strings are valid).
std::size_t char_len(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const std::size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  return std::min(n, s.size() - i);
}

struct Pcre2Deleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
using Regex = std::shared_ptr<pcre2_code>;

Regex compile(const std::string& pattern, bool literal, const std::string& where) {
  int err = 0;
  PCRE2_SIZE at = 0;
  const std::uint32_t opts = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
  pcre2_code* c =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts, &err, &at, nullptr);
  if (!c) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail(where, ": cannot compile the pattern ", pattern, " at offset ", at, ": ",
         reinterpret_cast<char*>(msg));
  }
  pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);  // a speed-up where PCRE2 has a JIT; the result is the same
  return Regex(c, Pcre2Deleter{});
}

// Non-empty matches of re in s, as [begin, end) byte ranges.
std::vector<std::pair<std::size_t, std::size_t>> find_all(const pcre2_code* re, std::string_view s) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(re, nullptr), &pcre2_match_data_free);
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const int rc =
        pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, 0, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("cannot pre-tokenize text: ", reinterpret_cast<char*>(msg),
           rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21 ? " (the text is not valid UTF-8)"
                                                                       : "");
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    if (ov[1] == ov[0]) {  // empty match: step over one character
      if (ov[0] >= s.size()) break;
      pos = ov[0] + char_len(s, ov[0]);
      continue;
    }
    out.emplace_back(ov[0], ov[1]);
    pos = ov[1];
  }
  return out;
}

enum class Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext };

struct Step {
  bool byte_level = false;
  // Split
  Regex re;
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  // ByteLevel
  bool add_prefix_space = false;
  bool use_regex = false;
};

// Splits s per tokenizers' SplitDelimiterBehavior: the "delimiters" are the matches (or, inverted,
// the text between them).
std::vector<std::string> split(std::string_view s, const pcre2_code* re, Behavior b, bool invert) {
  std::vector<std::pair<std::string_view, bool>> parts;  // (text, is delimiter), in order
  std::size_t last = 0;
  for (const auto& [begin, end] : find_all(re, s)) {
    if (begin > last) parts.emplace_back(s.substr(last, begin - last), invert);
    parts.emplace_back(s.substr(begin, end - begin), !invert);
    last = end;
  }
  if (last < s.size()) parts.emplace_back(s.substr(last), invert);
  std::vector<std::string> out;
  if (b == Behavior::MergedWithNext) std::reverse(parts.begin(), parts.end());
  bool previous_delim = false;  // tokenizers merges a delimiter only into a piece that is not one
  for (const auto& [text, delim] : parts) {
    switch (b) {
      case Behavior::Isolated:
        out.emplace_back(text);
        break;
      case Behavior::Removed:
        if (!delim) out.emplace_back(text);
        break;
      case Behavior::MergedWithPrevious:
        if (delim && !previous_delim && !out.empty())
          out.back() += text;
        else
          out.emplace_back(text);
        break;
      case Behavior::MergedWithNext:  // walked backwards: "previous" is the next piece
        if (delim && !previous_delim && !out.empty())
          out.back().insert(0, text);
        else
          out.emplace_back(text);
        break;
    }
    previous_delim = delim;
  }
  if (b == Behavior::MergedWithNext) std::reverse(out.begin(), out.end());
  return out;
}

struct AddedToken {
  std::string content;
  std::int32_t id;
};

}  // namespace

struct BpeTokenizer::Impl {
  std::string origin;
  std::vector<Step> steps;
  std::unordered_map<std::string, std::int32_t> vocab;  // model vocabulary and added tokens
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges;
  bool ignore_merges = false;
  std::int32_t unk = -1;
  std::vector<AddedToken> added;  // longest first
  std::vector<bool> is_added;     // by id

  void bpe(const std::string& word, std::vector<std::int32_t>& out) const {
    if (ignore_merges) {
      const auto it = vocab.find(word);
      if (it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
    std::vector<std::int32_t> sym;
    for (std::size_t i = 0; i < word.size();) {
      const std::size_t n = char_len(word, i);
      const auto it = vocab.find(word.substr(i, n));
      if (it != vocab.end())
        sym.push_back(it->second);
      else if (unk >= 0)
        sym.push_back(unk);
      else
        fail(origin, ": the character \"", word.substr(i, n),
             "\" has no token and the model has no unk_token");
      i += n;
    }
    for (;;) {
      std::int32_t best_rank = std::numeric_limits<std::int32_t>::max(), merged = -1;
      std::size_t best = 0;
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
        const auto key = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(sym[i])) << 32) |
                         static_cast<std::uint32_t>(sym[i + 1]);
        const auto it = merges.find(key);
        if (it != merges.end() && it->second.first < best_rank) {
          best_rank = it->second.first;
          merged = it->second.second;
          best = i;
        }
      }
      if (merged < 0) break;
      sym[best] = merged;
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    out.insert(out.end(), sym.begin(), sym.end());
  }

  void encode_text(std::string_view text, std::vector<std::int32_t>& out) const {
    if (text.empty()) return;
    std::vector<std::string> pieces{std::string(text)};
    for (const Step& st : steps) {
      std::vector<std::string> next;
      for (auto& p : pieces) {
        if (!st.byte_level) {
          for (auto& q : split(p, st.re.get(), st.behavior, st.invert)) next.push_back(std::move(q));
          continue;
        }
        if (st.add_prefix_space && (p.empty() || p[0] != ' ')) p.insert(p.begin(), ' ');
        if (!st.use_regex) {
          next.push_back(std::move(p));
          continue;
        }
        static const Regex gpt2 = compile(kGpt2Pattern, false, "GPT-2 pattern");
        for (auto& q : split(p, gpt2.get(), Behavior::Isolated, false)) next.push_back(std::move(q));
      }
      pieces = std::move(next);
    }
    const ByteAlphabet& abc = alphabet();
    for (const auto& p : pieces) {
      if (p.empty()) continue;
      std::string word;
      for (unsigned char c : p) word += abc.to_char[c];
      bpe(word, out);
    }
  }
};

BpeTokenizer::BpeTokenizer() = default;
BpeTokenizer::~BpeTokenizer() = default;
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;

namespace {

bool flag(const Json& j, const char* key, bool def) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? def : it->get<bool>();
}

std::string type_of(const Json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) fail(where, " has no \"type\" string");
  return j["type"].get<std::string>();
}

}  // namespace

BpeTokenizer BpeTokenizer::from_json(std::string_view text, const std::string& origin) {
  Json j;
  try {
    j = parse_json(text);
  } catch (const Error& e) {
    fail(origin, ": not a tokenizer.json: ", e.what());
  }
  if (!j.is_object() || !j.contains("model"))
    fail(origin, " is not a Hugging Face tokenizer.json (no \"model\" object)");
  BpeTokenizer t;
  t.impl_ = std::make_unique<Impl>();
  Impl& im = *t.impl_;
  im.origin = origin;
  try {
    if (j.contains("normalizer") && !j["normalizer"].is_null())
      fail("normalizer ", type_of(j["normalizer"], "normalizer"),
           " is not supported (quopt reads byte-level BPE tokenizers without a normalizer)");

    // Pre-tokenizer: one step or a Sequence of them; a ByteLevel step must be among them.
    const Json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : Json();
    std::vector<const Json*> steps;
    if (!pre.is_null()) {
      if (type_of(pre, "pre_tokenizer") == "Sequence") {
        if (!pre.contains("pretokenizers") || !pre["pretokenizers"].is_array())
          fail("pre_tokenizer Sequence has no \"pretokenizers\" list");
        for (const auto& s : pre["pretokenizers"]) steps.push_back(&s);
      } else {
        steps.push_back(&pre);
      }
    }
    bool byte_level = false;
    for (const Json* s : steps) {
      const std::string type = type_of(*s, "pre_tokenizer step");
      Step st;
      if (type == "ByteLevel") {
        st.byte_level = byte_level = true;
        st.add_prefix_space = flag(*s, "add_prefix_space", true);  // tokenizers' ByteLevel default: true
        st.use_regex = flag(*s, "use_regex", true);                // and true
      } else if (type == "Split") {
        if (!s->contains("pattern") || !(*s)["pattern"].is_object())
          fail("pre_tokenizer Split has no \"pattern\"");
        const Json& pat = (*s)["pattern"];
        if (pat.contains("Regex"))
          st.re = compile(pat["Regex"].get<std::string>(), false, "pre_tokenizer Split");
        else if (pat.contains("String"))
          st.re = compile(pat["String"].get<std::string>(), true, "pre_tokenizer Split");
        else
          fail("pre_tokenizer Split pattern ", pat.dump(),
               " is neither {\"Regex\": ...} nor {\"String\": ...}");
        const std::string b = s->value("behavior", std::string("Isolated"));
        if (b == "Isolated")
          st.behavior = Behavior::Isolated;
        else if (b == "Removed")
          st.behavior = Behavior::Removed;
        else if (b == "MergedWithPrevious")
          st.behavior = Behavior::MergedWithPrevious;
        else if (b == "MergedWithNext")
          st.behavior = Behavior::MergedWithNext;
        else
          fail("pre_tokenizer Split behavior \"", b, "\" is not supported");
        st.invert = flag(*s, "invert", false);
      } else {
        fail("pre_tokenizer ", type, " is not supported (quopt reads ByteLevel and Split pre-tokenizers)");
      }
      im.steps.push_back(std::move(st));
    }
    if (!byte_level)
      fail("no ByteLevel pre_tokenizer: quopt reads byte-level BPE tokenizers (GPT-2, Llama 3, OLMo2 style)");
    if (j.contains("decoder") && !j["decoder"].is_null() && type_of(j["decoder"], "decoder") != "ByteLevel")
      fail("decoder ", type_of(j["decoder"], "decoder"),
           " is not supported (a byte-level tokenizer decodes with ByteLevel)");

    const Json& model = j["model"];
    if (model.contains("type") && type_of(model, "model") != "BPE")
      fail("model type ", type_of(model, "model"), " is not supported (quopt reads BPE)");
    if (model.contains("dropout") && !model["dropout"].is_null())
      fail("model.dropout = ", model["dropout"].dump(), " is not supported (BPE dropout is for training)");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(k) && !model[k].is_null() && !model[k].get<std::string>().empty())
        fail("model.", k, " is not supported in a byte-level BPE");
    if (flag(model, "byte_fallback", false)) fail("model.byte_fallback = true is not supported");
    im.ignore_merges = flag(model, "ignore_merges", false);
    if (!model.contains("vocab") || !model["vocab"].is_object()) fail("model.vocab is not an object");
    std::int64_t max_id = -1;
    for (const auto& [tok, id] : model["vocab"].items()) {
      const std::int64_t v = json_int64(id, "model.vocab \"" + tok + "\"");
      if (v < 0 || v > std::numeric_limits<std::int32_t>::max()) fail("model.vocab \"", tok, "\" has id ", v);
      im.vocab[tok] = static_cast<std::int32_t>(v);
      max_id = std::max(max_id, v);
    }
    if (!j.contains("added_tokens")) j["added_tokens"] = Json::array();
    for (const auto& a : j["added_tokens"]) {
      const std::string content = a.at("content").get<std::string>();
      const std::int64_t id = json_int64(a.at("id"), "added token \"" + content + "\" id");
      if (id < 0 || id > std::numeric_limits<std::int32_t>::max())
        fail("added token \"", content, "\" has id ", id);
      for (const char* k : {"single_word", "lstrip", "rstrip"})
        if (flag(a, k, false))
          fail("added token \"", content, "\" has ", k, " = true, which quopt does not support");
      if (content.empty()) fail("added token ", id, " is empty");
      im.added.push_back({content, static_cast<std::int32_t>(id)});
      im.vocab[content] = static_cast<std::int32_t>(id);
      max_id = std::max(max_id, id);
    }
    std::stable_sort(im.added.begin(), im.added.end(), [](const AddedToken& a, const AddedToken& b) {
      return a.content.size() > b.content.size();
    });
    t.pieces_.assign(static_cast<std::size_t>(max_id + 1), std::string());
    for (const auto& [tok, id] : im.vocab) t.pieces_[static_cast<std::size_t>(id)] = tok;
    im.is_added.assign(t.pieces_.size(), false);
    for (const auto& a : im.added) im.is_added[static_cast<std::size_t>(a.id)] = true;
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      const auto it = im.vocab.find(model["unk_token"].get<std::string>());
      if (it == im.vocab.end())
        fail("model.unk_token ", model["unk_token"].dump(), " is not in the vocabulary");
      im.unk = it->second;
    }

    if (!model.contains("merges") || !model["merges"].is_array()) fail("model.merges is not a list");
    std::int32_t rank = 0;
    for (const auto& m : model["merges"]) {
      std::string a, b;
      if (m.is_string()) {  // "a b" (tokens never contain a space in a byte-level vocabulary)
        const std::string s = m.get<std::string>();
        const std::size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          fail("model.merges[", rank, "] = \"", s, "\" is not two tokens separated by one space");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        fail("model.merges[", rank, "] = ", m.dump(), " is neither \"a b\" nor [\"a\", \"b\"]");
      }
      const auto ia = im.vocab.find(a), ib = im.vocab.find(b), iab = im.vocab.find(a + b);
      if (ia == im.vocab.end() || ib == im.vocab.end() || iab == im.vocab.end())
        fail("model.merges[", rank, "] (\"", a, "\", \"", b, "\") uses a token missing from model.vocab");
      const auto key = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(ia->second)) << 32) |
                       static_cast<std::uint32_t>(ib->second);
      im.merges.emplace(key, std::make_pair(rank, iab->second));  // the first (best) rank wins
      ++rank;
    }
  } catch (const nlohmann::json::exception& e) {
    fail(origin, ": unexpected tokenizer.json content: ", e.what());
  } catch (const Error& e) {
    fail(origin, ": ", e.what());
  }
  return t;
}

std::vector<std::int32_t> BpeTokenizer::encode(std::string_view text) const {
  QUOPT_CHECK(impl_ != nullptr, "BpeTokenizer::encode on an empty tokenizer");
  std::vector<std::int32_t> out;
  // Added tokens first: the earliest occurrence of any of them, the longest at the same position.
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t best = std::string_view::npos;
    const AddedToken* hit = nullptr;
    for (const auto& a : impl_->added) {
      const std::size_t at = text.find(a.content, pos);
      if (at < best) {  // longest first, so a later equal position never replaces a longer token
        best = at;
        hit = &a;
      }
    }
    impl_->encode_text(text.substr(pos, (hit ? best : text.size()) - pos), out);
    if (!hit) break;
    out.push_back(hit->id);
    pos = best + hit->content.size();
  }
  return out;
}

std::string BpeTokenizer::decode(std::span<const std::int32_t> ids) const {
  QUOPT_CHECK(impl_ != nullptr, "BpeTokenizer::decode on an empty tokenizer");
  const ByteAlphabet& abc = alphabet();
  std::string out;
  for (const std::int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      fail("cannot decode token id ", id, ": outside the vocabulary [0, ", vocab_size(), ") of ",
           impl_->origin);
    const std::string& p = pieces_[static_cast<std::size_t>(id)];
    if (impl_->is_added[static_cast<std::size_t>(id)]) {
      out += p;
      continue;
    }
    for (std::size_t i = 0; i < p.size();) {
      const std::size_t n = char_len(p, i);
      const auto it = abc.to_byte.find(p.substr(i, n));
      if (it != abc.to_byte.end())
        out += static_cast<char>(it->second);
      else
        out.append(p, i, n);
      i += n;
    }
  }
  return out;
}

const std::string& BpeTokenizer::piece(std::int32_t id) const {
  QUOPT_CHECK(id >= 0 && id < vocab_size(), "BpeTokenizer::piece: id ", id, " outside [0, ", vocab_size(),
              ")");
  return pieces_[static_cast<std::size_t>(id)];
}

std::int32_t BpeTokenizer::token_id(std::string_view token) const {
  const auto it = impl_->vocab.find(std::string(token));
  return it == impl_->vocab.end() ? -1 : it->second;
}

}  // namespace quopt
