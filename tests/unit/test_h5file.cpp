// Single-rank tests of H5File (io/h5file.hpp): round trips, attributes, listing, error messages, and
// interoperability with files read and written through the plain HDF5 C API (serial driver).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/h5file.hpp"

namespace {

namespace fs = std::filesystem;
using quopt::DType;
using quopt::H5File;
using quopt::Shape;
using quopt::Tensor;

class H5FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / quopt::cat("quopt_h5file_", ::getpid(), "_", info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// Tensor whose bytes are random (floats include NaNs with payloads, infinities and subnormals), so a
// byte-exact comparison after the round trip checks that nothing is converted or lost.
Tensor random_tensor(const Shape& shape, DType dt, std::uint32_t seed) {
  Tensor t = Tensor::empty(shape, dt);
  std::mt19937 gen(seed);
  auto* bytes = static_cast<unsigned char*>(t.raw());
  for (std::size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<unsigned char>(gen() & 0xFF);
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

// Runs f, expects a quopt::Error whose message contains every needle, and checks that nothing (such
// as HDF5's error stack) was printed to stderr.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  ::testing::internal::CaptureStderr();
  std::string msg;
  try {
    f();
  } catch (const quopt::Error& e) {
    msg = e.what();
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(msg.empty()) << "expected a quopt::Error";
  for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  EXPECT_EQ(err, "") << "something was printed to stderr";
}

const std::vector<Shape> kShapes = {{}, {0}, {7}, {3, 4}, {2, 0, 3}, {2, 3, 4}, {1, 1, 1}, {0, 0}};
const std::vector<DType> kDTypes = {DType::F32, DType::F64, DType::I32};

std::string ds_name(DType dt, std::size_t s) {
  return quopt::cat("data/", quopt::dtype_name(dt), "/s", s);
}

TEST_F(H5FileTest, RoundTripEveryDtypeAndRank) {
  const std::string p = file("rt.h5");
  std::vector<Tensor> written;
  {
    H5File f = H5File::create(p, MPI_COMM_SELF);
    std::uint32_t seed = 1;
    for (DType dt : kDTypes) {
      for (std::size_t s = 0; s < kShapes.size(); ++s) {
        written.push_back(random_tensor(kShapes[s], dt, seed++));
        f.write_tensor(ds_name(dt, s), written.back(), 0);
      }
    }
    f.close();
    EXPECT_FALSE(f.is_open());
  }
  H5File f = H5File::open_read(p, MPI_COMM_SELF);
  std::size_t k = 0;
  for (DType dt : kDTypes) {
    for (std::size_t s = 0; s < kShapes.size(); ++s, ++k) {
      SCOPED_TRACE(ds_name(dt, s));
      const Tensor r = f.read(ds_name(dt, s));
      EXPECT_EQ(r.dtype(), dt);
      EXPECT_EQ(r.shape(), kShapes[s]);
      EXPECT_TRUE(r.is_host());
      EXPECT_TRUE(same_bytes(r, written[k]));
      EXPECT_EQ(f.shape(ds_name(dt, s)), kShapes[s]);
      EXPECT_EQ(f.dtype(ds_name(dt, s)), dt);
      EXPECT_TRUE(f.is_dataset(ds_name(dt, s)));
      // Expected shape/dtype overload and read_into agree with read().
      EXPECT_TRUE(same_bytes(f.read(ds_name(dt, s), kShapes[s], dt), written[k]));
      Tensor into = Tensor::zeros(kShapes[s], dt);
      f.read_into(ds_name(dt, s), into);
      EXPECT_TRUE(same_bytes(into, written[k]));
    }
  }
}

TEST_F(H5FileTest, ReadRowsAndWriteCollectiveOnOneRank) {
  const std::string p = file("rows.h5");
  const Tensor full = random_tensor({9, 2, 3}, DType::F64, 7);
  {
    H5File f = H5File::create(p, MPI_COMM_SELF);
    f.create_dataset("x", {9, 2, 3}, DType::F64);
    // Three collective writes from the single rank, one of them empty.
    f.write_collective("x", full.slice(0, 4), 0);
    f.write_collective("x", full.slice(4, 4), 4);
    f.write_collective("x", full.slice(4, 9), 4);
    // Datasets without elements: a collective write of nothing succeeds.
    f.create_dataset("none", {0, 3}, DType::F32);
    f.write_collective("none", Tensor::empty({0, 3}, DType::F32), 0);
    f.create_dataset("flat", {4, 0}, DType::I32);
    f.write_collective("flat", Tensor::empty({4, 0}, DType::I32), 0);
  }
  H5File f = H5File::open_read(p, MPI_COMM_SELF);
  for (std::int64_t b = 0; b <= 9; b += 3) {
    for (std::int64_t e = b; e <= 9; e += 2) {
      const Tensor r = f.read_rows("x", b, e);
      EXPECT_EQ(r.shape(), (Shape{e - b, 2, 3}));
      EXPECT_TRUE(same_bytes(r, full.slice(b, e).clone())) << b << ".." << e;
    }
  }
  EXPECT_EQ(f.read("none").shape(), (Shape{0, 3}));
  EXPECT_EQ(f.read_rows("flat", 1, 3).shape(), (Shape{2, 0}));
  expect_error([&] { f.read_rows("x", 3, 10); }, {"rows [3, 10)", "'x'", p, "[0, 9)"});
  expect_error([&] { f.read_rows("x", 5, 4); }, {"rows [5, 4)"});
}

TEST_F(H5FileTest, WriteByOwnerAfterCollectiveCreate) {
  const std::string p = file("own.h5");
  const Tensor a = random_tensor({4, 5}, DType::F32, 11);
  {
    H5File f = H5File::create(p, MPI_COMM_SELF);
    f.create_dataset("weights/layer0/w", {4, 5}, DType::F32);
    EXPECT_TRUE(f.is_group("weights/layer0"));
    f.write("weights/layer0/w", a);
    expect_error(
        [&] {
          f.write("weights/layer0/w", random_tensor({5, 4}, DType::F32, 1));
        },
        {"weights/layer0/w", "f32[4, 5]", "f32[5, 4]"});
    expect_error([&] { f.write("weights/layer0/w", random_tensor({4, 5}, DType::F64, 1)); }, {"f64[4, 5]"});
    expect_error(
        [&] {
          f.write_collective("weights/layer0/w", random_tensor({2, 4}, DType::F32, 1), 0);
        },
        {"every dimension but the first"});
    expect_error(
        [&] {
          f.write_collective("weights/layer0/w", random_tensor({2, 5}, DType::F32, 1), 3);
        },
        {"rows [3, 5)", "[0, 4)"});
    expect_error([&] { f.write_tensor("weights/layer0/v", a, 1); }, {"writer_rank 1"});
    expect_error([&] { f.create_dataset("weights/layer0/w", {4, 5}, DType::F32); }, {"exists already"});
    expect_error([&] { f.create_dataset("weights/layer0/w/sub", {1}, DType::F32); }, {"is a dataset"});
    expect_error([&] { f.create_dataset("b", {2}, DType::BF16); }, {"bf16", "astype"});
    expect_error([&] { f.create_dataset("c", {-1, 2}, DType::F32); }, {"negative"});
    expect_error([&] { f.create_dataset("", {1}, DType::F32); }, {"root"});
    expect_error([&] { f.create_group("weights/layer0/w"); }, {"a dataset of that name exists"});
    expect_error([&] { f.create_dataset("a//b", {1}, DType::F32); }, {"a//b", "single '/'"});
    f.create_group("weights/layer0");  // existing group: kept, no error
  }
  H5File f = H5File::open_read(p, MPI_COMM_SELF);
  EXPECT_TRUE(same_bytes(f.read("/weights/layer0/w"), a));  // leading '/' names the same object
  expect_error([&] { f.create_dataset("z", {1}, DType::F32); }, {"read-only", "open_rw"});
  expect_error([&] { f.set_attr("", "k", std::int64_t{1}); }, {"read-only"});
  expect_error([&] { f.write("weights/layer0/w", a); }, {"read-only"});
}

TEST_F(H5FileTest, AttributesOfEveryTypeOnFileGroupAndDataset) {
  const std::string p = file("attrs.h5");
  std::string long_text;  // a resolved TOML config is a few kB of text with newlines and UTF-8
  for (int i = 0; i < 400; ++i) long_text += quopt::cat("key_", i, " = \"v\u00e9rt\u00e9x ", i, "\"\n");
  const std::vector<std::string> objects = {"", "/", "metrics/train", "metrics/train/loss"};
  const std::int64_t big = std::numeric_limits<std::int64_t>::max();
  const std::int64_t small = std::numeric_limits<std::int64_t>::min();
  {
    H5File f = H5File::create(p, MPI_COMM_SELF);
    f.create_group("metrics/train");
    f.create_dataset("metrics/train/loss", {3}, DType::F32);
    for (std::size_t o = 0; o < objects.size(); o += 1) {
      const std::string& obj = objects[o];
      const std::string sfx = std::to_string(o);
      f.set_attr(obj, "s" + sfx, "hello " + sfx);
      f.set_attr(obj, "empty" + sfx, std::string());
      f.set_attr(obj, "long" + sfx, long_text);
      f.set_attr(obj, "imax" + sfx, big);
      f.set_attr(obj, "imin" + sfx, small);
      f.set_attr(obj, "i32" + sfx, -7);  // any integral type is stored as int64
      f.set_attr(obj, "d" + sfx, 0.1);
      f.set_attr(obj, "dinf" + sfx, -std::numeric_limits<double>::infinity());
      f.set_attr(obj, "iv" + sfx, std::vector<std::int64_t>{3, -1, big, small});
      f.set_attr(obj, "ivempty" + sfx, std::vector<std::int64_t>{});
      f.set_attr(obj, "dv" + sfx, std::vector<double>{1.5, -2.25e-300, 1e300});
      f.set_attr(obj, "dvempty" + sfx, std::vector<double>{});
      f.set_attr(obj, "fv" + sfx, std::vector<float>{0.5F});  // float vector widened to double
    }
    // Replacing an attribute may change its type.
    f.set_attr("metrics/train", "changing", std::int64_t{5});
    f.set_attr("metrics/train", "changing", "now a string");
  }
  H5File f = H5File::open_read(p, MPI_COMM_SELF);
  for (std::size_t o = 0; o < objects.size(); ++o) {
    const std::string& obj = objects[o];
    const std::string sfx = std::to_string(o);
    SCOPED_TRACE("object '" + obj + "'");
    EXPECT_EQ(f.get_attr_string(obj, "s" + sfx), "hello " + sfx);
    EXPECT_EQ(f.get_attr_string(obj, "empty" + sfx), "");
    EXPECT_EQ(f.get_attr_string(obj, "long" + sfx), long_text);
    EXPECT_EQ(f.get_attr_int(obj, "imax" + sfx), big);
    EXPECT_EQ(f.get_attr_int(obj, "imin" + sfx), small);
    EXPECT_EQ(f.get_attr_int(obj, "i32" + sfx), -7);
    EXPECT_EQ(f.get_attr_double(obj, "i32" + sfx), -7.0);  // integers read as doubles too
    EXPECT_EQ(f.get_attr_double(obj, "d" + sfx), 0.1);
    EXPECT_EQ(f.get_attr_double(obj, "dinf" + sfx), -std::numeric_limits<double>::infinity());
    EXPECT_EQ(f.get_attr_ints(obj, "iv" + sfx), (std::vector<std::int64_t>{3, -1, big, small}));
    EXPECT_TRUE(f.get_attr_ints(obj, "ivempty" + sfx).empty());
    EXPECT_EQ(f.get_attr_doubles(obj, "dv" + sfx), (std::vector<double>{1.5, -2.25e-300, 1e300}));
    EXPECT_TRUE(f.get_attr_doubles(obj, "dvempty" + sfx).empty());
    EXPECT_EQ(f.get_attr_doubles(obj, "fv" + sfx), (std::vector<double>{0.5}));
    EXPECT_EQ(f.get_attr_ints(obj, "imax" + sfx), (std::vector<std::int64_t>{big}));  // scalar as 1 element
    EXPECT_TRUE(f.has_attr(obj, "s" + sfx));
    EXPECT_FALSE(f.has_attr(obj, "nope"));
  }
  // "" and "/" are the same object, so the root has the attributes of both suffixes 0 and 1.
  EXPECT_EQ(f.get_attr_string("/", "s0"), "hello 0");
  EXPECT_EQ(f.attr_names("metrics/train/loss").size(), 13U);
  EXPECT_EQ(f.get_attr_string("metrics/train", "changing"), "now a string");

  expect_error([&] { f.get_attr_int("metrics/train", "missing_attr"); },
               {"attribute 'missing_attr'", "metrics/train", p, "changing"});
  expect_error([&] { f.get_attr_int("metrics/train", "changing"); },
               {"'changing'", "string", "not one integer"});
  expect_error([&] { f.get_attr_string("metrics/train", "i322"); }, {"integer", "not one string"});
  expect_error([&] { f.get_attr_int("metrics/train", "iv2"); }, {"4 integer", "not one integer"});
  expect_error([&] { f.get_attr_double("metrics/train", "s2"); }, {"not one number"});
  expect_error([&] { f.get_attr_int("metrics/nothing", "x"); }, {"'/metrics/nothing' not found", "train"});
}

TEST_F(H5FileTest, ListIsSortedAndExistsNeverThrows) {
  const std::string p = file("list.h5");
  {
    H5File f = H5File::create(p, MPI_COMM_SELF);
    // Created out of order; list() must return them sorted.
    for (const char* n : {"zeta", "alpha", "Beta", "mid/deep/er", "layer10", "layer2"}) f.create_group(n);
    f.create_dataset("beta", {2}, DType::I32);
    f.create_dataset("mid/x", {}, DType::F32);
  }
  H5File f = H5File::open_read(p, MPI_COMM_SELF);
  std::vector<std::string> want = {"zeta", "alpha", "Beta", "mid", "layer10", "layer2", "beta"};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(f.list(""), want);
  EXPECT_EQ(f.list("/"), want);
  EXPECT_EQ(f.list("mid"), (std::vector<std::string>{"deep", "x"}));
  EXPECT_EQ(f.list("mid/deep/er"), std::vector<std::string>{});
  EXPECT_TRUE(f.exists(""));
  EXPECT_TRUE(f.exists("mid/deep/er"));
  EXPECT_TRUE(f.exists("/mid/x"));
  EXPECT_FALSE(f.exists("mid/nope/er"));
  EXPECT_FALSE(f.exists("mid/x/below_a_dataset"));
  EXPECT_TRUE(f.is_group("mid/deep"));
  EXPECT_FALSE(f.is_group("mid/x"));
  EXPECT_TRUE(f.is_dataset("mid/x"));
  EXPECT_FALSE(f.is_dataset("nope"));
  expect_error([&] { f.list("mid/x"); }, {"'/mid/x'", "is a dataset, not a group"});
  expect_error([&] { f.list("nope"); }, {"group '/nope' not found", p});
}

TEST_F(H5FileTest, ErrorMessagesForBadFiles) {
  // Missing file.
  const std::string missing = file("does_not_exist.h5");
  expect_error([&] { H5File::open_read(missing, MPI_COMM_SELF); }, {missing, "does not exist"});
  expect_error([&] { H5File::open_rw(missing, MPI_COMM_SELF); }, {missing, "does not exist"});
  expect_error([&] { H5File::create(file("no_dir/x.h5"), MPI_COMM_SELF); }, {"no_dir", "does not exist"});

  // A text file is not HDF5.
  const std::string text = file("notes.txt");
  {
    std::ofstream o(text);
    o << "this is not an HDF5 file\n";
    for (int i = 0; i < 200; ++i) o << "line " << i << "\n";
  }
  expect_error([&] { H5File::open_read(text, MPI_COMM_SELF); }, {text, "not an HDF5 file"});

  // A valid file cut in half (a crash while writing, an interrupted copy).
  const std::string good = file("good.h5");
  const Tensor big = random_tensor({64, 64}, DType::F32, 3);
  {
    H5File f = H5File::create(good, MPI_COMM_SELF);
    f.write_tensor("w", big, 0);
  }
  const std::string cut = file("cut.h5");
  fs::copy_file(good, cut);
  fs::resize_file(cut, fs::file_size(good) / 2);
  expect_error([&] { H5File::open_read(cut, MPI_COMM_SELF); }, {cut, "truncated"});
  expect_error([&] { H5File::open_rw(cut, MPI_COMM_SELF); }, {cut, "truncated"});

  // Missing objects and mismatched reads in a good file.
  H5File f = H5File::open_read(good, MPI_COMM_SELF);
  EXPECT_TRUE(same_bytes(f.read("w"), big));
  expect_error([&] { f.read("weights/w"); },
               {"dataset '/weights/w' not found", good, "has no member 'weights'", "w"});
  expect_error([&] { f.read("v"); }, {"dataset '/v' not found", "it contains: w"});
  expect_error([&] { f.read("w", {64, 32}, DType::F32); }, {"'w'", good, "f32[64, 64]", "f32[64, 32]"});
  expect_error([&] { f.read("w", {64, 64}, DType::F64); }, {"f64[64, 64]", "was expected"});
  Tensor wrong = Tensor::zeros({63, 64}, DType::F32);
  expect_error([&] { f.read_into("w", wrong); }, {"f32[63, 64]"});
  expect_error([&] { f.shape("nope"); }, {"'/nope' not found"});
  expect_error(
      [&] {
        f.list("");
        f.read("");
      },
      {"is a group, not a dataset"});
  f.close();
  expect_error([&] { f.read("w"); }, {"no file is open"});
}

TEST_F(H5FileTest, ReopenAppendAndTruncate) {
  const std::string p = file("re.h5");
  const Tensor a = random_tensor({3}, DType::I32, 5);
  const Tensor b = random_tensor({2, 2}, DType::F64, 6);
  {
    H5File f = H5File::create(p, MPI_COMM_SELF);
    f.write_tensor("a", a, 0);
    f.set_attr("", "step", std::int64_t{10});
  }
  {
    H5File f = H5File::open_rw(p, MPI_COMM_SELF);
    EXPECT_TRUE(same_bytes(f.read("a"), a));
    f.write_tensor("g/b", b, 0);
    f.set_attr("", "step", std::int64_t{20});
    f.flush();
  }
  {
    H5File f = H5File::open_read(p, MPI_COMM_SELF);
    EXPECT_EQ(f.list(""), (std::vector<std::string>{"a", "g"}));
    EXPECT_TRUE(same_bytes(f.read("a"), a));
    EXPECT_TRUE(same_bytes(f.read("g/b"), b));
    EXPECT_EQ(f.get_attr_int("", "step"), 20);
    // Moving transfers ownership; the moved-to handle closes the file.
    H5File g = std::move(f);
    EXPECT_FALSE(f.is_open());  // NOLINT(bugprone-use-after-move): documented moved-from state
    EXPECT_TRUE(g.is_open());
    EXPECT_EQ(g.path(), p);
  }
  {
    H5File f = H5File::create(p, MPI_COMM_SELF);  // truncates
    EXPECT_TRUE(f.list("").empty());
    EXPECT_FALSE(f.has_attr("", "step"));
  }
}

// remove() unlinks a dataset or a whole group, after which the name can be created afresh.
TEST_F(H5FileTest, RemoveDatasetAndGroup) {
  const std::string p = file("rm.h5");
  const Tensor a = random_tensor({4}, DType::F32, 7);
  {
    H5File f = H5File::create(p, MPI_COMM_SELF);
    f.write_tensor("g/sub/a", a, 0);
    f.write_tensor("g/b", a, 0);
    f.write_tensor("keep", a, 0);
    f.set_attr("g", "note", "old");
    f.remove("g/b");
    EXPECT_FALSE(f.exists("g/b"));
    EXPECT_TRUE(f.exists("g/sub/a"));
    f.remove("/g");
    EXPECT_FALSE(f.exists("g"));
    EXPECT_FALSE(f.exists("g/sub/a"));
    EXPECT_EQ(f.list(""), (std::vector<std::string>{"keep"}));
    f.create_group("g");  // the name is free again, without the old attribute
    EXPECT_FALSE(f.has_attr("g", "note"));
    f.write_tensor("g/b", random_tensor({2}, DType::I32, 8), 0);
    expect_error([&] { f.remove("g/missing"); }, {"g/missing", "does not exist"});
    expect_error([&] { f.remove("/"); }, {"root"});
  }
  {
    H5File f = H5File::open_read(p, MPI_COMM_SELF);
    EXPECT_EQ(f.list(""), (std::vector<std::string>{"g", "keep"}));
    EXPECT_EQ(f.shape("g/b"), (Shape{2}));
    EXPECT_TRUE(same_bytes(f.read("keep"), a));
    expect_error([&] { f.remove("keep"); }, {"read-only"});
  }
}

// The file is plain HDF5: the serial C library (no quopt) sees the types and values H5File wrote.
TEST_F(H5FileTest, PlainHdf5ReadsWhatH5FileWrote) {
  const std::string p = file("interop.h5");
  const Tensor w = random_tensor({2, 3}, DType::F32, 9);
  {
    H5File f = H5File::create(p, MPI_COMM_SELF);
    f.write_tensor("weights/w", w, 0);
    f.set_attr("weights/w", "role", "hidden");
    f.set_attr("", "seed", std::int64_t{42});
  }
  const hid_t file = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hid_t ds = H5Dopen2(file, "/weights/w", H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  const hid_t t = H5Dget_type(ds);
  EXPECT_EQ(H5Tequal(t, H5T_IEEE_F32LE), 1);
  std::vector<float> buf(6);
  EXPECT_GE(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), 0);
  EXPECT_EQ(std::memcmp(buf.data(), w.raw(), 24), 0);
  const hid_t a = H5Aopen(ds, "role", H5P_DEFAULT);
  const hid_t at = H5Aget_type(a);
  EXPECT_EQ(H5Tget_class(at), H5T_STRING);
  EXPECT_GT(H5Tis_variable_str(at), 0);
  EXPECT_EQ(H5Tget_cset(at), H5T_CSET_UTF8);
  const hid_t s = H5Aopen(file, "seed", H5P_DEFAULT);
  std::int64_t seed = 0;
  EXPECT_GE(H5Aread(s, H5T_NATIVE_INT64, &seed), 0);
  EXPECT_EQ(seed, 42);
  H5Aclose(s);
  H5Tclose(at);
  H5Aclose(a);
  H5Tclose(t);
  H5Dclose(ds);
  H5Fclose(file);
}

// ... and H5File reads a file written by another tool, with fixed-length strings and other types.
TEST_F(H5FileTest, H5FileReadsPlainHdf5File) {
  const std::string p = file("foreign.h5");
  {
    const hid_t file = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 8);
    H5Tset_strpad(st, H5T_STR_NULLPAD);
    const hid_t a = H5Acreate2(file, "name", st, scalar, H5P_DEFAULT, H5P_DEFAULT);
    const char fixed[8] = {'a', 'b', 'c', '\0', '\0', '\0', '\0', '\0'};
    H5Awrite(a, st, fixed);
    H5Aclose(a);
    const hid_t b = H5Acreate2(file, "f32", H5T_IEEE_F32BE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    const float x = 0.75F;
    H5Awrite(b, H5T_NATIVE_FLOAT, &x);
    H5Aclose(b);
    const hsize_t dims[2] = {2, 2};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t ds = H5Dcreate2(file, "be", H5T_IEEE_F64BE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const double v[4] = {1.0, -2.5, 3.25, 1e-10};
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    const hid_t ds8 = H5Dcreate2(file, "u8", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds8);
    H5Sclose(space);
    H5Sclose(scalar);
    H5Tclose(st);
    H5Fclose(file);
  }
  H5File f = H5File::open_read(p, MPI_COMM_SELF);
  EXPECT_EQ(f.get_attr_string("", "name"), "abc");
  EXPECT_EQ(f.get_attr_double("", "f32"), 0.75);
  const Tensor be = f.read("be");  // big-endian in the file, native in memory
  ASSERT_EQ(be.dtype(), DType::F64);
  EXPECT_EQ(be.item(1), -2.5);
  EXPECT_EQ(be.item(3), 1e-10);
  expect_error([&] { f.read("u8"); }, {"'u8'", "integer of 1 bytes", "f32, f64 and i32"});
}

// ---- interoperability with h5py (driven by tests/python/test_h5py_read.py) --------------------------
// Both tests are skipped unless QUOPT_H5_INTEROP_FILE names a file. Values follow formulas that the
// Python side computes on its own.

float interop_f32(std::int64_t i) {
  return 0.5F * static_cast<float>(i) - 1.0F;
}
std::int32_t interop_i32(std::int64_t i) {
  return static_cast<std::int32_t>(i * i) - 3;
}

TEST(H5FileInterop, WriteFileForPython) {
  const char* path = std::getenv("QUOPT_H5_INTEROP_FILE");
  if (!path) GTEST_SKIP() << "set QUOPT_H5_INTEROP_FILE (tests/python/test_h5py_read.py does)";
  H5File f = H5File::create(path, MPI_COMM_SELF);
  f.set_attr("", "format", "quopt-interop \u00b5");
  f.set_attr("", "seed", std::int64_t{1234567890123});
  f.set_attr("", "lr", 3e-4);
  f.set_attr("", "dims", std::vector<std::int64_t>{2, 3, 5});
  f.set_attr("", "betas", std::vector<double>{0.9, 0.95});
  Tensor w = Tensor::empty({3, 4}, DType::F32);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = interop_f32(i);
  f.write_tensor("weights/layer0/w", w, 0);
  f.set_attr("weights/layer0/w", "role", "hidden");
  Tensor s = Tensor::empty({}, DType::F64);
  s.data<double>()[0] = 2.718281828459045;
  f.write_tensor("weights/layer0/s", s, 0);
  Tensor ids = Tensor::empty({5}, DType::I32);
  for (std::int64_t i = 0; i < 5; ++i) ids.data<std::int32_t>()[i] = interop_i32(i);
  f.write_tensor("tokens", ids, 0);
  f.write_tensor("empty", Tensor::empty({0, 3}, DType::F32), 0);
}

// The file was written by h5py with: attrs name="h5py \u00e9" (str), step=7 (int64), loss=0.125 (float64),
// shape=[4, 2] (int64 array), dataset "x" float32 (4, 2) with x[i, j] = 0.5 * (2 i + j) - 1 and
// dataset "ids" int32 (5,) with ids[i] = i * i - 3.
TEST(H5FileInterop, ReadFileFromPython) {
  const char* path = std::getenv("QUOPT_H5_INTEROP_FILE");
  if (!path) GTEST_SKIP() << "set QUOPT_H5_INTEROP_FILE (tests/python/test_h5py_read.py does)";
  H5File f = H5File::open_read(path, MPI_COMM_SELF);
  EXPECT_EQ(f.get_attr_string("", "name"), "h5py \u00e9");
  EXPECT_EQ(f.get_attr_int("", "step"), 7);
  EXPECT_EQ(f.get_attr_double("", "loss"), 0.125);
  EXPECT_EQ(f.get_attr_ints("", "shape"), (std::vector<std::int64_t>{4, 2}));
  const Tensor x = f.read("x", {4, 2}, DType::F32);
  for (std::int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(x.data<float>()[i], interop_f32(i)) << i;
  const Tensor ids = f.read("ids", {5}, DType::I32);
  for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(ids.data<std::int32_t>()[i], interop_i32(i)) << i;
}

}  // namespace
