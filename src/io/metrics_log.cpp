#include "io/metrics_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "io/disk_space.hpp"
#include "io/json.hpp"

namespace quopt {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("null");
}

std::string format_record(const StepRecord& r) {
  std::string s = cat("{\"step\":", r.step, ",\"tokens\":", r.tokens, ",\"loss\":", json_number(r.loss),
                      ",\"lr\":", json_number(r.lr), ",\"grad_norm\":", json_number(r.grad_norm));
  if (r.val_loss) s += cat(",\"val_loss\":", json_number(*r.val_loss));
  s += cat(",\"time\":", json_number(r.time), ",\"tokens_per_s\":", json_number(r.tokens_per_s),
           ",\"failed_roots\":", r.failed_roots);
  if (r.skipped_steps > 0) s += cat(",\"skipped_steps\":", r.skipped_steps);
  s += "}\n";
  return s;
}

std::optional<std::int64_t> record_step(const std::string& line) {
  if (line.empty() || line.front() != '{' || line.back() != '}') return std::nullopt;  // cheap common cases
  Json j;
  try {
    j = parse_json(line);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!j.is_object() || !j.contains("step") || !json_is_int64(j["step"])) return std::nullopt;
  return json_int64(j["step"], "step");
}

MetricsLog::~MetricsLog() {
  close();
}

void MetricsLog::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void MetricsLog::open(const std::string& path, bool append) {
  close();
  path_ = path;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
  QUOPT_CHECK(fd_ >= 0, "cannot write ", path, ": ", std::strerror(errno),
              "; check that the output directory is writable");
}

void MetricsLog::write(const StepRecord& r) {
  append(format_record(r), r.step);
}

void MetricsLog::write_line(const std::string& json_object) {
  append(json_object + "\n", record_step(json_object).value_or(-1));
}

void MetricsLog::append(const std::string& line, std::int64_t step) {
  QUOPT_CHECK(fd_ >= 0, "MetricsLog: ", path_.empty() ? "no file" : path_, " is not open");
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      fail(
          "cannot append the record of step ", step, " to ", path_, ": ", std::strerror(err), " (wrote ",
          done, " of ", line.size(), " bytes)", free_space_note(path_),
          ". Training stopped; fix the cause and continue with --resume auto (a torn last line is dropped on "
          "resume)");
    }
    done += static_cast<std::size_t>(n);
  }
}

MetricsRepair repair_metrics_log(const std::string& path, std::int64_t step) {
  MetricsRepair rep;
  std::ifstream in(path, std::ios::binary);
  if (!in) return rep;
  std::string kept, line;
  std::int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const auto s = record_step(line);
    if (!s) {
      rep.torn_lines.push_back(number);
    } else if (*s <= step) {
      kept += line + '\n';
      ++rep.kept;
    } else {
      ++rep.dropped_later;
    }
  }
  QUOPT_CHECK(in.eof(), "cannot read ", path, " to repair it: ", std::strerror(errno));
  in.close();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << kept;
    out.flush();
    if (!out) {
      out.close();
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      fail("cannot write ", tmp, " while repairing ", path, " (is the disk full?); ", path, " is unchanged");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  QUOPT_CHECK(!ec, "cannot replace ", path, " by its repaired copy ", tmp, ": ", ec.message());
  return rep;
}

}  // namespace quopt
