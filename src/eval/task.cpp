#include "eval/task.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "io/json.hpp"
#include "io/tokenizer.hpp"

namespace quopt {

namespace {

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
    fail(where, ": the line is ", json_a_type(j),
         " in JSON, expected an object with keys \"context\", \"choices\" and \"label\"");

  McExample ex;
  ex.id = where;
  // Member by key, or nullptr when absent.
  const auto find = [&j](const char* key) -> const Json* {
    const auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  };
  if (const Json* id = find("id")) {
    if (id->is_string())
      ex.id = id->get<std::string>();
    else if (json_is_int64(*id))
      ex.id = std::to_string(id->get<std::int64_t>());
    else
      fail(where, ": \"id\" is ", json_a_type(*id), ", expected a string or an integer");
  }

  const Json* ctx = find("context");
  if (!ctx) fail(where, ": missing key \"context\" (the text the choices continue; may be \"\")");
  if (!ctx->is_string()) fail(where, ": \"context\" is ", json_a_type(*ctx), ", expected a string");
  ex.context = ctx->get<std::string>();

  const Json* choices = find("choices");
  if (!choices) fail(where, ": missing key \"choices\" (a list of at least 2 strings)");
  if (!choices->is_array())
    fail(where, ": \"choices\" is ", json_a_type(*choices), ", expected a list of at least 2 strings");
  const Json& items = *choices;
  if (items.size() < 2)
    fail(where, ": \"choices\" has ", items.size(), " entr", items.size() == 1 ? "y" : "ies",
         ", a multiple-choice example needs at least 2");
  for (std::size_t c = 0; c < items.size(); ++c) {
    if (!items[c].is_string())
      fail(where, ": choices[", c, "] is ", json_a_type(items[c]), ", expected a string");
    if (items[c].get_ref<const std::string&>().empty())
      fail(where, ": choices[", c, "] is empty; every choice needs some text to score");
    ex.choices.push_back(items[c].get<std::string>());
  }

  const Json* label = find("label");
  if (!label) fail(where, ": missing key \"label\" (0-based index of the right choice)");
  if (!json_is_int64(*label))
    fail(where, ": \"label\" must be an integer (0-based index of the right choice), got ",
         label->is_number() ? std::string("a non-integer number") : json_a_type(*label),
         label->is_string() ? cat(" \"", label->get<std::string>(), "\"") : std::string());
  ex.label = label->get<std::int64_t>();
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
