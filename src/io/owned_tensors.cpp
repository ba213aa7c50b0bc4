#include "io/owned_tensors.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>

#include <xxhash.h>

#include "core/error.hpp"
#include "core/finite.hpp"
#include "parallel/collective_error.hpp"

namespace quopt {

std::uint64_t tensor_checksum(const Tensor& t) {
  const Tensor host = t.is_host() ? t : t.to(Device::Host);  // device memory is not readable here
  return XXH3_64bits(host.raw(), host.nbytes());
}

std::uint64_t tensor_checksum_fnv1a(const Tensor& t) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  const Tensor host = t.is_host() ? t : t.to(Device::Host);
  const auto* p = static_cast<const unsigned char*>(host.raw());
  for (std::size_t i = 0; i < host.nbytes(); ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;  // FNV-1a 64 prime
  }
  return h;
}

namespace {

// The hash of the manifest's lines, named by the root attribute "manifest_hash". Checkpoints written
// before it existed have no such attribute and carry FNV-1a sums; they still verify.
constexpr const char* kManifestHash = "xxh3-64";
constexpr const char* kLegacyManifestHash = "fnv1a-64";

std::string hex16(std::uint64_t h) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

struct Desc {
  std::string name;
  Shape shape;
  DType dtype;
  int owner;
};

// "name\x1f dtype \x1f d0,d1,... \x1e" for each tensor.
std::string encode(const std::vector<NamedTensor>& ts) {
  std::string s;
  for (const auto& t : ts) {
    s += t.name;
    s += '\x1f';
    s += std::to_string(static_cast<int>(t.tensor.dtype()));
    s += '\x1f';
    for (auto d : t.tensor.shape()) s += std::to_string(d) + ",";
    s += '\x1e';
  }
  return s;
}

std::vector<Desc> decode(const std::string& s, int owner) {
  std::vector<Desc> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::size_t a = s.find('\x1f', pos), b = s.find('\x1f', a + 1), e = s.find('\x1e', b + 1);
    Desc d;
    d.name = s.substr(pos, a - pos);
    d.dtype = static_cast<DType>(std::stoi(s.substr(a + 1, b - a - 1)));
    std::string dims = s.substr(b + 1, e - b - 1);
    std::size_t q = 0;
    while (q < dims.size()) {
      const std::size_t c = dims.find(',', q);
      d.shape.push_back(std::stoll(dims.substr(q, c - q)));
      q = c + 1;
    }
    d.owner = owner;
    out.push_back(std::move(d));
    pos = e + 1;
  }
  return out;
}

// All ranks' strings, in rank order.
std::vector<std::string> allgather_strings(MPI_Comm comm, const std::string& mine) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
  MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, comm);
  int total = 0;
  for (int r = 0; r < size; ++r) {
    displs[static_cast<std::size_t>(r)] = total;
    total += lens[static_cast<std::size_t>(r)];
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, comm);
  std::vector<std::string> out;
  for (int r = 0; r < size; ++r)
    out.push_back(all.substr(static_cast<std::size_t>(displs[static_cast<std::size_t>(r)]),
                             static_cast<std::size_t>(lens[static_cast<std::size_t>(r)])));
  return out;
}

}  // namespace

std::string write_owned(H5File& f, MPI_Comm comm, const std::vector<NamedTensor>& mine, bool manifest,
                        const NameFilter& must_be_finite) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const auto all = allgather_strings(comm, encode(mine));
  std::map<std::string, Desc> writers;  // sorted by name; lowest rank wins
  for (int r = 0; r < static_cast<int>(all.size()); ++r)
    for (auto& d : decode(all[static_cast<std::size_t>(r)], r)) {
      auto it = writers.find(d.name);
      if (it == writers.end()) {
        writers.emplace(d.name, d);
      } else {
        QUOPT_CHECK(it->second.shape == d.shape && it->second.dtype == d.dtype, "ranks ", it->second.owner,
                    " and ", r, " hold different tensors named ", d.name, ": ", shape_str(it->second.shape),
                    " vs ", shape_str(d.shape));
      }
    }
  std::vector<H5File::DatasetSpec> specs;
  for (const auto& [name, d] : writers) specs.push_back({name, d.shape, d.dtype});
  f.create_datasets(specs);
  std::ostringstream sums;
  std::string write_error;  // independent writes fail on one rank only: every rank learns of it below
  std::vector<std::int64_t> nonfinite(mine.size(), 0);
  const std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hash(XXH3_createState(), &XXH3_freeState);
  QUOPT_CHECK(hash != nullptr, "write_owned: out of memory for the checksum state");
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const NamedTensor& t = mine[i];
    const bool check = must_be_finite && must_be_finite(t.name);
    if (writers.at(t.name).owner != rank) {  // another rank writes it; this rank's copy is checked all the same
      if (check) nonfinite[i] = count_nonfinite(t.tensor);
      continue;
    }
    if (!write_error.empty()) continue;
    XXH3_64bits_reset(hash.get());
    std::int64_t bad = 0;
    try {
      if (manifest || check) {
        f.write(t.name, t.tensor, [&](const Tensor& piece) {
          if (check) bad += count_nonfinite(piece);
          if (manifest) XXH3_64bits_update(hash.get(), piece.raw(), piece.nbytes());
        });
      } else {
        f.write(t.name, t.tensor);
      }
    } catch (const Error& e) {
      write_error = e.what();
      continue;
    }
    nonfinite[i] = bad;
    // The streamed XXH3 equals the one-shot tensor_checksum of the whole tensor (xxHash's streaming API).
    if (manifest) sums << t.name << '\t' << hex16(XXH3_64bits_digest(hash.get())) << '\n';
  }
  throw_if_any(comm, write_error);
  std::string bad_values = must_be_finite ? describe_nonfinite(mine, nonfinite) : "";
  if (!manifest) return bad_values;
  std::vector<std::string> lines;
  for (const auto& part : allgather_strings(comm, sums.str())) {
    std::istringstream in(part);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  f.set_attr("/", "manifest_hash", kManifestHash);
  f.set_attr("/", "manifest", text);
  return bad_values;
}

std::string verify_manifest(const H5File& f, const TensorCheck& check) {
  if (!f.has_attr("/", "manifest")) return "no manifest attribute";
  const std::string hash =
      f.has_attr("/", "manifest_hash") ? f.get_attr_string("/", "manifest_hash") : kLegacyManifestHash;
  if (hash != kManifestHash && hash != kLegacyManifestHash)
    return "the manifest's checksums use the hash '" + hash + "', which this quopt does not know (it knows " +
           kManifestHash + " and " + kLegacyManifestHash + "); a newer quopt wrote this file: use that one";
  const bool legacy = hash == kLegacyManifestHash;
  std::istringstream in(f.get_attr_string("/", "manifest"));
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) return "malformed manifest line '" + line + "'";
    const std::string name = line.substr(0, tab);
    if (!f.is_dataset(name)) return "dataset " + name + " listed in the manifest is missing";
    Tensor t;
    try {
      t = f.read(name);
    } catch (const Error& e) {
      return std::string("cannot read ") + name + ": " + e.what();
    }
    const std::uint64_t sum = legacy ? tensor_checksum_fnv1a(t) : tensor_checksum(t);
    if (line.substr(tab + 1) != hex16(sum)) return "checksum mismatch in " + name + " (" + hash + ")";
    if (check) {
      std::string why = check(name, t);
      if (!why.empty()) return why;
    }
    ++n;
  }
  return n ? "" : "empty manifest";
}

}  // namespace quopt
