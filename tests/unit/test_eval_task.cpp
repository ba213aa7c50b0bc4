// The JSON reader and the task JSONL format: values, escapes, and errors that name the file, the line
// and the problem.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "core/error.hpp"
#include "eval/json.hpp"
#include "eval/task.hpp"
#include "test_eval_util.hpp"

namespace quopt {
namespace {

using evaltest::error_of;

TEST(EvalJson, ParsesValues) {
  const Json j = parse_json(
      R"( {"s": "a\"b\\c\/\n\t", "i": -42, "f": 2.5e1, "z": 0, "big": 123456789012345678901234,
           "t": true, "n": null, "a": [1, [], {}], "e": "\u00e9\ud83d\ude00"} )");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.as_object().size(), 9u);
  EXPECT_EQ(j.find("s")->as_string(), "a\"b\\c/\n\t");
  EXPECT_TRUE(j.find("i")->is_integer());
  EXPECT_EQ(j.find("i")->as_int(), -42);
  EXPECT_FALSE(j.find("f")->is_integer());
  EXPECT_DOUBLE_EQ(j.find("f")->as_double(), 25.0);
  EXPECT_EQ(j.find("z")->as_int(), 0);
  EXPECT_FALSE(j.find("big")->is_integer());  // does not fit int64: still a number
  EXPECT_DOUBLE_EQ(j.find("big")->as_double(), 1.23456789012345678901234e23);
  EXPECT_TRUE(j.find("t")->as_bool());
  EXPECT_TRUE(j.find("n")->is_null());
  EXPECT_EQ(j.find("a")->as_array().size(), 3u);
  EXPECT_TRUE(j.find("a")->as_array()[1].is_array());
  EXPECT_TRUE(j.find("a")->as_array()[2].is_object());
  // U+00E9 is C3 A9 in UTF-8; U+1F600 (surrogates D83D DE00) is F0 9F 98 80.
  EXPECT_EQ(j.find("e")->as_string(), "\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(j.find("missing"), nullptr);
  EXPECT_THROW(j.find("s")->as_int(), Error);
  // Raw UTF-8 passes through unchanged.
  EXPECT_EQ(parse_json("\"caf\xC3\xA9\"").as_string(), "caf\xC3\xA9");
}

TEST(EvalJson, ErrorsSayWhereAndWhat) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {R"({"a": })", "column 7: expected a JSON value"},
      {R"({"a": 1} x)", "column 10: unexpected 'x' after the JSON value"},
      {R"({"a" 1})", "column 6: expected ':'"},
      {R"([1, 2)", "column 6: expected ',' or ']'"},
      {R"({"a": 01})", "leading zeros"},
      {R"({"a": 1.})", "expected a digit after '.'"},
      {"\"a\tb\"", "control character"},
      {R"("\x")", "invalid escape sequence '\\x'"},
      {R"("\ud800")", "not followed by a low surrogate"},
      {R"("\udc00")", "unpaired low surrogate"},
      {"\"\xC3\x28\"", "invalid UTF-8"},
      {"\"\xED\xA0\x80\"", "invalid UTF-8"},  // an encoded surrogate
      {"\"\xC0\xAF\"", "invalid UTF-8"},      // overlong '/'
      {R"({"a": 1, "a": 2})", "duplicate key \"a\""},
      {R"("abc)", "unterminated string"},
      {"", "found end of text"},
      {"tru", "expected a JSON value"},
  };
  for (const Case& c : cases) {
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
