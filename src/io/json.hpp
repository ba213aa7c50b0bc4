#pragma once
// JSON reading for quopt's file formats (task files, safetensors headers, Hugging Face config.json and
// tokenizer.json) on nlohmann-json, with the checks those formats need on top of RFC 8259: duplicate
// object keys are an error (a duplicated tensor name or config field would be ambiguous), nesting is
// limited to kJsonMaxDepth levels, and every error names its position and the problem.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace quopt {

using Json = nlohmann::json;

inline constexpr int kJsonMaxDepth = 256;  // quopt choice: far deeper than any file quopt reads needs

// Parses exactly one JSON value (surrounding whitespace allowed; strings must be valid UTF-8). Throws
// quopt::Error whose message starts with "column N: " (1-based byte column) for one-line text, or
// "line L, column N: " otherwise, followed by what is wrong.
Json parse_json(std::string_view text);

// A number written without fraction or exponent that fits int64 (a label like 2, not 2.0).
bool json_is_int64(const Json& j);
// json_is_int64's value; throws quopt::Error naming `what` when j is not such a number.
std::int64_t json_int64(const Json& j, std::string_view what);

// Writes j (indented by 2) to `path` through "<path>.tmp" and a rename.
void write_json_file(const std::string& path, const Json& j);

// "a null", "a boolean", "a number", "a string", "an array", "an object" for messages.
std::string json_a_type(const Json& j);

}  // namespace quopt
