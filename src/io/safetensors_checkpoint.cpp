#include "io/safetensors_checkpoint.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "io/json.hpp"
#include "io/tokenizer.hpp"

namespace quopt {

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& dir) {
  namespace fs = std::filesystem;
  SafetensorsCheckpoint c;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (!fs::exists(index)) {
    if (!fs::exists(single))
      fail(dir, " has neither model.safetensors nor model.safetensors.index.json: quopt imports weights in ",
           "the safetensors format (save with transformers' save_pretrained(..., safe_serialization=True))");
    c.origin_ = single.string();
    c.files_.push_back(SafetensorsFile::open(c.origin_));
    for (const auto& e : c.files_.front().entries()) c.where_[e.name] = 0;
    return c;
  }
  c.origin_ = index.string();
  Json j;
  try {
    j = parse_json(read_text_file(c.origin_, "safetensors index"));
  } catch (const Error& e) {
    fail(c.origin_, ": ", e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail(c.origin_, " has no \"weight_map\" object (tensor name -> shard file)");
  if (j["weight_map"].empty()) fail(c.origin_, ": \"weight_map\" is empty");
  std::map<std::string, std::size_t> shard_index;  // file name -> index into files_
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string())
      fail(c.origin_, ": weight_map \"", tensor, "\" is ", json_a_type(file), ", expected a shard file name");
    const std::string name = file.get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      fail(c.origin_, ": weight_map \"", tensor, "\" names \"", name,
           "\"; shards must be plain file names in the same directory");
    auto it = shard_index.find(name);
    if (it == shard_index.end()) {
      const fs::path p = fs::path(dir) / name;
      if (!fs::exists(p))
        fail(c.origin_, " lists shard ", name, " (for \"", tensor, "\"), which does not exist");
      c.files_.push_back(SafetensorsFile::open(p.string()));
      it = shard_index.emplace(name, c.files_.size() - 1).first;
    }
    if (!c.files_[it->second].contains(tensor))
      fail(c.origin_, " says \"", tensor, "\" is in ", name, ", but that shard has no such tensor");
    c.where_[tensor] = it->second;
  }
  // A tensor stored in a shard but not listed, or stored in two shards, makes the checkpoint ambiguous.
  for (std::size_t i = 0; i < c.files_.size(); ++i)
    for (const auto& e : c.files_[i].entries()) {
      const auto it = c.where_.find(e.name);
      if (it == c.where_.end())
        fail(c.files_[i].path(), " holds \"", e.name, "\", which ", c.origin_, "'s weight_map does not list");
      if (it->second != i)
        fail("tensor \"", e.name, "\" is stored in both ", c.files_[i].path(), " and ",
             c.files_[it->second].path());
    }
  return c;
}

bool SafetensorsCheckpoint::contains(const std::string& name) const {
  return where_.count(name) != 0;
}

const SafetensorsFile& SafetensorsCheckpoint::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) fail(origin_, " has no tensor \"", name, "\"");
  return files_[it->second];
}

Tensor SafetensorsCheckpoint::read_f32(const std::string& name) const {
  return file_of(name).read_f32(name);
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [n, unused] : where_) out.push_back(n);
  return out;
}

}  // namespace quopt
