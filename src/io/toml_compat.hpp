#pragma once
// toml11 3.7 through 4.x behind the few calls src/io/config.cpp makes: the value type quopt parses into
// (std::map tables, so that tables are walked and errors reported in a fixed order; comments dropped),
// parsing a stream, a string value's text, the line a value was read from, and a value's TOML text.
//
// toml11 4.0 replaced basic_value<Comment, Table, Array> by basic_value<TypeConfig>, returns
// std::string from as_string() (3.x: toml::string, text in .str), renamed source_location::line()
// to first_line_number() and dropped operator<< for values in favour of toml::format (toml11's
// CHANGELOG, "v4.0.0"). The API is chosen by TOML11_VERSION_MAJOR, which toml11 3.8 and later define
// (3.7 defines no version macro, so its absence means 3.x).
#include <cstddef>
#include <istream>
#include <map>
#include <sstream>
#include <string>
#include <toml.hpp>
#include <vector>

#if defined(TOML11_VERSION_MAJOR) && TOML11_VERSION_MAJOR >= 4
#define QUOPT_TOML11_V4 1
#else
#define QUOPT_TOML11_V4 0
#endif

namespace quopt::toml_compat {

#if QUOPT_TOML11_V4

// toml11's default types (64-bit integers, double, std::string, std::vector) with std::map tables and
// no comments; parse_int/parse_float are inherited from toml::type_config.
struct TypeConfig : toml::type_config {
  using comment_type = toml::discard_comments;
  template <typename K, typename T>
  using table_type = std::map<K, T>;
};
using Value = toml::basic_value<TypeConfig>;

inline Value parse(std::istream& is, const std::string& name) {
  return toml::parse<TypeConfig>(is, name);
}
inline const std::string& string_of(const Value& v) {
  return v.as_string();
}
inline std::size_t line_of(const Value& v) {
  return v.location().first_line_number();
}
inline std::string text_of(const Value& v) {
  return toml::format(v);
}

#else

using Value = toml::basic_value<toml::discard_comments, std::map, std::vector>;

inline Value parse(std::istream& is, const std::string& name) {
  return toml::parse<toml::discard_comments, std::map, std::vector>(is, name);
}
inline const std::string& string_of(const Value& v) {
  return v.as_string().str;
}
inline std::size_t line_of(const Value& v) {
  return v.location().line();
}
inline std::string text_of(const Value& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

#endif

}  // namespace quopt::toml_compat
