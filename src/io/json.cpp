#include "io/json.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <vector>

#include "core/error.hpp"

namespace quopt {

namespace {

// "line L, column N: " (or "column N: " when the text is one line) of the 1-based byte position.
std::string position(std::string_view text, std::size_t byte) {
  const std::size_t at = std::min(byte > 0 ? byte - 1 : 0, text.size());
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < at; ++i)
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  const std::size_t column = at - line_start + 1;
  if (text.find('\n') == std::string_view::npos) return cat("column ", column, ": ");
  return cat("line ", line, ", column ", column, ": ");
}

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1, column 7: "
// prefix (quopt prints its own position).
std::string problem(const nlohmann::json::parse_error& e) {
  std::string m = e.what();
  const std::size_t at = m.find("column ");
  if (at != std::string::npos) {
    const std::size_t colon = m.find(": ", at);
    if (colon != std::string::npos) return m.substr(colon + 2);
  }
  return m;
}

}  // namespace

Json parse_json(std::string_view text) {
  // The parser callback sees every object's keys in order: one set of seen keys per open object.
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  bool too_deep = false;
  const Json::parser_callback_t check = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kJsonMaxDepth) {
          too_deep = true;
          throw Error("nested");  // stops the parser; reported below
        }
        if (event == Json::parse_event_t::object_start) keys.emplace_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
          throw Error("duplicate");
        }
        break;
      case Json::parse_event_t::object_end:
        keys.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), check);
  } catch (const nlohmann::json::parse_error& e) {
    fail(position(text, e.byte), problem(e));
  } catch (const Error&) {
    // No byte position from a callback: say which key / how deep instead.
    if (too_deep) fail("JSON nested deeper than ", kJsonMaxDepth, " levels");
    fail("duplicate key \"", duplicate, "\" in object");
  }
}

bool json_is_int64(const Json& j) {
  if (j.is_number_unsigned())
    return j.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return j.is_number_integer();
}

std::int64_t json_int64(const Json& j, std::string_view what) {
  if (!json_is_int64(j)) fail(what, " is ", json_a_type(j), ", expected an integer");
  return j.get<std::int64_t>();
}

void write_json_file(const std::string& path, const Json& j) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail("cannot create ", tmp, ": ", std::strerror(errno));
    f << j.dump(2) << '\n';
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      fail("cannot write ", tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    fail("cannot rename ", tmp, " to ", path, ": ", why);
  }
}

std::string json_a_type(const Json& j) {
  const std::string t = j.type_name();  // null, boolean, number, string, array, object
  return (t[0] == 'a' || t[0] == 'o' ? "an " : "a ") + t;
}

}  // namespace quopt
