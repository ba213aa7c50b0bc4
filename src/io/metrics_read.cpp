#include "io/metrics_read.hpp"

#include <charconv>
#include <fstream>
#include <limits>

#include "core/error.hpp"

namespace quopt {

namespace {

// The text of the value of "key" in one metrics line (up to the next ',' or '}'), or npos-empty.
bool value_of(const std::string& line, const std::string& key, std::string& out) {
  const std::string pat = "\"" + key + "\":";
  const auto pos = line.find(pat);
  if (pos == std::string::npos) return false;
  const auto begin = pos + pat.size();
  const auto end = line.find_first_of(",}", begin);
  out = line.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  return true;
}

}  // namespace

ValCurve read_val_curve(const std::string& jsonl_path) {
  std::ifstream in(jsonl_path);
  QUOPT_CHECK(in.is_open(), "cannot read ", jsonl_path,
              ": the run's metrics log is missing (train the run again, or restore the file)");
  ValCurve c;
  std::string line, text;
  for (std::int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty() || !value_of(line, "val_loss", text)) continue;
    std::string step_text;
    std::int64_t step = 0;
    QUOPT_CHECK(value_of(line, "step", step_text), jsonl_path, " line ", n, " has a val_loss but no step");
    const auto rs = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
    QUOPT_CHECK(rs.ec == std::errc() && rs.ptr == step_text.data() + step_text.size(), jsonl_path, " line ",
                n, ": step '", step_text, "' is not an integer");
    double v = std::numeric_limits<double>::quiet_NaN();
    if (text != "null") {
      const auto rv = std::from_chars(text.data(), text.data() + text.size(), v);
      QUOPT_CHECK(rv.ec == std::errc() && rv.ptr == text.data() + text.size(), jsonl_path, " line ", n,
                  ": val_loss '", text, "' is not a number");
    }
    QUOPT_CHECK(c.step.empty() || step > c.step.back(), jsonl_path, " line ", n, ": step ", step,
                " does not follow step ", c.step.empty() ? 0 : c.step.back(),
                "; the log mixes two runs (train again into an empty directory)");
    c.step.push_back(step);
    c.loss.push_back(v);
  }
  return c;
}

}  // namespace quopt
