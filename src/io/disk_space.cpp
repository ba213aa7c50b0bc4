#include "io/disk_space.hpp"

#include <sys/statvfs.h>

#include <cstdio>
#include <filesystem>

namespace quopt {

std::string free_space_note(const std::string& path) {
  std::filesystem::path dir(path);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) dir = dir.parent_path();
  if (dir.empty()) dir = ".";
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return {};
  const double bytes = static_cast<double>(st.f_bavail) * static_cast<double>(st.f_frsize);
  const char* unit[] = {"bytes", "KB", "MB", "GB", "TB"};
  double v = bytes;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, unit[u]);
  return std::string("; the file system of ") + dir.string() + " has " + buf + " free" +
         (bytes < 64.0 * 1024 * 1024 ? " (is it full?)" : "");
}

}  // namespace quopt
