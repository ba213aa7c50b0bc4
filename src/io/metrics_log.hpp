#pragma once
// DIR/metrics.jsonl: one JSON object per logged step, for machines (plotting, monitoring).
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

namespace quopt {

struct StepRecord {
  std::int64_t step = 0;
  std::int64_t tokens = 0;  // tokens trained on so far
  double loss = 0.0;
  double lr = 0.0;
  double grad_norm = 0.0;
  std::optional<double> val_loss;
  double time = 0.0;  // seconds since training started
  double tokens_per_s = 0.0;
  std::int64_t failed_roots = 0;  // optimizer root/eigen computations that failed so far (all ranks)
};

class MetricsLog {
 public:
  MetricsLog() = default;
  // Opens for writing; append keeps existing lines (resume), otherwise the file is truncated.
  void open(const std::string& path, bool append);
  void write(const StepRecord& r);
  // One more JSON object line (it must hold "step" first, for the resume truncation), e.g. a
  // robustness measurement (train/robustness.hpp).
  void write_line(const std::string& json_object);
  bool is_open() const { return out_.is_open(); }

 private:
  std::ofstream out_;
};

// Formats a double for JSON: shortest round-trip form; NaN/inf become null.
std::string json_number(double v);

}  // namespace quopt
