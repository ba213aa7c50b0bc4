#include "io/metrics_read.hpp"

#include <fstream>
#include <limits>

#include "core/error.hpp"
#include "io/json.hpp"

namespace quopt {

ValCurve read_val_curve(const std::string& jsonl_path) {
  std::ifstream in(jsonl_path);
  QUOPT_CHECK(in.is_open(), "cannot read ", jsonl_path,
              ": the run's metrics log is missing (train the run again, or restore the file)");
  ValCurve c;
  std::string line;
  for (std::int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    Json j;
    try {
      j = parse_json(line);
    } catch (const Error& e) {
      fail(jsonl_path, " line ", n, ": ", e.what());
    }
    QUOPT_CHECK(j.is_object(), jsonl_path, " line ", n, " is ", json_a_type(j), ", not a metrics record");
    const auto v = j.find("val_loss");
    if (v == j.end()) continue;  // a step logged without validation
    const auto s = j.find("step");
    QUOPT_CHECK(s != j.end(), jsonl_path, " line ", n, " has a val_loss but no step");
    const std::int64_t step = json_int64(*s, jsonl_path + " line " + std::to_string(n) + " step");
    QUOPT_CHECK(v->is_null() || v->is_number(), jsonl_path, " line ", n, ": val_loss is ", json_a_type(*v),
                ", not a number");
    QUOPT_CHECK(c.step.empty() || step > c.step.back(), jsonl_path, " line ", n, ": step ", step,
                " does not follow step ", c.step.empty() ? 0 : c.step.back(),
                "; the log mixes two runs (train again into an empty directory)");
    c.step.push_back(step);
    c.loss.push_back(v->is_null() ? std::numeric_limits<double>::quiet_NaN() : v->get<double>());
  }
  return c;
}

}  // namespace quopt
