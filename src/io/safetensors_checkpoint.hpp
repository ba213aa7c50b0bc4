#pragma once
// A Hugging Face checkpoint's weights in a directory: either one `model.safetensors`, or shards listed
// by `model.safetensors.index.json` ({"metadata": {...}, "weight_map": {tensor: shard file}}, the
// layout transformers' save_pretrained writes for large models). Every shard is opened and checked
// (io/safetensors); the index must name existing shards in the same directory, every tensor it names
// must be in its shard, and no tensor may be stored twice.
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.hpp"

namespace quopt {

class SafetensorsCheckpoint {
 public:
  // Opens dir/model.safetensors.index.json if it exists, else dir/model.safetensors; throws
  // quopt::Error naming what is missing or inconsistent.
  static SafetensorsCheckpoint open(const std::string& dir);

  bool contains(const std::string& name) const;
  Tensor read_f32(const std::string& name) const;        // see SafetensorsFile::read_f32
  std::vector<std::string> names() const;                // every tensor, sorted
  const std::string& origin() const { return origin_; }  // the file that lists the tensors

 private:
  const SafetensorsFile& file_of(const std::string& name) const;
  std::string origin_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::size_t> where_;  // tensor -> index into files_
};

}  // namespace quopt
