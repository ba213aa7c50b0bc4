#include "io/metrics_log.hpp"

#include <charconv>
#include <cmath>

#include "core/error.hpp"

namespace quopt {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("null");
}

void MetricsLog::open(const std::string& path, bool append) {
  out_.open(path, append ? std::ios::app : std::ios::trunc);
  QUOPT_CHECK(out_.is_open(), "cannot write ", path, ": check that the output directory is writable");
}

void MetricsLog::write(const StepRecord& r) {
  out_ << "{\"step\":" << r.step << ",\"tokens\":" << r.tokens << ",\"loss\":" << json_number(r.loss)
       << ",\"lr\":" << json_number(r.lr) << ",\"grad_norm\":" << json_number(r.grad_norm);
  if (r.val_loss) out_ << ",\"val_loss\":" << json_number(*r.val_loss);
  out_ << ",\"time\":" << json_number(r.time) << ",\"tokens_per_s\":" << json_number(r.tokens_per_s)
       << ",\"failed_roots\":" << r.failed_roots << "}\n";
  out_.flush();
}

void MetricsLog::write_line(const std::string& json_object) {
  out_ << json_object << '\n';
  out_.flush();
}

}  // namespace quopt
