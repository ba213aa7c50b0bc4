// The safetensors reader and writer (io/safetensors) and sharded checkpoints (io/safetensors_checkpoint):
// the bytes on disk, dtype conversion, and every malformed file rejected with a message naming it.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <fstream>
#include <sstream>

#include "io/json.hpp"
#include "io/safetensors.hpp"
#include "io/safetensors_checkpoint.hpp"
#include "support/error_of.hpp"
#include "support/temp_dir.hpp"

namespace quopt {
namespace {

using testing::error_of;
using testing::TempDir;

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}
void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
// A file from a header text and a data region, with the 8-byte little-endian length.
std::string file_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}
std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

Tensor ramp(const Shape& shape, DType dt, double scale) {
  Tensor t = Tensor::empty(shape, dt);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const double v = scale * static_cast<double>(i) - 1.0;
    if (dt == DType::F32) t.data<float>()[i] = static_cast<float>(v);
    if (dt == DType::F64) t.data<double>()[i] = v;
    if (dt == DType::I32) t.data<std::int32_t>()[i] = static_cast<std::int32_t>(i * 7 - 3);
  }
  return t;
}

TEST(Safetensors, WritesTheFormatAndReadsItBack) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  const Tensor a = ramp({3, 5}, DType::F32, 0.25), b = ramp({4}, DType::F64, 0.5),
               c = ramp({2, 3}, DType::I32, 1);
  const Tensor scalar = ramp({}, DType::F32, 1), empty = Tensor::empty({0, 4}, DType::F32);
  SafetensorsWriter w;
  w.add("layer.a", a);
  w.add("b", b);
  w.add("ids", c);
  w.add("scalar", scalar);
  w.add("empty", empty);
  w.set_metadata("format", "pt");
  w.write(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  // The bytes: length, JSON header padded with spaces to a multiple of 8, then the tensors in order.
  const std::string bytes = read_all(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const Json h = parse_json(header);
  EXPECT_EQ(h["__metadata__"]["format"], "pt");
  EXPECT_EQ(h["layer.a"]["dtype"], "F32");
  EXPECT_EQ(h["layer.a"]["shape"], Json::array({3, 5}));
  EXPECT_EQ(h["layer.a"]["data_offsets"], Json::array({0, 60}));
  EXPECT_EQ(h["b"]["dtype"], "F64");
  EXPECT_EQ(h["b"]["data_offsets"], Json::array({60, 92}));
  EXPECT_EQ(h["ids"]["dtype"], "I32");
  EXPECT_EQ(h["scalar"]["shape"], Json::array());
  EXPECT_EQ(h["empty"]["data_offsets"], Json::array({120, 120}));
  EXPECT_EQ(bytes.size(), 8 + n + 120);
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + n, a.raw(), 60), 0);  // little-endian f32, row-major

  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.entries().size(), 5u);
  const Tensor ra = f.read_f32("layer.a");
  EXPECT_EQ(ra.shape(), a.shape());
  EXPECT_EQ(std::memcmp(ra.raw(), a.raw(), a.nbytes()), 0);
  const Tensor rb = f.read_f32("b");  // f64 -> f32
  for (std::int64_t i = 0; i < 4; ++i)
    EXPECT_EQ(rb.data<float>()[i], static_cast<float>(b.data<double>()[i]));
  const Tensor rc = f.read_i32("ids");
  EXPECT_EQ(std::memcmp(rc.raw(), c.raw(), c.nbytes()), 0);
  EXPECT_EQ(f.read_f32("scalar").numel(), 1);
  EXPECT_EQ(f.read_f32("empty").shape(), (Shape{0, 4}));
  EXPECT_NE(error_of([&] { f.read_f32("nope"); }).find("has no tensor \"nope\""), std::string::npos);
  EXPECT_NE(error_of([&] { f.read_f32("ids"); }).find("\"ids\" has dtype I32"), std::string::npos);
}

TEST(Safetensors, ConvertsHalfPrecisionExactly) {
  TempDir dir;
  // BF16 is the top half of an f32; F16 1 5 10. Values: 1, -2.5, 65504 (F16 max), 2^-24 (smallest F16
  // subnormal), -0, +inf.
  const float want[] = {1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24), -0.0f, INFINITY};
  std::string bf16, f16;
  for (float v : want) {
    const auto bits = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(v) >> 16);
    bf16.append(reinterpret_cast<const char*>(&bits), 2);
  }
  for (std::uint16_t bits : {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x8000, 0x7C00})
    f16.append(reinterpret_cast<const char*>(&bits), 2);
  const std::string header = R"({"h":{"dtype":"F16","shape":[6],"data_offsets":[0,12]},)"
                             R"("b":{"dtype":"BF16","shape":[2,3],"data_offsets":[12,24]}})";
  write_all(dir.file("h.safetensors"), file_bytes(header + "   ", f16 + bf16));  // padded header
  const SafetensorsFile f = SafetensorsFile::open(dir.file("h.safetensors"));
  const Tensor h = f.read_f32("h"), b = f.read_f32("b");
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(h.data<float>()[i], want[i]) << i;
    EXPECT_EQ(std::signbit(h.data<float>()[i]), std::signbit(want[i])) << i;
    // bf16 keeps 8 mantissa bits: 65504 became 65280 when the file was written; the rest are exact.
    EXPECT_EQ(b.data<float>()[i], i == 2 ? 65280.0f : want[i]) << i;
  }
  EXPECT_EQ(b.shape(), (Shape{2, 3}));
}

TEST(Safetensors, RejectsMalformedFiles) {
  TempDir dir;
  const std::string good_header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data = floats({1.0f, 2.0f});
  struct Case {
    std::string bytes;
    const char* expect;
  };
  const auto with = [&](const std::string& header, const std::string& d = "") {
    return file_bytes(header, d.empty() ? data : d);
  };
  std::string huge(8, '\0');
  const std::uint64_t big = kSafetensorsMaxHeader + 1;
  std::memcpy(huge.data(), &big, 8);
  const Case cases[] = {
      {"abc", "shorter than the 8-byte header length"},
      {huge + "{}", "header length field says"},
      {file_bytes(good_header, data).substr(0, 30), "is truncated: the header is"},
      {file_bytes(good_header, data).substr(0, 8 + good_header.size() + 5), "runs past the end of the data"},
      {with(good_header, data + "xx"), "2 trailing bytes after the last tensor"},
      {with("[1, 2]"), "does not start with '{'"},
      {with(R"({"w": })"), "header is not valid JSON: column 7"},
      {with(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{}})"), "duplicate key \"w\""},
      {with(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})"), "unknown dtype \"Q4\""},
      {with(R"({"w":{"dtype":"F32","shape":[2]}})"), "has no \"data_offsets\""},
      {with(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})"), "unknown key \"x\""},
      {with(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})"), "needs 3 x 4 bytes"},
      {with(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})"), "needs 2 x 2 bytes"},
      {with(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})"), "must be a non-negative integer"},
      {with(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})"), "has begin after end"},
      {with(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})"), "expected [begin, end]"},
      {with(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
           R"("c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"),
       "overlap"},
      {with(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"), "belong to no tensor"},
      {with(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":1}})"),
       "__metadata__ \"k\" is a number, expected a string"},
      {with(R"({"w":{"dtype":"F32","shape":[4611686018427387904, 4],"data_offsets":[0,8]}})"),
       "larger than the file's"},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string path = dir.file("bad" + std::to_string(i++) + ".safetensors");
    write_all(path, c.bytes);
    const std::string msg = error_of([&] { SafetensorsFile::open(path); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "case " << i - 1 << ": " << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;  // names the file
  }
  EXPECT_NE(error_of([&] { SafetensorsFile::open(dir.file("missing.safetensors")); }).find("No such file"),
            std::string::npos);
}

// Shards as transformers writes them: model-0000k-of-0000n.safetensors and the index.
void write_shards(const TempDir& dir, const std::string& index) {
  SafetensorsWriter a, b;
  const Tensor x = ramp({2, 2}, DType::F32, 1), y = ramp({3}, DType::F32, 2), z = ramp({1}, DType::F32, 3);
  a.add("x", x);
  a.add("y", y);
  b.add("z", z);
  a.write(dir.file("model-00001-of-00002.safetensors"));
  b.write(dir.file("model-00002-of-00002.safetensors"));
  write_all(dir.file("model.safetensors.index.json"), index);
}

TEST(SafetensorsCheckpoint, ReadsSingleFilesAndShards) {
  TempDir dir;
  write_shards(dir,
               R"({"metadata": {"total_size": 32}, "weight_map": {"x": "model-00001-of-00002.safetensors",
      "y": "model-00001-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"}})");
  const SafetensorsCheckpoint c = SafetensorsCheckpoint::open(dir.path().string());
  EXPECT_EQ(c.names(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(c.read_f32("z").item(0), -1.0);
  EXPECT_EQ(c.read_f32("y").item(2), 3.0);
  EXPECT_NE(error_of([&] { c.read_f32("w"); }).find("has no tensor \"w\""), std::string::npos);

  TempDir single;
  SafetensorsWriter w;
  w.add("x", ramp({2}, DType::F32, 1));
  w.write(single.file("model.safetensors"));
  EXPECT_EQ(SafetensorsCheckpoint::open(single.path().string()).names(), (std::vector<std::string>{"x"}));
}

TEST(SafetensorsCheckpoint, RejectsInconsistentIndexes) {
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  struct Case {
    std::string index;
    const char* expect;
  };
  const Case cases[] = {
      {R"({"metadata": {}})", "no \"weight_map\""},
      {R"({"weight_map": {}})", "\"weight_map\" is empty"},
      {R"({"weight_map": {"x": ")" + s1 + R"(", "y": ")" + s1 + R"(", "z": "model-00003.safetensors"}})",
       "lists shard model-00003.safetensors (for \"z\"), which does not exist"},
      {R"({"weight_map": {"x": ")" + s2 + R"(", "y": ")" + s1 + R"(", "z": ")" + s2 + R"("}})",
       "says \"x\" is in model-00002-of-00002.safetensors, but that shard has no such tensor"},
      {R"({"weight_map": {"x": ")" + s1 + R"(", "z": ")" + s2 + R"("}})", "holds \"y\", which"},
      {R"({"weight_map": {"x": "../)" + s1 + R"(", "y": ")" + s1 + R"(", "z": ")" + s2 + R"("}})",
       "shards must be plain file names"},
      {R"({"weight_map": {"x": 1}})", "weight_map \"x\" is a number"},
      {R"({"weight_map": )", "column 16: syntax error"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    write_shards(dir, c.index);
    const std::string msg = error_of([&] { SafetensorsCheckpoint::open(dir.path().string()); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.index << "\n" << msg;
  }
  TempDir dup;  // the same tensor in two shards
  SafetensorsWriter a, b;
  a.add("x", ramp({1}, DType::F32, 1));
  b.add("x", ramp({1}, DType::F32, 1));
  b.add("y", ramp({1}, DType::F32, 1));
  a.write(dup.file(s1));
  b.write(dup.file(s2));
  write_all(dup.file("model.safetensors.index.json"),
            R"({"weight_map": {"x": ")" + s1 + R"(", "y": ")" + s2 + R"("}})");
  EXPECT_NE(
      error_of([&] { SafetensorsCheckpoint::open(dup.path().string()); }).find("\"x\" is stored in both"),
      std::string::npos);
  TempDir none;
  EXPECT_NE(error_of([&] {
              SafetensorsCheckpoint::open(none.path().string());
            }).find("has neither model.safetensors nor model.safetensors.index.json"),
            std::string::npos);
}

}  // namespace
}  // namespace quopt
