// Parallel HDF5 through H5File (run under mpiexec at np 1, 2, 4): collective creation, independent
// writes by the owning rank, row-partitioned collective writes, and a file whose layout and values do
// not depend on the number of ranks. Errors in collective calls end in the same quopt::Error on every
// rank instead of a hang.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/h5file.hpp"
#include "support/error_of.hpp"

namespace {

namespace fs = std::filesystem;
using quopt::cat;
using quopt::DType;
using quopt::H5File;
using quopt::Shape;
using quopt::Tensor;
using quopt::testing::error_of;

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

// True on every rank only if it is true on every rank (so one failing rank fails the test everywhere).
bool all_ranks(bool ok) {
  int v = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return v == 1;
}

class H5Parallel : public ::testing::Test {
 protected:
  void SetUp() override {
    // Rank 0 names the directory; every rank uses the same path.
    std::string d;
    if (world_rank() == 0) {
      const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
      d = (fs::temp_directory_path() / cat("quopt_h5par_", ::getpid(), "_", info->name())).string();
      fs::remove_all(d);
      fs::create_directories(d);
    }
    int n = static_cast<int>(d.size());
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    d.resize(static_cast<std::size_t>(n));
    MPI_Bcast(d.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
    dir_ = d;
  }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) fs::remove_all(dir_);
  }
  std::string file(const std::string& name) const { return (fs::path(dir_) / name).string(); }
  std::string dir_;
};

// ---- the layout, a pure function of indices (never of the number of ranks) --------------------------

constexpr int kTensors = 11;
const DType kDTypes[3] = {DType::F32, DType::F64, DType::I32};

std::string tensor_path(int i) {
  return cat("weights/layer", i, "/t", i);
}
DType tensor_dtype(int i) {
  return kDTypes[i % 3];
}
Shape tensor_shape(int i) {
  if (i == 5) return {};      // a scalar
  if (i == 7) return {0, 3};  // an empty tensor
  if (i == 9) return {2, 3, 2};
  return {i % 4 + 1, i % 3 + 2};
}
double value(int tensor, std::int64_t j) {
  return std::sin(0.37 * tensor + 0.011 * static_cast<double>(j)) * 1000.0;  // not representable exactly
}

Tensor make_tensor(int i) {
  Tensor t = Tensor::empty(tensor_shape(i), tensor_dtype(i));
  for (std::int64_t j = 0; j < t.numel(); ++j) {
    const double v = value(i, j);
    switch (t.dtype()) {
      case DType::F32:
        t.data<float>()[j] = static_cast<float>(v);
        break;
      case DType::F64:
        t.data<double>()[j] = v;
        break;
      case DType::I32:
        t.data<std::int32_t>()[j] = static_cast<std::int32_t>(std::lround(v));
        break;
      case DType::BF16:
        break;
    }
  }
  return t;
}

// Row-partitioned datasets: element (r, c) of a dataset with `cols` columns (per row) has value
// row_value(id, r * cols + c).
struct Partitioned {
  const char* path;
  Shape shape;
  DType dtype;
  bool reversed;  // rank r writes the block of rank size-1-r
};
const std::vector<Partitioned> kPartitioned = {
    {"activations/x", {37, 5}, DType::F32, false},    // uneven blocks
    {"activations/tiny", {3, 2}, DType::I32, false},  // at np 4 one rank has no rows
    {"activations/rev", {10, 3, 2}, DType::F64, true},
    {"activations/none", {0, 4}, DType::F64, false},  // nobody has rows
};

Tensor make_rows(std::size_t id, DType dt, const Shape& shape, std::int64_t b, std::int64_t e) {
  Shape s = shape;
  s[0] = e - b;
  Tensor t = Tensor::empty(s, dt);
  const std::int64_t row = e > b ? t.numel() / (e - b) : 0;
  for (std::int64_t k = 0; k < t.numel(); ++k) {
    const double v = value(100 + static_cast<int>(id), b * row + k);
    if (dt == DType::F32) t.data<float>()[k] = static_cast<float>(v);
    if (dt == DType::F64) t.data<double>()[k] = v;
    if (dt == DType::I32) t.data<std::int32_t>()[k] = static_cast<std::int32_t>(std::lround(v));
  }
  return t;
}

// Block partition of n rows over p ranks.
std::pair<std::int64_t, std::int64_t> block(std::int64_t n, int p, int r) {
  return {n * r / p, n * (r + 1) / p};
}

bool equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

// Every object path in the file (depth first, sorted), for comparing the layout as a whole.
void walk(const H5File& f, const std::string& group, std::vector<std::string>& out) {
  for (const auto& n : f.list(group)) {
    const std::string p = group.empty() ? n : group + "/" + n;
    out.push_back(p);
    if (f.is_group(p)) walk(f, p, out);
  }
}

void write_run_file(const std::string& path) {
  const int rank = world_rank(), size = world_size();
  H5File f = H5File::create(path, MPI_COMM_WORLD);
  f.set_attr("", "format", "quopt-test");
  f.set_attr("", "tensors", std::int64_t{kTensors});
  // Collective structure: every rank creates every dataset, in the same order.
  for (int i = 0; i < kTensors; ++i) {
    f.create_dataset(tensor_path(i), tensor_shape(i), tensor_dtype(i));
    f.set_attr(tensor_path(i), "index", std::int64_t{i});
    f.set_attr(cat("weights/layer", i), "scale", 0.5 * i);
  }
  for (const auto& p : kPartitioned) f.create_dataset(p.path, p.shape, p.dtype);
  // Independent data: each rank writes only the tensors it owns.
  for (int i = 0; i < kTensors; ++i) {
    if (i % size == rank) f.write(tensor_path(i), make_tensor(i));
  }
  // Collective data: each rank writes its block of rows; ranks with no rows still take part.
  for (std::size_t id = 0; id < kPartitioned.size(); ++id) {
    const auto& p = kPartitioned[id];
    const auto [b, e] = block(p.shape[0], size, p.reversed ? size - 1 - rank : rank);
    f.write_collective(p.path, make_rows(id, p.dtype, p.shape, b, e), b);
  }
  // Convenience: created by all, written by the last rank.
  f.write_tensor("meta/table", make_rows(9, DType::F64, {4, 4}, 0, 4), size - 1);
  f.close();
}

TEST_F(H5Parallel, LayoutAndValuesDoNotDependOnRanks) {
  const std::string path = file("run.h5");
  write_run_file(path);

  // Every rank reopens the file and checks every value against the formula.
  H5File f = H5File::open_read(path, MPI_COMM_WORLD);
  bool ok = true;
  auto check = [&](bool cond, const std::string& what) {
    EXPECT_TRUE(cond) << "rank " << world_rank() << ": " << what;
    ok = ok && cond;
  };
  std::vector<std::string> want = {"activations", "meta", "meta/table", "weights"};
  for (const auto& p : kPartitioned) want.emplace_back(p.path);
  for (int i = 0; i < kTensors; ++i) {
    want.push_back(cat("weights/layer", i));
    want.push_back(tensor_path(i));
  }
  std::vector<std::string> got;
  walk(f, "", got);
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  check(got == want, "object tree");
  check(f.get_attr_string("", "format") == "quopt-test", "root attribute format");
  check(f.get_attr_int("", "tensors") == kTensors, "root attribute tensors");

  for (int i = 0; i < kTensors; ++i) {
    const Tensor r = f.read(tensor_path(i));
    check(equal(r, make_tensor(i)), tensor_path(i) + " values");
    check(f.shape(tensor_path(i)) == tensor_shape(i), tensor_path(i) + " shape");
    check(f.get_attr_int(tensor_path(i), "index") == i, tensor_path(i) + " index");
    check(f.get_attr_double(cat("weights/layer", i), "scale") == 0.5 * i, "layer scale");
  }
  for (std::size_t id = 0; id < kPartitioned.size(); ++id) {
    const auto& p = kPartitioned[id];
    const Tensor whole = f.read(p.path);
    check(equal(whole, make_rows(id, p.dtype, p.shape, 0, p.shape[0])), cat(p.path, " values"));
    // Each rank also reads some rows of its own choice (independent partial reads).
    const std::int64_t n = p.shape[0];
    const std::int64_t b = (world_rank() * 3) % (n + 1), e = std::min(n, b + 2);
    check(equal(f.read_rows(p.path, b, e), make_rows(id, p.dtype, p.shape, b, e)), cat(p.path, " rows"));
  }
  check(equal(f.read("meta/table"), make_rows(9, DType::F64, {4, 4}, 0, 4)), "meta/table");
  f.close();
  EXPECT_TRUE(all_ranks(ok));
}

TEST_F(H5Parallel, OneRankReadsWhileOthersDoNot) {
  const std::string path = file("run.h5");
  write_run_file(path);
  H5File f = H5File::open_read(path, MPI_COMM_WORLD);
  bool ok = true;
  if (world_rank() == world_size() - 1) {  // reads are independent: only one rank takes part
    for (int i = 0; i < kTensors; ++i) ok = ok && equal(f.read(tensor_path(i)), make_tensor(i));
  }
  f.close();
  EXPECT_TRUE(all_ranks(ok));
}

TEST_F(H5Parallel, AppendWithOpenRw) {
  const std::string path = file("run.h5");
  write_run_file(path);
  {
    H5File f = H5File::open_rw(path, MPI_COMM_WORLD);
    f.write_tensor("extra/step", make_rows(20, DType::I32, {1}, 0, 1), 0);
    f.set_attr("", "format", "quopt-test-2");
  }
  H5File f = H5File::open_read(path, MPI_COMM_WORLD);
  const bool ok = equal(f.read("extra/step"), make_rows(20, DType::I32, {1}, 0, 1)) &&
                  f.get_attr_string("", "format") == "quopt-test-2" &&
                  equal(f.read(tensor_path(3)), make_tensor(3));
  EXPECT_TRUE(all_ranks(ok));
}

TEST_F(H5Parallel, CollectiveMistakesThrowOnEveryRank) {
  const int rank = world_rank(), size = world_size();
  const std::string path = file("err.h5");

  // A missing file is reported on every rank (rank 0 checks, all agree).
  const std::string missing = error_of([&] { H5File::open_read(file("missing.h5"), MPI_COMM_WORLD); });
  EXPECT_NE(missing.find("does not exist"), std::string::npos) << missing;

  H5File f = H5File::create(path, MPI_COMM_WORLD);
  f.create_dataset("x", {8, 2}, DType::F32);

  // One rank's slab is out of range: every rank throws, and the others say which rank it was.
  const int bad = size - 1;
  const std::int64_t begin = rank == bad ? 7 : 0;
  const std::int64_t rows = rank == bad ? 2 : 0;
  const std::string e1 = error_of([&] { f.write_collective("x", Tensor::zeros({rows, 2}), begin); });
  EXPECT_NE(e1.find("rows [7, 9) are outside [0, 8)"), std::string::npos) << e1;
  if (rank != bad) {
    EXPECT_NE(e1.find(cat("reported by rank ", bad)), std::string::npos) << e1;
  }

  if (size > 1) {
    // Different arguments for a collective call.
    const std::string e2 = error_of([&] { f.create_dataset("y", {rank + 1}, DType::F32); });
    EXPECT_NE(e2.find("different arguments"), std::string::npos) << e2;
    const std::string e3 = error_of([&] { f.set_attr("x", "who", std::int64_t{rank}); });
    EXPECT_NE(e3.find("different arguments"), std::string::npos) << e3;
    // Overlapping slabs: ranks 0 and 1 both claim rows [0, 2).
    const std::int64_t n = rank <= 1 ? 2 : 0;
    const std::string e4 = error_of([&] { f.write_collective("x", Tensor::zeros({n, 2}), 0); });
    EXPECT_NE(e4.find("overlap"), std::string::npos) << e4;
  }

  // The file is still usable after the errors: a correct collective write and a reopen work.
  const auto [b, e] = block(8, size, rank);
  f.write_collective("x", make_rows(0, DType::F32, {8, 2}, b, e), b);
  f.close();
  H5File g = H5File::open_read(path, MPI_COMM_WORLD);
  EXPECT_TRUE(all_ranks(equal(g.read("x"), make_rows(0, DType::F32, {8, 2}, 0, 8))));
  EXPECT_FALSE(g.exists("y"));
  EXPECT_FALSE(g.has_attr("x", "who"));
}

}  // namespace
