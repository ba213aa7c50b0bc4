#pragma once
// DIR/metrics.jsonl: one JSON object per logged step, for machines (plotting, monitoring).
//
// Every record is one JSON object on one line, written with a single write(2) call and checked: a failed or
// short write (a full disk, a quota, an I/O error) throws quopt::Error naming the file and the cause, so
// training never goes on logging into the void. What a crash or a full disk can leave behind is a torn last
// line; repair_metrics_log() drops torn lines (and records of steps after a checkpoint) when a run
// resumes, so the file always reads as valid JSONL of one uninterrupted run.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  std::int64_t failed_roots = 0;   // optimizer root/eigen computations that failed so far (all ranks)
  std::int64_t skipped_steps = 0;  // steps whose update was skipped for a non-finite gradient, so far
};

class MetricsLog {
 public:
  MetricsLog() = default;
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog();
  // Opens for writing; append keeps existing lines (resume), otherwise the file is truncated.
  void open(const std::string& path, bool append);
  // Appends one record; throws quopt::Error when it cannot be written completely.
  void write(const StepRecord& r);
  // One more JSON object line with "step" (a robustness measurement, train/robustness.hpp), checked the
  // same way.
  void write_line(const std::string& json_object);
  bool is_open() const { return fd_ >= 0; }
  void close();

 private:
  void append(const std::string& line, std::int64_t step);
  int fd_ = -1;
  std::string path_;
};

// The line MetricsLog writes for a record (with its trailing newline).
std::string format_record(const StepRecord& r);

// The step of a complete record: a line that is one whole JSON object with an integer "step"; nullopt
// for anything else (a torn line, garbage, an empty line).
std::optional<std::int64_t> record_step(const std::string& line);

struct MetricsRepair {
  std::int64_t kept = 0;                 // complete records with step <= the checkpoint's
  std::int64_t dropped_later = 0;        // complete records after the checkpoint's step (redone)
  std::vector<std::int64_t> torn_lines;  // 1-based numbers of lines that were not complete records
};

// Rewrites `path` (atomically: a temporary file renamed over it) keeping only the complete records
// with step <= `step`, in order. A missing file is left missing (nothing to repair).
MetricsRepair repair_metrics_log(const std::string& path, std::int64_t step);

// Formats a double for JSON: shortest round-trip form; NaN/inf become null.
std::string json_number(double v);

}  // namespace quopt
