#include "io/run_directory.hpp"

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace quopt {

std::vector<std::string> previous_run_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const char* name : {"metrics.jsonl", "run.h5"})
    if (fs::exists(fs::path(dir) / name, ec)) out.emplace_back(name);
  std::vector<std::string> ckpts;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "checkpoints", ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0 && n.size() > 3 && n.substr(n.size() - 3) == ".h5")
      ckpts.push_back("checkpoints/" + n);
  }
  std::sort(ckpts.begin(), ckpts.end());
  out.insert(out.end(), ckpts.begin(), ckpts.end());
  return out;
}

std::string describe_run_files(const std::vector<std::string>& files) {
  std::vector<std::string> parts;
  std::size_t ckpts = 0;
  for (const auto& f : files) {
    if (f.rfind("checkpoints/", 0) == 0)
      ++ckpts;
    else
      parts.push_back(f);
  }
  if (ckpts > 0) parts.push_back(cat(ckpts, " checkpoint", ckpts > 1 ? "s" : ""));
  std::string s;
  for (std::size_t i = 0; i < parts.size(); ++i)
    s += (i == 0 ? "" : (i + 1 == parts.size() ? " and " : ", ")) + parts[i];
  return s;
}

std::string move_previous_run(const std::string& dir) {
  const auto files = previous_run_files(dir);
  fs::path dest;
  for (int n = 1;; ++n) {
    dest = fs::path(dir) / cat("previous-", n);
    if (!fs::exists(dest)) break;
  }
  std::error_code ec;
  fs::create_directories(dest / "checkpoints", ec);
  QUOPT_CHECK(!ec, "cannot create ", dest.string(), " to move the earlier run's files into: ", ec.message());
  for (const auto& f : files) {
    fs::rename(fs::path(dir) / f, dest / f, ec);
    QUOPT_CHECK(!ec, "cannot move ", (fs::path(dir) / f).string(), " to ", (dest / f).string(), ": ",
                ec.message());
  }
  return dest.string();
}

}  // namespace quopt
