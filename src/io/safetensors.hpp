#pragma once
// The safetensors format (Hugging Face, huggingface/safetensors README "Format"): an 8-byte little-endian
// unsigned header length N, N bytes of UTF-8 JSON (may be padded with trailing spaces), then the data
// region. The header is an object {name: {"dtype": D, "shape": [...], "data_offsets": [begin, end]}, ...,
// "__metadata__": {string: string}}; offsets are byte offsets into the data region, tensors are
// row-major and little-endian, and the tensors tile the data region exactly (no gap, no overlap).
//
// Reading checks everything the format promises and throws quopt::Error naming the file, the tensor
// and the problem: a file shorter than its header, a header that is not such an object, an unknown
// key or dtype, a shape whose byte size differs from its offsets, overlapping or out-of-bounds
// offsets, a gap, trailing bytes. Tensors are read one at a time (pread), so a checkpoint far larger
// than memory imports tensor by tensor.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace quopt {

// quopt choice: the reference implementation caps headers at 100 MB (safetensors' MAX_HEADER_SIZE);
// a larger length is a corrupt or foreign file, not a bigger model.
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // "F32", "BF16", ... as in the file
  Shape shape;
  std::uint64_t begin = 0, end = 0;  // byte offsets into the data region
};

// Bytes per element of a safetensors dtype name (F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL
// F8_E4M3 F8_E5M2), or 0 for a name that is not one.
std::size_t safetensors_dtype_size(const std::string& dtype);

class SafetensorsFile {
 public:
  // Reads and checks the header of `path`.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // in data order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;  // throws naming the missing tensor

  // The tensor as f32 (F32 as is; BF16, F16 and F64 converted, exactly for BF16/F16). Other dtypes
  // are an error naming the tensor and its dtype.
  Tensor read_f32(const std::string& name) const;
  // The tensor as i32 (I32 as is; I64 when every value fits).
  Tensor read_i32(const std::string& name) const;

 private:
  std::vector<unsigned char> read_bytes(const SafetensorsEntry& e) const;
  std::string path_;
  std::uint64_t data_start_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Collects named host tensors (F32, F64, BF16 or I32) and writes them as one safetensors file, in the
// order added, through "<path>.tmp" + fsync + rename (an interrupted write leaves no partial file).
class SafetensorsWriter {
 public:
  void add(const std::string& name, const Tensor& t);  // keeps a reference to t's storage
  void set_metadata(const std::string& key, const std::string& value);
  void write(const std::string& path) const;

 private:
  std::vector<std::pair<std::string, Tensor>> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace quopt
