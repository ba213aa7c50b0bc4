#include "io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.hpp"
#include "io/json.hpp"

namespace quopt {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; quopt reads and writes it with plain copies");

std::size_t safetensors_dtype_size(const std::string& dtype) {
  // Element sizes of the format's dtypes (safetensors' Dtype enum).
  static const std::map<std::string, std::size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},  {"I32", 4},     {"I16", 2},    {"I8", 1},
      {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},   {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

namespace {

// RAII file descriptor.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void pread_all(int fd, void* buf, std::size_t n, std::uint64_t offset, const std::string& path) {
  auto* p = static_cast<unsigned char*>(buf);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("cannot read ", path, ": ", std::strerror(errno));
    if (r == 0) fail(path, " is truncated: it ended while reading byte ", offset);
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  float v;
  if (exp == 0)
    v = std::ldexp(static_cast<float>(mant), -24);  // zero and subnormals: mant * 2^-24
  else if (exp == 31)
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else
    v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  return sign ? -v : v;
}

// A non-negative integer header field, or an error naming the tensor and the field.
std::uint64_t header_uint(const Json& j, const std::string& where) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<std::int64_t>() >= 0))
    fail(where, " must be a non-negative integer, got ", j.dump());
  return j.get<std::uint64_t>();
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail("cannot open safetensors file ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail("cannot stat ", path, ": ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, " is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < 8)
    fail(path, " is not a safetensors file: ", size, " bytes, shorter than the 8-byte header length");
  std::uint64_t n = 0;
  pread_all(f.fd, &n, 8, 0, path);
  if (n > kSafetensorsMaxHeader)
    fail(path, " is not a safetensors file: its header length field says ", n, " bytes (limit ",
         kSafetensorsMaxHeader, ")");
  if (n > size - 8)
    fail(path, " is truncated: the header is ", n, " bytes but only ", size - 8, " follow the length field");
  std::string text(n, '\0');
  pread_all(f.fd, text.data(), n, 8, path);
  if (text.empty() || text[0] != '{')
    fail(path, " is not a safetensors file: its header does not start with '{'");

  SafetensorsFile out;
  out.path_ = path;
  out.data_start_ = 8 + n;
  const std::uint64_t data_size = size - out.data_start_;
  Json header;
  try {
    header = parse_json(text);
  } catch (const Error& e) {
    fail(path, ": the safetensors header is not valid JSON: ", e.what());
  }
  if (!header.is_object())
    fail(path, ": the safetensors header is ", json_a_type(header), ", expected an object");

  for (const auto& [name, v] : header.items()) {
    const std::string where = cat(path, ": tensor \"", name, "\"");
    if (name == "__metadata__") {
      if (!v.is_object())
        fail(path, ": \"__metadata__\" is ", json_a_type(v), ", expected an object of strings");
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string())
          fail(path, ": __metadata__ \"", k, "\" is ", json_a_type(s), ", expected a string");
        out.metadata_[k] = s.get<std::string>();
      }
      continue;
    }
    if (!v.is_object())
      fail(where, " is ", json_a_type(v), ", expected an object with dtype, shape, data_offsets");
    for (const auto& [k, unused] : v.items())
      if (k != "dtype" && k != "shape" && k != "data_offsets")
        fail(where, " has unknown key \"", k, "\" (a tensor has only dtype, shape and data_offsets)");
    for (const char* k : {"dtype", "shape", "data_offsets"})
      if (!v.contains(k)) fail(where, " has no \"", k, "\"");
    SafetensorsEntry e;
    e.name = name;
    if (!v["dtype"].is_string()) fail(where, ": dtype is ", json_a_type(v["dtype"]), ", expected a string");
    e.dtype = v["dtype"].get<std::string>();
    const std::size_t esize = safetensors_dtype_size(e.dtype);
    if (esize == 0)
      fail(where, " has unknown dtype \"", e.dtype,
           "\" (safetensors dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2)");
    if (!v["shape"].is_array()) fail(where, ": shape is ", json_a_type(v["shape"]), ", expected a list");
    // Element count with overflow checks: it must fit the data region anyway.
    std::uint64_t count = 1;
    for (const auto& d : v["shape"]) {
      const std::uint64_t dim = header_uint(d, where + " shape entry");
      if (dim != 0 && count > data_size / dim)
        fail(where, " has shape ", v["shape"].dump(), ", larger than the file's ", data_size,
             "-byte data region: the file is truncated or the header is wrong");
      count *= dim;
      e.shape.push_back(static_cast<std::int64_t>(dim));
    }
    const Json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2)
      fail(where, ": data_offsets is ", off.dump(), ", expected [begin, end]");
    e.begin = header_uint(off[0], where + " data_offsets[0]");
    e.end = header_uint(off[1], where + " data_offsets[1]");
    if (e.begin > e.end) fail(where, ": data_offsets [", e.begin, ", ", e.end, "] has begin after end");
    if (e.end > data_size)
      fail(where, ": data_offsets [", e.begin, ", ", e.end, "] runs past the end of the data (", data_size,
           " bytes): the file is truncated or the header is wrong");
    if (count > data_size / esize || count * esize != e.end - e.begin)
      fail(where, ": shape ", shape_str(e.shape), " of ", e.dtype, " needs ", count, " x ", esize,
           " bytes but data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin);
    out.entries_.push_back(std::move(e));
  }

  // The tensors tile the data region: sorted by offset, each begins where the previous ended.
  std::sort(out.entries_.begin(), out.entries_.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  std::uint64_t expect = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const auto& e : out.entries_) {
    if (e.begin < expect)
      fail(path, ": tensors \"", prev->name, "\" and \"", e.name, "\" overlap (bytes [", e.begin, ", ",
           std::min(expect, e.end), ") of the data region)");
    if (e.begin > expect)
      fail(path, ": bytes [", expect, ", ", e.begin, ") of the data region belong to no tensor (before \"",
           e.name, "\")");
    expect = e.end;
    prev = &e;
  }
  if (expect != data_size)
    fail(path, ": ", data_size - expect,
         " trailing bytes after the last tensor (the header's tensors end at ", expect,
         ", the data region has ", data_size, ")");
  for (std::size_t i = 0; i < out.entries_.size(); ++i) out.index_[out.entries_[i].name] = i;
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return index_.count(name) != 0;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) fail(path_, " has no tensor \"", name, "\"");
  return entries_[it->second];
}

std::vector<unsigned char> SafetensorsFile::read_bytes(const SafetensorsEntry& e) const {
  Fd f;
  f.fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail("cannot open safetensors file ", path_, ": ", std::strerror(errno));
  std::vector<unsigned char> bytes(e.end - e.begin);
  pread_all(f.fd, bytes.data(), bytes.size(), data_start_ + e.begin, path_);
  return bytes;
}

Tensor SafetensorsFile::read_f32(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  if (e.dtype != "F32" && e.dtype != "BF16" && e.dtype != "F16" && e.dtype != "F64")
    fail(path_, ": tensor \"", name, "\" has dtype ", e.dtype,
         "; quopt reads floating-point weights stored as F32, BF16, F16 or F64");
  const std::vector<unsigned char> b = read_bytes(e);
  Tensor t = Tensor::empty(e.shape, DType::F32);
  float* out = t.data<float>();
  const auto n = static_cast<std::size_t>(t.numel());
  if (n == 0) return t;  // an empty tensor has no bytes (and memcpy no null pointers)
  if (e.dtype == "F32") {
    std::memcpy(out, b.data(), n * 4);
  } else if (e.dtype == "F64") {
    for (std::size_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, b.data() + 8 * i, 8);
      out[i] = static_cast<float>(d);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      std::uint16_t h;
      std::memcpy(&h, b.data() + 2 * i, 2);
      out[i] =
          e.dtype == "BF16" ? std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16) : half_to_float(h);
    }
  }
  return t;
}

Tensor SafetensorsFile::read_i32(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  if (e.dtype != "I32" && e.dtype != "I64")
    fail(path_, ": tensor \"", name, "\" has dtype ", e.dtype, "; token ids are read from I32 or I64");
  const std::vector<unsigned char> b = read_bytes(e);
  Tensor t = Tensor::empty(e.shape, DType::I32);
  std::int32_t* out = t.data<std::int32_t>();
  const auto n = static_cast<std::size_t>(t.numel());
  if (n == 0) return t;
  if (e.dtype == "I32") {
    std::memcpy(out, b.data(), n * 4);
    return t;
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t v;
    std::memcpy(&v, b.data() + 8 * i, 8);
    if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
      fail(path_, ": tensor \"", name, "\" element ", i, " = ", v, " does not fit 32 bits");
    out[i] = static_cast<std::int32_t>(v);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------

void SafetensorsWriter::add(const std::string& name, const Tensor& t) {
  QUOPT_CHECK(!name.empty() && name != "__metadata__", "invalid safetensors tensor name \"", name, "\"");
  QUOPT_CHECK(t.defined() && t.is_host(), "safetensors: tensor ", name, " must be a host tensor");
  for (const auto& [n, unused] : tensors_)
    QUOPT_CHECK(n != name, "safetensors: duplicate tensor name ", name);
  tensors_.emplace_back(name, t);
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::write(const std::string& path) const {
  Json header = Json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors_) {
    const char* dt = nullptr;
    switch (t.dtype()) {
      case DType::F32:
        dt = "F32";
        break;
      case DType::F64:
        dt = "F64";
        break;
      case DType::BF16:
        dt = "BF16";
        break;
      case DType::I32:
        dt = "I32";
        break;
    }
    header[name] = {{"dtype", dt}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  // Pad with spaces so the data region starts 8-byte aligned (the reference writer does the same).
  text.append((8 - text.size() % 8) % 8, ' ');

  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot create ", tmp, ": ", std::strerror(errno));
  const std::uint64_t n = text.size();
  bool ok = std::fwrite(&n, 8, 1, f) == 1 && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  for (const auto& [name, t] : tensors_) {
    // Tensor views are contiguous (tensor.hpp); raw() points at the first element.
    if (ok && t.nbytes() > 0) ok = std::fwrite(t.raw(), 1, t.nbytes(), f) == t.nbytes();
  }
  ok = ok && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int close_rc = std::fclose(f);
  if (!ok || close_rc != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    fail("cannot write ", tmp, ": ", why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    fail("cannot rename ", tmp, " to ", path, ": ", why);
  }
}

}  // namespace quopt
