#include "io/config_agreement.hpp"

#include <sstream>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "parallel/collective_error.hpp"

namespace quopt {

namespace {

// (key, value text) per line of a resolved config, keys made absolute with their [section].
std::vector<std::pair<std::string, std::string>> config_lines(const std::string& toml) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(toml);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) {
      out.emplace_back(section, line);
      continue;
    }
    out.emplace_back((section.empty() ? "" : section + ".") + line.substr(0, eq), line.substr(eq + 3));
  }
  return out;
}

// The first argument that differs: "argument 3: '--out' vs '--set'".
std::string first_argument_difference(const std::string& a, const std::string& b) {
  auto split = [](const std::string& s) {
    std::vector<std::string> v;
    std::string cur;
    for (char c : s) {
      if (c == '\x1f') {
        v.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    v.push_back(cur);
    return v;
  };
  const auto va = split(a), vb = split(b);
  for (std::size_t i = 0; i < std::max(va.size(), vb.size()); ++i) {
    const std::string x = i < va.size() ? "'" + va[i] + "'" : "(none)";
    const std::string y = i < vb.size() ? "'" + vb[i] + "'" : "(none)";
    if (x != y) return cat("command-line argument ", i + 1, ": ", x, " vs ", y);
  }
  return {};
}

std::string readable(const std::string& command_line) {
  std::string s = command_line;
  for (char& c : s)
    if (c == '\x1f') c = ' ';
  return s;
}

}  // namespace

std::string first_config_difference(const std::string& toml_a, const std::string& toml_b) {
  const auto a = config_lines(toml_a), b = config_lines(toml_b);
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size() && i < b.size() && a[i] == b[i]) continue;
    if (i < a.size() && i < b.size() && a[i].first == b[i].first)
      return cat(a[i].first, " = ", a[i].second, " vs ", b[i].second);
    return cat(i < a.size() ? a[i].first : b[i].first, " (present in only one of them)");
  }
  return {};
}

void agree_on_config(MPI_Comm comm, const std::vector<std::string>& args, const std::string& resolved_toml) {
  std::string command_line;
  for (std::size_t i = 0; i < args.size(); ++i) command_line += (i ? "\x1f" : "") + args[i];
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (size == 1) return;
  const std::uint64_t h = fnv1a64(command_line + '\0' + resolved_toml);
  std::vector<std::uint64_t> all(static_cast<std::size_t>(size));
  MPI_Allgather(&h, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm);
  int other = -1;  // the lowest rank that differs from rank 0
  std::string same, differ;
  for (int r = 0; r < size; ++r) {
    const bool eq = all[static_cast<std::size_t>(r)] == all[0];
    if (!eq && other < 0) other = r;
    std::string& list = eq ? same : differ;
    list += (list.empty() ? "" : ", ") + std::to_string(r);
  }
  if (other < 0) return;
  // Both ranks' texts go to every rank, so that every rank throws the same message.
  const std::string cmd0 = bcast_string(comm, command_line, 0),
                    cmd1 = bcast_string(comm, command_line, other);
  const std::string toml0 = bcast_string(comm, resolved_toml, 0),
                    toml1 = bcast_string(comm, resolved_toml, other);
  std::string what = first_config_difference(toml0, toml1);
  what = what.empty() ? first_argument_difference(cmd0, cmd1) : "config key " + what;
  throw CollectiveError(
      cat("the ranks of this job disagree: rank", same.find(',') == std::string::npos ? " " : "s ", same,
          " and rank", differ.find(',') == std::string::npos ? " " : "s ", differ,
          " were started with different commands or configs (first difference, rank 0 vs rank ", other, ": ",
          what, "). Rank 0 ran: ", readable(cmd0),
          ". Start every rank with the same command, and make sure every node sees the same config files."));
}

}  // namespace quopt
