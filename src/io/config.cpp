#include "io/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>

#include "core/edit_distance.hpp"
#include "core/error.hpp"
#include "io/toml_compat.hpp"

namespace quopt {

namespace fs = std::filesystem;

namespace {

// TOML values with std::map tables so that tables are walked (and errors reported) deterministically.
using TomlValue = toml_compat::Value;

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

std::string section_of(std::string_view key) {
  const auto dot = key.rfind('.');
  return dot == std::string_view::npos ? std::string() : std::string(key.substr(0, dot));
}

std::string last_component(std::string_view key) {
  const auto dot = key.rfind('.');
  return std::string(dot == std::string_view::npos ? key : key.substr(dot + 1));
}

bool is_bare_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool holds_type(KeyType type, const ConfigValue& v) {
  switch (type) {
    case KeyType::Int:
      return std::holds_alternative<std::int64_t>(v);
    case KeyType::Float:
      return std::holds_alternative<double>(v);
    case KeyType::Bool:
      return std::holds_alternative<bool>(v);
    case KeyType::String:
    case KeyType::Path:
      return std::holds_alternative<std::string>(v);
    case KeyType::StringList:
    case KeyType::PathList:
      return std::holds_alternative<std::vector<std::string>>(v);
  }
  return false;
}

std::string format_double(double v) {
  char buf[64];
  // Shortest representation that parses back to the identical double; plain notation for moderate
  // magnitudes (500000.0 rather than 5e+05), exponent notation for tiny and huge ones.
  const double a = std::fabs(v);
  const auto fmt =
      (a == 0.0 || (a >= 1e-4 && a < 1e16)) ? std::chars_format::fixed : std::chars_format::scientific;
  const auto res = std::to_chars(buf, buf + sizeof(buf), v, fmt);
  std::string s(buf, res.ptr);
  // Exponents without '+' or leading zeros: 1e-08 -> 1e-8 (both are valid TOML, this one is easier to read).
  if (const auto e = s.find('e'); e != std::string::npos) {
    std::size_t digits = e + 1;
    std::string exp_sign;
    if (s[digits] == '-') {
      exp_sign = "-";
      ++digits;
    } else if (s[digits] == '+') {
      ++digits;
    }
    while (digits + 1 < s.size() && s[digits] == '0') ++digits;
    s = s.substr(0, e + 1) + exp_sign + s.substr(digits);
  }
  if (s.find_first_of(".en") == std::string::npos) s += ".0";  // TOML floats need a '.' or an exponent
  return s;
}

std::string toml_escape(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04X", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string format_number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  return format_double(v);
}

std::string range_text(const KeySpec& spec) {
  if (spec.min && spec.max) {
    return cat(spec.min_exclusive ? "(" : "[", format_number(*spec.min), ", ", format_number(*spec.max),
               spec.max_exclusive ? ")" : "]");
  }
  if (spec.min) return cat(spec.min_exclusive ? "> " : ">= ", format_number(*spec.min));
  if (spec.max) return cat(spec.max_exclusive ? "< " : "<= ", format_number(*spec.max));
  return "any";
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? std::string(sep) : std::string()) + items[i];
  return out;
}

// Checks range and choices; `origin` is "FILE:LINE", "--set" or "schema". Throws quopt::Error.
void validate_value(const KeySpec& spec, const ConfigValue& v, const std::string& origin) {
  if (spec.type == KeyType::Int || spec.type == KeyType::Float) {
    const double x =
        spec.type == KeyType::Int ? static_cast<double>(std::get<std::int64_t>(v)) : std::get<double>(v);
    if (!std::isfinite(x))
      fail(origin, ": key '", spec.key, "' must be a finite number, got ", format_double(x));
    const bool below = spec.min && (spec.min_exclusive ? x <= *spec.min : x < *spec.min);
    const bool above = spec.max && (spec.max_exclusive ? x >= *spec.max : x > *spec.max);
    if (below || above) {
      fail(origin, ": key '", spec.key, "' = ", config_value_to_toml(v),
           " is out of range; allowed: ", range_text(spec));
    }
  }
  if (!spec.choices.empty()) {
    auto check = [&](const std::string& s) {
      if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
        fail(origin, ": key '", spec.key, "' does not accept ", toml_escape(s),
             "; allowed values: ", join(spec.choices, ", "));
      }
    };
    if (spec.type == KeyType::String) check(std::get<std::string>(v));
    if (spec.type == KeyType::StringList) {
      for (const auto& s : std::get<std::vector<std::string>>(v)) check(s);
    }
  }
}

std::string resolve_path(const std::string& p, const fs::path& base_dir) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_relative()) path = base_dir / path;
  return path.lexically_normal().string();
}

// Resolves Path/PathList values against `base_dir` (absolute).
ConfigValue resolve_paths(const KeySpec& spec, ConfigValue v, const fs::path& base_dir) {
  if (spec.type == KeyType::Path) {
    v = resolve_path(std::get<std::string>(v), base_dir);
  } else if (spec.type == KeyType::PathList) {
    for (auto& p : std::get<std::vector<std::string>>(v)) p = resolve_path(p, base_dir);
  }
  return v;
}

fs::path absolute_dir(const std::string& base_dir) {
  std::error_code ec;
  fs::path dir = base_dir.empty() ? fs::current_path(ec) : fs::absolute(base_dir, ec);
  if (ec) fail("cannot determine the directory '", base_dir, "' to resolve paths against: ", ec.message());
  return dir.lexically_normal();
}

const char* toml_type_name(const TomlValue& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return "boolean";
    case toml::value_t::integer:
      return "integer";
    case toml::value_t::floating:
      return "float";
    case toml::value_t::string:
      return "string";
    case toml::value_t::array:
      return "array";
    case toml::value_t::table:
      return "table";
    case toml::value_t::offset_datetime:
    case toml::value_t::local_datetime:
    case toml::value_t::local_date:
    case toml::value_t::local_time:
      return "date/time";
    case toml::value_t::empty:
      return "empty value";
  }
  return "value";
}

std::string toml_value_text(const TomlValue& v) {
  if (v.is_table()) return "a table";
  std::string s(trim(toml_compat::text_of(v)));
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

std::string where(const std::string& file, const TomlValue& v) {
  const auto line = toml_compat::line_of(v);
  return line > 0 ? cat(file, ":", line) : file;
}

// toml11 3.x reads integer literals with operator>>, which silently caps a value beyond 64 bits at
// INT64_MAX/INT64_MIN (TOML 1.0 requires an error; toml11 4 reports one). For a value at the cap this
// re-reads the literal from the source line and returns true when it does not fit.
bool integer_literal_overflows([[maybe_unused]] const TomlValue& v) {
#if TOML11_VERSION_MAJOR < 4
  const std::int64_t x = v.as_integer();
  if (x != std::numeric_limits<std::int64_t>::max() && x != std::numeric_limits<std::int64_t>::min())
    return false;
  const auto loc = v.location();
  if (loc.column() < 1 || loc.column() - 1 >= loc.line_str().size()) return false;
  std::string tok = loc.line_str().substr(loc.column() - 1, loc.region());
  tok.erase(std::remove(tok.begin(), tok.end(), '_'), tok.end());
  const bool negative = !tok.empty() && tok[0] == '-';
  if (!tok.empty() && (tok[0] == '-' || tok[0] == '+')) tok.erase(0, 1);
  int base = 10;
  if (tok.size() > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'o' || tok[1] == 'b')) {
    base = tok[1] == 'x' ? 16 : (tok[1] == 'o' ? 8 : 2);
    tok.erase(0, 2);
  }
  std::uint64_t mag = 0;
  const auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), mag, base);
  if (ec == std::errc::result_out_of_range) return true;
  const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
  return ec == std::errc() && mag > limit;
#else
  return false;
#endif
}

// Converts a TOML value to the key's type (ints are accepted for floats); throws with the type seen.
ConfigValue from_toml(const KeySpec& spec, const TomlValue& v, const std::string& origin) {
  auto wrong = [&]() -> ConfigValue {
    fail(origin, ": key '", spec.key, "' expects ", key_type_name(spec.type), ", got ", toml_value_text(v),
         " (", toml_type_name(v), ")");
  };
  if (v.is_integer() && integer_literal_overflows(v))
    fail(origin, ": key '", spec.key,
         "' has an integer that does not fit in 64 bits (TOML integers are 64-bit)");
  switch (spec.type) {
    case KeyType::Int:
      if (v.is_integer()) return static_cast<std::int64_t>(v.as_integer());
      return wrong();
    case KeyType::Float:
      if (v.is_floating()) return static_cast<double>(v.as_floating());
      if (v.is_integer()) return static_cast<double>(v.as_integer());
      return wrong();
    case KeyType::Bool:
      if (v.is_boolean()) return static_cast<bool>(v.as_boolean());
      return wrong();
    case KeyType::String:
    case KeyType::Path:
      if (v.is_string()) return toml_compat::string_of(v);
      return wrong();
    case KeyType::StringList:
    case KeyType::PathList: {
      if (!v.is_array()) return wrong();
      std::vector<std::string> out;
      for (const auto& e : v.as_array()) {
        if (!e.is_string()) return wrong();
        out.push_back(toml_compat::string_of(e));
      }
      return out;
    }
  }
  return wrong();
}

TomlValue parse_toml_text(const std::string& text, const std::string& name) {
  std::istringstream is(text);
  try {
    return toml_compat::parse(is, name);
  } catch (const std::exception& e) {
    fail(name, ": TOML syntax error: ", e.what());
  }
}

// Parses an unquoted/quoted single string as --set accepts it.
std::string parse_set_string(std::string_view text, const std::string& origin, const KeySpec& spec) {
  if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'') {
    return std::string(text.substr(1, text.size() - 2));
  }
  if (!text.empty() && text.front() == '"') {
    TomlValue root;
    try {
      std::istringstream is("v = " + std::string(text));
      root = toml_compat::parse(is, "--set");
    } catch (const std::exception&) {
      fail(origin, ": key '", spec.key, "' got a malformed quoted string ", std::string(text),
           "; write it without quotes or as a valid TOML string");
    }
    return toml_compat::string_of(root.as_table().at("v"));
  }
  return std::string(text);
}

ConfigValue parse_set_value(const KeySpec& spec, std::string_view text, const std::string& origin) {
  auto wrong = [&](std::string_view why = {}) -> ConfigValue {
    fail(origin, ": key '", spec.key, "' expects ", key_type_name(spec.type), ", got '", std::string(text),
         "'", why.empty() ? "" : "; ", std::string(why));
  };
  switch (spec.type) {
    case KeyType::Int: {
      std::string digits;
      for (std::size_t i = 0; i < text.size(); ++i) {
        // TOML-style digit separators: 1_000_000.
        if (text[i] == '_' && i > 0 && i + 1 < text.size() &&
            std::isdigit(static_cast<unsigned char>(text[i - 1])) &&
            std::isdigit(static_cast<unsigned char>(text[i + 1]))) {
          continue;
        }
        digits += text[i];
      }
      const char* b = digits.data() + (!digits.empty() && digits[0] == '+' ? 1 : 0);
      const char* e = digits.data() + digits.size();
      std::int64_t x = 0;
      const auto res = std::from_chars(b, e, x);
      if (res.ec == std::errc::result_out_of_range) return wrong("the value does not fit in 64 bits");
      if (digits.empty() || res.ec != std::errc() || res.ptr != e) return wrong();
      return x;
    }
    case KeyType::Float: {
      std::string s;
      for (const char c : text) {
        if (c != '_') s += c;
      }
      const char* b = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
      const char* e = s.data() + s.size();
      double x = 0;
      const auto res = std::from_chars(b, e, x);
      if (s.empty() || res.ec != std::errc() || res.ptr != e) return wrong();
      return x;
    }
    case KeyType::Bool: {
      std::string s(text);
      std::transform(s.begin(), s.end(), s.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (s == "true") return true;
      if (s == "false") return false;
      return wrong("write true or false");
    }
    case KeyType::String:
    case KeyType::Path:
      return parse_set_string(text, origin, spec);
    case KeyType::StringList:
    case KeyType::PathList: {
      std::vector<std::string> out;
      if (!text.empty() && text.front() == '[') {
        TomlValue root;
        try {
          std::istringstream is("v = " + std::string(text));
          root = toml_compat::parse(is, "--set");
        } catch (const std::exception&) {
          return wrong("a list is either comma-separated (a,b) or a TOML array ([\"a\", \"b\"])");
        }
        const auto& arr = root.as_table().at("v");
        if (!arr.is_array()) return wrong();
        for (const auto& e : arr.as_array()) {
          if (!e.is_string()) return wrong("TOML array entries must be quoted strings");
          out.push_back(toml_compat::string_of(e));
        }
        return out;
      }
      if (trim(text).empty()) return out;
      // Comma-separated; commas inside "..." or '...' belong to the entry.
      std::size_t start = 0;
      char quote = 0;
      for (std::size_t i = 0; i <= text.size(); ++i) {
        const char c = i < text.size() ? text[i] : ',';
        if (quote) {
          if (c == '\\' && quote == '"') {
            ++i;
          } else if (c == quote) {
            quote = 0;
          }
          continue;
        }
        if (c == '"' || c == '\'') {
          quote = c;
        } else if (c == ',') {
          const auto item = trim(text.substr(start, i - start));
          if (item.empty()) return wrong("the list has an empty entry");
          out.push_back(parse_set_string(item, origin, spec));
          start = i + 1;
        }
      }
      if (quote) return wrong("a quote is not closed");
      return out;
    }
  }
  return wrong();
}

}  // namespace

const char* key_type_name(KeyType type) {
  switch (type) {
    case KeyType::Int:
      return "an integer";
    case KeyType::Float:
      return "a float";
    case KeyType::Bool:
      return "a boolean (true or false)";
    case KeyType::String:
      return "a string";
    case KeyType::Path:
      return "a path (string)";
    case KeyType::StringList:
      return "a list of strings";
    case KeyType::PathList:
      return "a list of paths (strings)";
  }
  return "a value";
}

std::string config_value_to_toml(const ConfigValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::int64_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, double>) {
          return format_double(v);
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return toml_escape(v);
        } else {
          std::string out = "[";
          for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_escape(v[i]);
          return out + "]";
        }
      },
      value);
}

// ---------------------------------------------------------------------------------------------------
// Schema

Schema& Schema::add(KeySpec spec) {
  const std::string& key = spec.key;
  // Keys are dotted bare TOML keys with at least one section: "section.name".
  bool ok = !key.empty() && key.find('.') != std::string::npos && key.front() != '.' && key.back() != '.' &&
            key.find("..") == std::string::npos;
  for (const char c : key) ok = ok && (is_bare_key_char(c) || c == '.');
  if (!ok) fail("schema: invalid key '", key, "'; keys are dotted bare TOML keys like 'section.name'");
  if (index_.count(key)) fail("schema: duplicate key '", key, "'");
  if (tables_.count(key)) fail("schema: key '", key, "' is already a table of other keys");
  for (std::string prefix = section_of(key); !prefix.empty(); prefix = section_of(prefix)) {
    if (index_.count(prefix)) fail("schema: key '", key, "' would make the key '", prefix, "' a table");
  }
  if (spec.type == KeyType::Float && std::holds_alternative<std::int64_t>(spec.default_value)) {
    spec.default_value = static_cast<double>(std::get<std::int64_t>(spec.default_value));
  }
  if (!holds_type(spec.type, spec.default_value)) {
    fail("schema: the default of '", key, "' is not ", key_type_name(spec.type));
  }
  if (!spec.choices.empty() && spec.type != KeyType::String && spec.type != KeyType::StringList) {
    fail("schema: key '", key, "' has choices but is not a string or list of strings");
  }
  validate_value(spec, spec.default_value, "schema");
  for (std::string prefix = section_of(key); !prefix.empty(); prefix = section_of(prefix)) ++tables_[prefix];
  index_.emplace(key, specs_.size());
  specs_.push_back(std::move(spec));
  return *this;
}

const KeySpec* Schema::find(std::string_view key) const {
  const auto it = index_.find(key);
  return it == index_.end() ? nullptr : &specs_[it->second];
}

std::vector<std::string> Schema::keys() const {
  std::vector<std::string> out;
  out.reserve(specs_.size());
  for (const auto& s : specs_) out.push_back(s.key);
  return out;
}

std::size_t Schema::index(std::string_view key) const {
  const auto it = index_.find(key);
  if (it == index_.end()) fail("config: ", unknown_key_message(key));
  return it->second;
}

std::vector<std::string> Schema::sections() const {
  std::vector<std::string> out;
  for (const auto& s : specs_) {
    const std::string sec = section_of(s.key);
    if (std::find(out.begin(), out.end(), sec) == out.end()) out.push_back(sec);
  }
  return out;
}

bool Schema::is_table(std::string_view prefix) const {
  return tables_.find(prefix) != tables_.end();
}

std::optional<std::string> Schema::closest(std::string_view key) const {
  const std::string sec = section_of(key), last = last_component(key);
  std::size_t best = std::numeric_limits<std::size_t>::max();
  const KeySpec* best_spec = nullptr;
  for (const auto& s : specs_) {
    std::size_t d = levenshtein(key, s.key);
    const std::string s_last = last_component(s.key);
    if (section_of(s.key) == sec) d = std::min(d, levenshtein(last, s_last));
    if (s_last == last) d = std::min<std::size_t>(d, 1);  // right name in the wrong section
    if (d < best) {
      best = d;
      best_spec = &s;
    }
  }
  // Close enough: a third of the name's length, at least 2 edits.
  const std::size_t limit = std::max<std::size_t>(2, last.size() / 3);
  if (best_spec == nullptr || best == 0 || best > limit) return std::nullopt;
  return best_spec->key;
}

std::string Schema::unknown_key_message(std::string_view key) const {
  std::string msg = cat("unknown key '", key, "'");
  if (const auto near = closest(key)) return cat(msg, "; did you mean '", *near, "'?");
  const std::string sec = section_of(key);
  std::vector<std::string> in_section;
  for (const auto& s : specs_) {
    if (section_of(s.key) == sec) in_section.push_back(last_component(s.key));
  }
  if (!in_section.empty()) return cat(msg, "; valid keys in [", sec, "]: ", join(in_section, ", "));
  return cat(msg, "; valid tables: ", join(sections(), ", "), " (see docs/config.md)");
}

std::string Schema::markdown_reference() const {
  auto escape_cell = [](std::string s) {
    std::string out;
    for (const char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  };
  auto type_word = [](KeyType t) -> const char* {
    switch (t) {
      case KeyType::Int:
        return "int";
      case KeyType::Float:
        return "float";
      case KeyType::Bool:
        return "bool";
      case KeyType::String:
        return "string";
      case KeyType::Path:
        return "path";
      case KeyType::StringList:
        return "list of strings";
      case KeyType::PathList:
        return "list of paths";
    }
    return "";
  };
  std::string out;
  for (const auto& sec : sections()) {
    out +=
        cat("### [", sec, "]\n\n| key | type | default | allowed | description |\n|---|---|---|---|---|\n");
    for (const auto& s : specs_) {
      if (section_of(s.key) != sec) continue;
      std::string allowed = "";
      if (!s.choices.empty()) {
        allowed = join(s.choices, ", ");
        if (s.type == KeyType::StringList) allowed = "any of: " + allowed;
      } else if (s.min || s.max) {
        allowed = range_text(s);
      }
      out += cat("| `", last_component(s.key), "` | ", type_word(s.type), " | `",
                 escape_cell(config_value_to_toml(s.default_value)), "` | ", escape_cell(allowed), " | ",
                 escape_cell(s.doc), " |\n");
    }
    out += "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Loading

struct ConfigLoader {
  const Schema& schema;
  Config cfg;
  std::vector<fs::path> stack;           // canonical paths of the files being loaded (cycle detection)
  std::vector<std::string> stack_names;  // their display names

  explicit ConfigLoader(const Schema& s) : schema(s), cfg(Config::defaults(s)) {}

  void assign(const KeySpec& spec, ConfigValue v, const std::string& origin, const std::string& source,
              const fs::path& base_dir) {
    validate_value(spec, v, origin);
    const std::size_t i = schema.index(spec.key);
    cfg.values_[i] = resolve_paths(spec, std::move(v), base_dir);
    cfg.sources_[i] = source;
  }

  // Walks a table, assigning its leaves to schema keys.
  void apply_table(const TomlValue& table, const std::string& prefix, const std::string& file,
                   const fs::path& base_dir, bool top_level) {
    for (const auto& [name, v] : table.as_table()) {
      if (top_level && name == "include") continue;
      const std::string full = prefix.empty() ? name : prefix + "." + name;
      const std::string origin = where(file, v);
      if (const KeySpec* spec = schema.find(full)) {
        assign(*spec, from_toml(*spec, v, origin), origin, file, base_dir);
      } else if (v.is_table() && (schema.is_table(full) || !v.as_table().empty())) {
        apply_table(v, full, file, base_dir, false);  // unknown tables report their leaves, with hints
      } else if (schema.is_table(full)) {
        std::vector<std::string> inner;
        for (const auto& s : schema.specs()) {
          if (s.key.rfind(full + ".", 0) == 0) inner.push_back(s.key);
        }
        fail(origin, ": '", full, "' is a table of keys (", join(inner, ", "), "), not a value; write [",
             full, "] followed by its keys");
      } else {
        fail(origin, ": ", schema.unknown_key_message(full));
      }
    }
  }

  void load_root(const TomlValue& root, const std::string& display, const fs::path& base_dir) {
    if (!root.is_table()) fail(display, ": the TOML document is not a table");
    const auto& table = root.as_table();
    if (const auto it = table.find("include"); it != table.end()) {
      const TomlValue& inc = it->second;
      std::vector<std::string> files;
      if (inc.is_string()) {
        files.push_back(toml_compat::string_of(inc));
      } else if (inc.is_array()) {
        for (const auto& e : inc.as_array()) {
          if (!e.is_string()) {
            fail(where(display, inc), ": 'include' expects a list of file names (strings), got ",
                 toml_value_text(inc));
          }
          files.push_back(toml_compat::string_of(e));
        }
      } else {
        fail(where(display, inc), ": 'include' expects a list of file names (strings), got ",
             toml_value_text(inc), " (", toml_type_name(inc), ")");
      }
      const fs::path display_dir = fs::path(display).parent_path();
      for (const auto& f : files) {
        const fs::path rel(f);
        const fs::path target = rel.is_absolute() ? rel : base_dir / rel;
        const std::string target_display =
            rel.is_absolute() ? f : (display_dir / rel).lexically_normal().string();
        load_file(target, target_display, cat(where(display, inc)));
      }
    }
    apply_table(root, "", display, base_dir, true);
  }

  void load_file(const fs::path& path, const std::string& display, const std::string& included_from) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      fail(included_from.empty() ? "" : included_from + ": ", "config file '", display,
           "' is a directory, not a TOML file; name a file in it (e.g. ",
           (fs::path(display) / "config.toml").string(), ")");
    }
    if (!fs::is_regular_file(path, ec)) {
      if (included_from.empty()) {
        fail("config file '", display, "' not found (looked for ",
             fs::absolute(path, ec).lexically_normal().string(), "); check the path");
      }
      fail(included_from, ": included file '", display, "' not found (looked for ",
           path.lexically_normal().string(), "); include paths are relative to the including file");
    }
    const fs::path canon = fs::weakly_canonical(fs::absolute(path), ec);
    for (std::size_t i = 0; i < stack.size(); ++i) {
      if (stack[i] == canon) {
        std::string chain;
        for (std::size_t j = i; j < stack_names.size(); ++j) chain += stack_names[j] + " -> ";
        fail(included_from, ": include cycle: ", chain, display, "; remove one of these includes");
      }
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot read config file '", display, "'; check its permissions");
    std::ostringstream text;
    text << in.rdbuf();
    const TomlValue root = parse_toml_text(text.str(), display);
    stack.push_back(canon);
    stack_names.push_back(display);
    load_root(root, display, fs::absolute(path).lexically_normal().parent_path());
    stack.pop_back();
    stack_names.pop_back();
  }
};

Config::Config(const Schema& schema) : schema_(&schema) {}

Config Config::defaults(const Schema& schema) {
  Config cfg(schema);
  const fs::path cwd = absolute_dir("");
  for (const auto& s : schema.specs()) {
    cfg.values_.push_back(resolve_paths(s, s.default_value, cwd));
    cfg.sources_.emplace_back("default");
  }
  return cfg;
}

Config Config::load(const Schema& schema, const std::string& path,
                    const std::vector<std::string>& overrides) {
  ConfigLoader loader(schema);
  loader.load_file(fs::path(path), path, "");
  for (const auto& o : overrides) loader.cfg.apply_override(o);
  return std::move(loader.cfg);
}

Config Config::from_toml_string(const Schema& schema, const std::string& text, const std::string& origin_name,
                                const std::string& base_dir) {
  ConfigLoader loader(schema);
  const fs::path dir = absolute_dir(base_dir);
  const TomlValue root = parse_toml_text(text, origin_name);
  // Includes of in-memory text are resolved against base_dir; the display name keeps that explicit.
  loader.load_root(root, origin_name.empty() ? std::string("<string>") : origin_name, dir);
  return std::move(loader.cfg);
}

const ConfigValue& Config::get(std::string_view key) const {
  return values_[schema_->index(key)];
}

namespace {
[[noreturn]] void wrong_getter(const KeySpec& spec, const char* wanted) {
  fail("config: key '", spec.key, "' holds ", key_type_name(spec.type), ", not ", wanted,
       " (internal error)");
}
}  // namespace

std::int64_t Config::get_int(std::string_view key) const {
  const std::size_t i = schema_->index(key);
  const auto* v = std::get_if<std::int64_t>(&values_[i]);
  if (!v) wrong_getter(schema_->specs()[i], "an integer");
  return *v;
}

double Config::get_float(std::string_view key) const {
  const std::size_t i = schema_->index(key);
  if (const auto* d = std::get_if<double>(&values_[i])) return *d;
  if (const auto* n = std::get_if<std::int64_t>(&values_[i])) return static_cast<double>(*n);
  wrong_getter(schema_->specs()[i], "a number");
}

bool Config::get_bool(std::string_view key) const {
  const std::size_t i = schema_->index(key);
  const auto* v = std::get_if<bool>(&values_[i]);
  if (!v) wrong_getter(schema_->specs()[i], "a boolean");
  return *v;
}

const std::string& Config::get_string(std::string_view key) const {
  const std::size_t i = schema_->index(key);
  const auto* v = std::get_if<std::string>(&values_[i]);
  if (!v) wrong_getter(schema_->specs()[i], "a string");
  return *v;
}

const std::vector<std::string>& Config::get_list(std::string_view key) const {
  const std::size_t i = schema_->index(key);
  const auto* v = std::get_if<std::vector<std::string>>(&values_[i]);
  if (!v) wrong_getter(schema_->specs()[i], "a list");
  return *v;
}

const std::string& Config::source(std::string_view key) const {
  return sources_[schema_->index(key)];
}

void Config::set(std::string_view key, const std::string& value_text) {
  const KeySpec* spec = schema_->find(key);
  if (!spec) fail("--set: ", schema_->unknown_key_message(key));
  ConfigValue v = parse_set_value(*spec, trim(value_text), "--set");
  validate_value(*spec, v, "--set");
  const std::size_t i = schema_->index(key);
  values_[i] = resolve_paths(*spec, std::move(v), absolute_dir(""));
  sources_[i] = "--set";
}

void Config::apply_override(const std::string& assignment) {
  const auto eq = assignment.find('=');
  const auto key =
      eq == std::string::npos ? std::string_view() : trim(std::string_view(assignment).substr(0, eq));
  if (eq == std::string::npos || key.empty()) {
    fail("--set expects key=value, got '", assignment, "'; for example --set train.steps=100");
  }
  set(key, assignment.substr(eq + 1));
}

std::string Config::to_toml() const {
  std::string out;
  bool first = true;
  for (const auto& sec : schema_->sections()) {
    out += cat(first ? "" : "\n", "[", sec, "]\n");
    first = false;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      const KeySpec& s = schema_->specs()[i];
      if (section_of(s.key) == sec)
        out += cat(last_component(s.key), " = ", config_value_to_toml(values_[i]), "\n");
    }
  }
  return out;
}

// ---- schema entry builders ----

namespace {
KeySpec make_key(std::string key, KeyType type, ConfigValue def, std::string doc,
                 std::optional<double> min = {}, std::optional<double> max = {},
                 std::vector<std::string> choices = {}) {
  return KeySpec{std::move(key), type, std::move(def), std::move(doc), min, max, std::move(choices)};
}
}  // namespace

KeySpec int_key(std::string key, std::int64_t def, std::optional<double> min, std::optional<double> max,
                std::string doc) {
  return make_key(std::move(key), KeyType::Int, ConfigValue{def}, std::move(doc), min, max);
}
KeySpec float_key(std::string key, double def, std::optional<double> min, std::optional<double> max,
                  std::string doc) {
  return make_key(std::move(key), KeyType::Float, ConfigValue{def}, std::move(doc), min, max);
}
KeySpec exclusive_min(KeySpec spec) {
  spec.min_exclusive = true;
  return spec;
}
KeySpec exclusive_max(KeySpec spec) {
  spec.max_exclusive = true;
  return spec;
}
KeySpec bool_key(std::string key, bool def, std::string doc) {
  return make_key(std::move(key), KeyType::Bool, ConfigValue{def}, std::move(doc));
}
KeySpec string_key(std::string key, std::string def, std::vector<std::string> choices, std::string doc) {
  return make_key(std::move(key), KeyType::String, ConfigValue{std::move(def)}, std::move(doc), {}, {},
                  std::move(choices));
}
KeySpec path_key(std::string key, std::string def, std::string doc) {
  return make_key(std::move(key), KeyType::Path, ConfigValue{std::move(def)}, std::move(doc));
}
KeySpec list_key(std::string key, std::vector<std::string> def, std::vector<std::string> choices,
                 std::string doc) {
  return make_key(std::move(key), KeyType::StringList, ConfigValue{std::move(def)}, std::move(doc), {}, {},
                  std::move(choices));
}
KeySpec path_list_key(std::string key, std::vector<std::string> def, std::string doc) {
  return make_key(std::move(key), KeyType::PathList, ConfigValue{std::move(def)}, std::move(doc));
}

}  // namespace quopt
