#include "eval/json.hpp"

#include <charconv>
#include <cmath>
#include <system_error>

#include "core/error.hpp"

namespace quopt {

Json Json::boolean(bool b) {
  Json j;
  j.type_ = Type::Bool;
  j.bool_ = b;
  return j;
}
Json Json::number(double v, bool integral, std::int64_t i) {
  Json j;
  j.type_ = Type::Number;
  j.num_ = v;
  j.integral_ = integral;
  j.int_ = i;
  return j;
}
Json Json::string(std::string s) {
  Json j;
  j.type_ = Type::String;
  j.str_ = std::move(s);
  return j;
}
Json Json::array(std::vector<Json> items) {
  Json j;
  j.type_ = Type::Array;
  j.items_ = std::move(items);
  return j;
}
Json Json::object(std::vector<std::pair<std::string, Json>> members) {
  Json j;
  j.type_ = Type::Object;
  j.members_ = std::move(members);
  return j;
}

const char* json_type_name(Json::Type t) {
  switch (t) {
    case Json::Type::Null:
      return "null";
    case Json::Type::Bool:
      return "boolean";
    case Json::Type::Number:
      return "number";
    case Json::Type::String:
      return "string";
    case Json::Type::Array:
      return "array";
    case Json::Type::Object:
      return "object";
  }
  return "?";
}

namespace {
[[noreturn]] void wrong_type(Json::Type have, const char* want) {
  fail("JSON value is a ", json_type_name(have), ", expected ", want);
}
}  // namespace

bool Json::as_bool() const {
  if (type_ != Type::Bool) wrong_type(type_, "a boolean");
  return bool_;
}
double Json::as_double() const {
  if (type_ != Type::Number) wrong_type(type_, "a number");
  return num_;
}
std::int64_t Json::as_int() const {
  if (!is_integer()) wrong_type(type_, "an integer");
  return int_;
}
const std::string& Json::as_string() const {
  if (type_ != Type::String) wrong_type(type_, "a string");
  return str_;
}
const std::vector<Json>& Json::as_array() const {
  if (type_ != Type::Array) wrong_type(type_, "an array");
  return items_;
}
const std::vector<std::pair<std::string, Json>>& Json::as_object() const {
  if (type_ != Type::Object) wrong_type(type_, "an object");
  return members_;
}
const Json* Json::find(std::string_view key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& [k, v] : members_)
    if (k == key) return &v;
  return nullptr;
}

std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n;
  std::uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07u;
  } else {
    return 0;  // continuation byte, overlong 2-byte lead (C0, C1) or beyond U+10FFFF (F5..FF)
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3Fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF) return 0;  // overlong / too big
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;                                         // UTF-16 surrogate
  return n;
}

namespace {

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Json parse_document() {
    skip_ws();
    Json v = value(0);
    skip_ws();
    if (pos_ < s_.size()) error("unexpected ", describe_here(), " after the JSON value");
    return v;
  }

 private:
  template <class... Args>
  [[noreturn]] void error(Args&&... args) const {
    fail("column ", pos_ + 1, ": ", std::forward<Args>(args)...);
  }
  std::string describe_here() const {
    if (pos_ >= s_.size()) return "end of text";
    const unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c >= 0x20 && c < 0x7F) return cat("'", static_cast<char>(c), "'");
    return cat("byte 0x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool consume_literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }

  Json value(int depth) {
    if (depth >= kJsonMaxDepth) error("JSON nested deeper than ", kJsonMaxDepth, " levels");
    if (pos_ >= s_.size()) error("expected a JSON value, found end of text");
    const char c = s_[pos_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Json::string(string());
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    if (consume_literal("true")) return Json::boolean(true);
    if (consume_literal("false")) return Json::boolean(false);
    if (consume_literal("null")) return Json::null();
    error("expected a JSON value (object, array, string, number, true, false or null), found ",
          describe_here());
  }

  Json object(int depth) {
    ++pos_;  // '{'
    std::vector<std::pair<std::string, Json>> members;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return Json::object(std::move(members));
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"')
        error("expected a string key in object, found ", describe_here());
      const std::size_t key_pos = pos_;
      std::string key = string();
      for (const auto& m : members)
        if (m.first == key) {
          pos_ = key_pos;
          error("duplicate key \"", key, "\" in object");
        }
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':')
        error("expected ':' after object key, found ", describe_here());
      ++pos_;
      skip_ws();
      Json v = value(depth + 1);
      members.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return Json::object(std::move(members));
      }
      error("expected ',' or '}' in object, found ", describe_here());
    }
  }

  Json array(int depth) {
    ++pos_;  // '['
    std::vector<Json> items;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return Json::array(std::move(items));
    }
    for (;;) {
      skip_ws();
      items.push_back(value(depth + 1));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return Json::array(std::move(items));
      }
      error("expected ',' or ']' in array, found ", describe_here());
    }
  }

  std::uint32_t hex4() {
    if (pos_ + 4 > s_.size()) error("\\u escape needs 4 hex digits");
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[pos_];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<std::uint32_t>(c - 'A' + 10);
      else
        error("\\u escape needs 4 hex digits, found ", describe_here());
      ++pos_;
    }
    return v;
  }

  std::string string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) error("unterminated string (missing closing '\"')");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20)
        error("control character ", describe_here(), " in a string must be escaped (e.g. \\n, \\t)");
      if (c == '\\') {
        ++pos_;
        if (pos_ >= s_.size()) error("unterminated escape sequence in string");
        const char e = s_[pos_++];
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            std::uint32_t cp = hex4();
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (!consume_literal("\\u")) error("high surrogate \\u escape not followed by a low surrogate");
              const std::uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF)
                error("high surrogate \\u escape not followed by a low surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              error("unpaired low surrogate in \\u escape");
            }
            append_utf8(out, cp);
            break;
          }
          default:
            --pos_;
            error("invalid escape sequence '\\", e, "' in string");
        }
        continue;
      }
      const std::size_t n = utf8_sequence_length(s_, pos_);
      if (n == 0) error("invalid UTF-8 ", describe_here(), " in string (task files must be UTF-8)");
      out.append(s_.substr(pos_, n));
      pos_ += n;
    }
  }

  Json number() {
    const std::size_t begin = pos_;
    const auto digit = [&] { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
    bool integral = true;
    if (s_[pos_] == '-') ++pos_;
    if (!digit()) error("expected a digit in number, found ", describe_here());
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit()) error("leading zeros are not allowed in JSON numbers");
    } else {
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (!digit()) error("expected a digit after '.' in number, found ", describe_here());
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit()) error("expected a digit in number exponent, found ", describe_here());
      while (digit()) ++pos_;
    }
    const char* first = s_.data() + begin;
    const char* last = s_.data() + pos_;
    double d = 0.0;
    const auto rd = std::from_chars(first, last, d);
    if (rd.ec == std::errc::result_out_of_range) d = (*first == '-') ? -HUGE_VAL : HUGE_VAL;
    std::int64_t i = 0;
    if (integral) {
      const auto ri = std::from_chars(first, last, i);
      if (ri.ec != std::errc()) integral = false;  // does not fit int64: a plain number
    }
    return Json::number(d, integral, i);
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

Json parse_json(std::string_view text) {
  return Parser(text).parse_document();
}

}  // namespace quopt
