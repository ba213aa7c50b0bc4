#pragma once
// A small JSON (RFC 8259) reader for task files: one value per call, no dependency. Strings must be
// valid UTF-8; \uXXXX escapes (surrogate pairs included) are decoded to UTF-8. Numbers keep their
// text's integer-ness so a label like 2 can be told from 2.0. Objects keep key order and reject
// duplicate keys. Nesting is limited to kJsonMaxDepth levels (no stack overflow on hostile input).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quopt {

inline constexpr int kJsonMaxDepth = 256;  // quopt choice: far deeper than any task file needs

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;
  static Json null() { return Json(); }
  static Json boolean(bool b);
  static Json number(double v, bool integral, std::int64_t i = 0);
  static Json string(std::string s);
  static Json array(std::vector<Json> items);
  static Json object(std::vector<std::pair<std::string, Json>> members);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  // A number written without fraction or exponent that fits int64.
  bool is_integer() const { return type_ == Type::Number && integral_; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Accessors throw quopt::Error when the type does not match.
  bool as_bool() const;
  double as_double() const;
  std::int64_t as_int() const;
  const std::string& as_string() const;
  const std::vector<Json>& as_array() const;
  const std::vector<std::pair<std::string, Json>>& as_object() const;
  // Object member by key, or nullptr when absent (or when this is not an object).
  const Json* find(std::string_view key) const;

 private:
  Type type_ = Type::Null;
  bool bool_ = false, integral_ = false;
  double num_ = 0.0;
  std::int64_t int_ = 0;
  std::string str_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

// "null", "boolean", "number", "string", "array", "object".
const char* json_type_name(Json::Type t);

// Parses exactly one JSON value (surrounding whitespace allowed). Throws quopt::Error whose message
// starts with "column N: " (1-based byte column in `text`) and says what was expected.
Json parse_json(std::string_view text);

// Returns the number of bytes of the valid UTF-8 sequence at s[i], or 0 if it is invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);

}  // namespace quopt
