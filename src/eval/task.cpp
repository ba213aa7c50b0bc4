#include "eval/task.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "eval/json.hpp"
#include "io/tokenizer.hpp"

namespace quopt {

namespace {

// "a string", "an array", ... for messages.
std::string a_type(const Json& j) {
  const std::string t = json_type_name(j.type());
  return (t[0] == 'a' || t[0] == 'o' ? "an " : "a ") + t;
}

bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; });
}

McExample parse_example(std::string_view line, const std::string& where) {
  Json j;
  try {
    j = parse_json(line);
  } catch (const Error& e) {
    fail(where, ": invalid JSON, ", e.what(), ". Each line must hold one JSON object like ",
         "{\"context\": \"...\", \"choices\": [\"...\", \"...\"], \"label\": 0}");
  }
  if (!j.is_object())
    fail(where, ": the line is ", a_type(j),
         " in JSON, expected an object with keys \"context\", \"choices\" and \"label\"");

  McExample ex;
  ex.id = where;
  if (const Json* id = j.find("id")) {
    if (id->is_string())
      ex.id = id->as_string();
    else if (id->is_integer())
      ex.id = std::to_string(id->as_int());
    else
      fail(where, ": \"id\" is ", a_type(*id), ", expected a string or an integer");
  }

  const Json* ctx = j.find("context");
  if (!ctx) fail(where, ": missing key \"context\" (the text the choices continue; may be \"\")");
  if (!ctx->is_string()) fail(where, ": \"context\" is ", a_type(*ctx), ", expected a string");
  ex.context = ctx->as_string();

  const Json* choices = j.find("choices");
  if (!choices) fail(where, ": missing key \"choices\" (a list of at least 2 strings)");
  if (!choices->is_array())
    fail(where, ": \"choices\" is ", a_type(*choices), ", expected a list of at least 2 strings");
  const auto& items = choices->as_array();
  if (items.size() < 2)
    fail(where, ": \"choices\" has ", items.size(), " entr", items.size() == 1 ? "y" : "ies",
         ", a multiple-choice example needs at least 2");
  for (std::size_t c = 0; c < items.size(); ++c) {
    if (!items[c].is_string()) fail(where, ": choices[", c, "] is ", a_type(items[c]), ", expected a string");
    if (items[c].as_string().empty())
      fail(where, ": choices[", c, "] is empty; every choice needs some text to score");
    ex.choices.push_back(items[c].as_string());
  }

  const Json* label = j.find("label");
  if (!label) fail(where, ": missing key \"label\" (0-based index of the right choice)");
  if (!label->is_integer())
    fail(where, ": \"label\" must be an integer (0-based index of the right choice), got ",
         label->is_number() ? std::string("a non-integer number") : a_type(*label),
         label->is_string() ? cat(" \"", label->as_string(), "\"") : std::string());
  ex.label = label->as_int();
  const auto n = static_cast<std::int64_t>(ex.choices.size());
  if (ex.label < 0 || ex.label >= n)
    fail(where, ": \"label\" = ", ex.label, " is out of range for ", n, " choices (valid: 0 to ", n - 1, ")");
  return ex;
}

}  // namespace

std::vector<McExample> parse_task_jsonl(std::string_view text, const std::string& origin) {
  // A UTF-8 byte order mark (some editors write one) is not part of the first line's JSON.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<McExample> out;
  std::size_t pos = 0;
  std::int64_t line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (is_blank(line)) continue;
    out.push_back(parse_example(line, cat(origin, ":", line_no)));
  }
  if (out.empty())
    fail(origin, ": no examples (the file is empty or blank). A task file holds one JSON object per line, ",
         "see inputs/tasks/README.md");
  return out;
}

std::vector<McExample> load_task_jsonl(const std::string& path) {
  return parse_task_jsonl(read_text_file(path, "task file"), path);
}

std::int64_t choice_bytes(const std::string& choice) {
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(choice.size()));
}

}  // namespace quopt
