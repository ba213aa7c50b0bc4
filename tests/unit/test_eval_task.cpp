// The JSON reader (io/json on nlohmann-json) and the task JSONL format: values, escapes, and errors that name
// the file, the line and the problem.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "core/error.hpp"
#include "eval/task.hpp"
#include "io/json.hpp"
#include "test_eval_util.hpp"

namespace quopt {
namespace {

using evaltest::error_of;

TEST(EvalJson, ParsesValues) {
  const Json j = parse_json(
      R"( {"s": "a\"b\\c\/\n\t", "i": -42, "f": 2.5e1, "z": 0, "big": 123456789012345678901234,
           "t": true, "n": null, "a": [1, [], {}], "e": "\u00e9\ud83d\ude00"} )");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 9u);
  EXPECT_EQ(j["s"].get<std::string>(), "a\"b\\c/\n\t");
  EXPECT_TRUE(json_is_int64(j["i"]));
  EXPECT_EQ(json_int64(j["i"], "i"), -42);
  EXPECT_FALSE(json_is_int64(j["f"]));
  EXPECT_DOUBLE_EQ(j["f"].get<double>(), 25.0);
  EXPECT_EQ(json_int64(j["z"], "z"), 0);
  EXPECT_FALSE(json_is_int64(j["big"]));  // does not fit int64: still a number
  EXPECT_DOUBLE_EQ(j["big"].get<double>(), 1.23456789012345678901234e23);
  EXPECT_FALSE(json_is_int64(parse_json("18446744073709551615")));  // fits uint64, not int64
  EXPECT_TRUE(j["t"].get<bool>());
  EXPECT_TRUE(j["n"].is_null());
  EXPECT_EQ(j["a"].size(), 3u);
  EXPECT_TRUE(j["a"][1].is_array());
  EXPECT_TRUE(j["a"][2].is_object());
  // U+00E9 is C3 A9 in UTF-8; U+1F600 (surrogates D83D DE00) is F0 9F 98 80.
  EXPECT_EQ(j["e"].get<std::string>(), "\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_FALSE(j.contains("missing"));
  EXPECT_NE(error_of([&] { json_int64(j["s"], "\"s\""); }).find("\"s\" is a string, expected an integer"),
            std::string::npos);
  EXPECT_EQ(json_a_type(j["a"]), "an array");
  EXPECT_EQ(json_a_type(j["f"]), "a number");
  // Raw UTF-8 passes through unchanged.
  EXPECT_EQ(parse_json("\"caf\xC3\xA9\"").get<std::string>(), "caf\xC3\xA9");
}

TEST(EvalJson, ErrorsSayWhereAndWhat) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {R"({"a": })", "column 7: syntax error while parsing value - unexpected '}'"},
      {R"({"a": 1} x)", "column 10: syntax error while parsing value - invalid literal"},
      {R"({"a" 1})",
       "column 6: syntax error while parsing object separator - unexpected number literal; "
       "expected ':'"},
      {R"([1, 2)", "column 6: syntax error while parsing array - unexpected end of input; expected ']'"},
      {R"({"a": 01})", "column 8: syntax error while parsing object - unexpected number literal"},
      {R"({"a": 1.})", "expected digit after '.'"},
      {"\"a\tb\"", "control character U+0009 (HT) must be escaped"},
      {R"("\x")", "forbidden character after backslash"},
      {R"("\ud800")", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"},
      {R"("\udc00")", "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"},
      {"\"\xC3\x28\"", "ill-formed UTF-8 byte"},
      {"\"\xED\xA0\x80\"", "ill-formed UTF-8 byte"},  // an encoded surrogate
      {"\"\xC0\xAF\"", "ill-formed UTF-8 byte"},      // overlong '/'
      {R"({"a": 1, "a": 2})", "duplicate key \"a\""},
      {R"({"b": {"a": 1}, "a": 2})", ""},  // the same key in different objects is fine
      {R"("abc)", "missing closing quote"},
      {"", "column 1: syntax error while parsing value - unexpected end of input"},
      {"tru", "invalid literal"},
      {"{\n  \"a\": 1,\n  \"b\": }", "line 3, column 8: syntax error while parsing value"},
  };
  for (const Case& c : cases) {
    if (*c.expect == 0) {
      EXPECT_NO_THROW(parse_json(c.text)) << c.text;
      continue;
    }
    const std::string msg = error_of([&] { parse_json(c.text); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "input: " << c.text << "\nmessage: " << msg;
  }
  std::string deep(kJsonMaxDepth + 1, '[');
  EXPECT_NE(error_of([&] { parse_json(deep); }).find("nested deeper"), std::string::npos);
  std::string ok_deep = std::string(kJsonMaxDepth - 1, '[') + std::string(kJsonMaxDepth - 1, ']');
  EXPECT_NO_THROW(parse_json(ok_deep));
}

TEST(EvalTaskJsonl, ParsesExamples) {
  const std::string text =
      "\xEF\xBB\xBF"  // byte order mark
      R"({"context": "Question: q1\nAnswer:", "choices": ["yes", "no"], "label": 1, "id": "piqa-7"})"
      "\r\n"
      "\n   \n"
      R"({"label": 0, "choices": ["a", "b", "c"], "context": "", "extra": {"kept": "ignored"}})"
      "\n"
      R"({"context": "x", "choices": ["caf\u00e9", "d"], "label": 0, "id": 12})";
  const auto ex = parse_task_jsonl(text, "mem.jsonl");
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].id, "piqa-7");
  EXPECT_EQ(ex[0].context, "Question: q1\nAnswer:");
  EXPECT_EQ(ex[0].choices, (std::vector<std::string>{"yes", "no"}));
  EXPECT_EQ(ex[0].label, 1);
  EXPECT_EQ(ex[1].id, "mem.jsonl:4");  // line number counts the blank lines
  EXPECT_EQ(ex[1].context, "");
  EXPECT_EQ(ex[1].choices.size(), 3u);
  EXPECT_EQ(ex[2].id, "12");
  EXPECT_EQ(ex[2].choices[0], "caf\xC3\xA9");
  EXPECT_EQ(choice_bytes(ex[2].choices[0]), 5);  // 4 characters, 5 UTF-8 bytes
  EXPECT_TRUE(ex[0].choice_tokens.empty());
}

TEST(EvalTaskJsonl, ErrorsNameFileLineAndProblem) {
  const std::string good = R"({"context": "c", "choices": ["a", "b"], "label": 0})";
  struct Case {
    std::string line;
    const char* expect;
  };
  const Case cases[] = {
      {R"({"context": "c", "choices": ["a", "b"], "label": 0)", "invalid JSON, column"},
      {R"(["c", ["a", "b"], 0])", "the line is an array in JSON, expected an object"},
      {R"({"choices": ["a", "b"], "label": 0})", "missing key \"context\""},
      {R"({"context": "c", "label": 0})", "missing key \"choices\""},
      {R"({"context": "c", "choices": ["a", "b"]})", "missing key \"label\""},
      {R"({"context": 3, "choices": ["a", "b"], "label": 0})", "\"context\" is a number, expected a string"},
      {R"({"context": "c", "choices": "a", "label": 0})", "\"choices\" is a string, expected a list"},
      {R"({"context": "c", "choices": ["a"], "label": 0})", "\"choices\" has 1 entry, a multiple-choice"},
      {R"({"context": "c", "choices": [], "label": 0})", "\"choices\" has 0 entries"},
      {R"({"context": "c", "choices": ["a", 2], "label": 0})", "choices[1] is a number, expected a string"},
      {R"({"context": "c", "choices": ["a", ""], "label": 0})", "choices[1] is empty"},
      {R"({"context": "c", "choices": ["a", "b"], "label": 2})",
       "\"label\" = 2 is out of range for 2 choices"},
      {R"({"context": "c", "choices": ["a", "b"], "label": -1})", "\"label\" = -1 is out of range"},
      {R"({"context": "c", "choices": ["a", "b"], "label": 1.0})", "must be an integer"},
      {R"({"context": "c", "choices": ["a", "b"], "label": "1"})", "must be an integer"},
      {R"({"context": "c", "choices": ["a", "b"], "label": 0, "id": [1]})", "\"id\" is an array"},
  };
  for (const Case& c : cases) {
    // The bad line is line 3 (after a good line and a blank one).
    const std::string msg =
        error_of([&] { parse_task_jsonl(good + "\n\n" + c.line + "\n", "tasks/x.jsonl"); });
    EXPECT_EQ(msg.rfind("tasks/x.jsonl:3: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "line: " << c.line << "\nmessage: " << msg;
  }
  EXPECT_NE(error_of([] { parse_task_jsonl("", "empty.jsonl"); }).find("empty.jsonl: no examples"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_task_jsonl("\n  \r\n", "blank.jsonl"); }).find("blank.jsonl: no examples"),
            std::string::npos);
}

TEST(EvalTaskJsonl, LoadsFiles) {
  evaltest::TempDir dir;
  const std::string path = dir.file("t.jsonl");
  {
    std::ofstream f(path);
    f << R"({"context": "c", "choices": ["a", "b"], "label": 1})"
      << "\n";
  }
  const auto ex = load_task_jsonl(path);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].id, path + ":1");
  const std::string missing = dir.file("nope.jsonl");
  const std::string msg = error_of([&] { load_task_jsonl(missing); });
  EXPECT_NE(msg.find("cannot read task file " + missing), std::string::npos) << msg;
}

// Used by tests/python/test_convert_tasks.py: loads the file named by QUOPT_EVAL_TASK_FILE with the C++
// loader and checks it holds QUOPT_EVAL_TASK_COUNT examples. Skipped when the variable is not set.
TEST(EvalTaskInterop, LoadsConvertedFile) {
  const char* path = std::getenv("QUOPT_EVAL_TASK_FILE");
  if (path == nullptr) {
    GTEST_SKIP() << "QUOPT_EVAL_TASK_FILE not set";
  }
  const auto ex = load_task_jsonl(path);
  if (const char* n = std::getenv("QUOPT_EVAL_TASK_COUNT")) {
    EXPECT_EQ(static_cast<std::int64_t>(ex.size()), std::atoll(n));
  }
  for (const auto& e : ex)
    std::cout << "example " << e.id << " choices=" << e.choices.size() << " label=" << e.label << "\n";
}

}  // namespace
}  // namespace quopt
