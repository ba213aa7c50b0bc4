#pragma once
// The configuration engine: a Schema lists every key (dotted "section.name", type, default with its
// source, allowed range or values); a Config holds one value per schema key, loaded from TOML files
// that may include each other, then from "--set key=value" overrides. Bad input (unknown keys, wrong
// types, out-of-range values, syntax errors, missing includes) throws quopt::Error with a message that
// names the file, the key and the fix; a rejected config leaves nothing behind.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace quopt {

using ConfigValue = std::variant<std::int64_t, double, bool, std::string, std::vector<std::string>>;

// Path and PathList hold strings that are resolved to absolute paths relative to the directory of
// the file that set them ("--set" and defaults: the current directory); an empty path stays empty.
enum class KeyType { Int, Float, Bool, String, Path, StringList, PathList };

// "integer", "float", "boolean", "string", "path", "list of strings", "list of paths".
const char* key_type_name(KeyType type);

struct KeySpec {
  std::string key;  // dotted "section.name", may be nested: "optimizer.adamw.beta1"
  KeyType type = KeyType::String;
  ConfigValue default_value;
  std::string doc;                   // one line, including the source of the default
  std::optional<double> min, max;    // bounds for Int and Float (inclusive unless marked exclusive)
  std::vector<std::string> choices;  // allowed values for String and (each entry of) StringList
  bool min_exclusive = false;        // value must be > min (e.g. a learning rate)
  bool max_exclusive = false;        // value must be < max (e.g. an Adam beta)
};

// Builders of schema entries (every doc string ends with the source of its default). Bounds are inclusive;
// exclusive_min / exclusive_max mark them "> min" / "< max".
KeySpec int_key(std::string key, std::int64_t def, std::optional<double> min, std::optional<double> max,
                std::string doc);
KeySpec float_key(std::string key, double def, std::optional<double> min, std::optional<double> max,
                  std::string doc);
KeySpec exclusive_min(KeySpec spec);
KeySpec exclusive_max(KeySpec spec);
KeySpec bool_key(std::string key, bool def, std::string doc);
KeySpec string_key(std::string key, std::string def, std::vector<std::string> choices, std::string doc);
KeySpec path_key(std::string key, std::string def, std::string doc);
KeySpec list_key(std::string key, std::vector<std::string> def, std::vector<std::string> choices,
                 std::string doc);
KeySpec path_list_key(std::string key, std::vector<std::string> def, std::string doc);

class Schema {
 public:
  // Adds a key; throws quopt::Error for an invalid spec (bad key syntax, duplicate, default of the wrong
  // type or outside its own range/choices, a key that is also a table of other keys).
  Schema& add(KeySpec spec);
  const KeySpec* find(std::string_view key) const;
  std::vector<std::string> keys() const;  // insertion order
  const std::vector<KeySpec>& specs() const { return specs_; }
  // Index of a key in insertion order; throws quopt::Error (with a closest-key hint) if unknown.
  std::size_t index(std::string_view key) const;
  // Tables ("model", "optimizer.adamw"): the key prefixes, in order of first appearance.
  std::vector<std::string> sections() const;
  // True if `prefix` is a table holding keys ("optimizer", "optimizer.adamw").
  bool is_table(std::string_view prefix) const;
  // The nearest valid key to a misspelt one (Levenshtein over full keys, over the last component
  // within the same section, and exact last components in another section), or nullopt if none is close.
  std::optional<std::string> closest(std::string_view key) const;
  // "unknown key 'k'; did you mean 'x'?" or a list of the valid keys of its section.
  std::string unknown_key_message(std::string_view key) const;
  // Markdown tables (one per section: key, type, default, allowed values, description).
  std::string markdown_reference() const;

 private:
  std::vector<KeySpec> specs_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::size_t, std::less<>> tables_;  // table prefix -> number of keys under it
};

// Text form of a value as it appears in TOML (floats round-trip exactly, strings escaped).
std::string config_value_to_toml(const ConfigValue& value);

class Config {
 public:
  // Every key at its default (Path defaults resolved against the current directory).
  static Config defaults(const Schema& schema);
  // Loads `path` (and its includes, recursively: top-level `include = ["a.toml", ...]`, relative to the
  // including file, later includes overriding earlier ones and the file overriding its includes), then
  // applies `overrides` ("key=value", as given to --set) in order.
  static Config load(const Schema& schema, const std::string& path,
                     const std::vector<std::string>& overrides = {});
  // Parses TOML text (e.g. the resolved config stored in a run file). `origin_name` names it in errors
  // and in source(); relative paths and includes are resolved against `base_dir` (default: the current
  // directory).
  static Config from_toml_string(const Schema& schema, const std::string& text,
                                 const std::string& origin_name, const std::string& base_dir = "");

  const Schema& schema() const { return *schema_; }
  const ConfigValue& get(std::string_view key) const;
  std::int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;  // Int keys are accepted too
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;  // String and Path keys
  const std::vector<std::string>& get_list(std::string_view key) const;
  // The file that set the key, "--set", or "default".
  const std::string& source(std::string_view key) const;
  // Sets a key from text, parsed and validated exactly like --set (source becomes "--set").
  void set(std::string_view key, const std::string& value_text);
  // Applies one "key=value" override as --set does.
  void apply_override(const std::string& assignment);
  // The fully resolved config: every schema key, grouped in TOML tables in schema order.
  std::string to_toml() const;

  bool same_values(const Config& other) const { return values_ == other.values_; }

 private:
  explicit Config(const Schema& schema);
  friend struct ConfigLoader;

  const Schema* schema_;  // must outlive the Config (quopt_schema() is a static)
  std::vector<ConfigValue> values_;
  std::vector<std::string> sources_;
};

}  // namespace quopt
