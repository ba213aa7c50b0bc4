// io/owned_tensors: the checkpoint manifest's checksums. A flipped bit anywhere in a tensor is caught
// by tensor_checksum and, end to end, by verify_manifest on the file; manifests written before the
// xxh3-64 change (FNV-1a sums, no "manifest_hash" attribute) still verify; an unknown hash is named.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "io/h5file.hpp"
#include "io/owned_tensors.hpp"

namespace quopt {
namespace {

namespace fs = std::filesystem;

Tensor random_tensor(std::int64_t n, std::uint64_t seed) {
  Tensor t = Tensor::empty({n}, DType::F32);
  Rng rng(seed, 3);
  for (std::int64_t i = 0; i < n; ++i) t.data<float>()[i] = static_cast<float>(rng.normal());
  return t;
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("quopt-test-owned-" + std::to_string(::getpid()) + "-" + name)).string();
}

TEST(TensorChecksum, EverySingleBitFlipChangesIt) {
  Tensor t = random_tensor(257, 1);  // odd length: the hash's tail path too
  const std::uint64_t h0 = tensor_checksum(t);
  auto* bytes = static_cast<unsigned char*>(t.raw());
  for (std::size_t i = 0; i < t.nbytes(); ++i)
    for (int b = 0; b < 8; ++b) {
      bytes[i] ^= static_cast<unsigned char>(1u << b);
      EXPECT_NE(tensor_checksum(t), h0) << "byte " << i << " bit " << b;
      bytes[i] ^= static_cast<unsigned char>(1u << b);
    }
  EXPECT_EQ(tensor_checksum(t), h0);
}

TEST(TensorChecksum, LargeTensorBitFlipsAndKnownValue) {
  Tensor t = random_tensor(1 << 20, 2);  // 4 MiB: XXH3's long-input (striped) path
  const std::uint64_t h0 = tensor_checksum(t);
  auto* bytes = static_cast<unsigned char*>(t.raw());
  Rng rng(5, 5);
  for (int k = 0; k < 200; ++k) {
    const auto i = static_cast<std::size_t>(rng.below(t.nbytes()));
    const auto bit = static_cast<unsigned char>(1u << rng.below(8));
    bytes[i] ^= bit;
    EXPECT_NE(tensor_checksum(t), h0) << "byte " << i;
    bytes[i] ^= bit;
  }
  // XXH3_64bits of no bytes (seed 0), xxHash's published test vector.
  EXPECT_EQ(tensor_checksum(Tensor::empty({0}, DType::F32)), 0x2D06800538D394C2ULL);
  EXPECT_EQ(tensor_checksum_fnv1a(Tensor::empty({0}, DType::F32)), 0xcbf29ce484222325ULL);
}

// Writes `t` as dataset "w" with a manifest, then flips one bit of its stored bytes in the file.
TEST(Manifest, FlippedBitInTheFileIsDetected) {
  const std::string path = temp_path("flip.h5");
  const Tensor t = random_tensor(4096, 3);
  {
    H5File f = H5File::create(path, MPI_COMM_SELF);
    write_owned(f, MPI_COMM_SELF, {{"w", t}}, true);
    f.close();
  }
  {
    H5File f = H5File::open_read(path, MPI_COMM_SELF);
    EXPECT_EQ(f.get_attr_string("/", "manifest_hash"), "xxh3-64");
    EXPECT_EQ(verify_manifest(f), "");
  }
  std::vector<char> file(static_cast<std::size_t>(fs::file_size(path)));
  {
    std::ifstream in(path, std::ios::binary);
    in.read(file.data(), static_cast<std::streamsize>(file.size()));
  }
  const auto* data = static_cast<const char*>(t.raw());
  const auto it = std::search(file.begin(), file.end(), data, data + t.nbytes());
  ASSERT_NE(it, file.end()) << "the tensor's bytes are not stored contiguously";
  it[1000] = static_cast<char>(it[1000] ^ 0x10);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(file.data(), static_cast<std::streamsize>(file.size()));
  }
  {
    H5File f = H5File::open_read(path, MPI_COMM_SELF);
    EXPECT_EQ(verify_manifest(f), "checksum mismatch in w (xxh3-64)");
  }
  fs::remove(path);
}

// Tensors larger than a write piece are written in pieces of rows, each seen by the visitor just
// before it is written: the pieces tile the tensor in order, the file holds the tensor bit for bit,
// the checksum streamed over the pieces is the one-shot tensor_checksum (the manifest verifies), and
// non-finite values anywhere (first piece, last row of the last piece) are counted.
TEST(Manifest, PiecewiseWriteChecksumsAndChecksEveryRowOnce) {
  const std::string path = temp_path("pieces.h5");
  const std::int64_t cols = 1000;  // 4000-byte rows: 65 rows a piece, so 3 full pieces and 5 rows
  const std::int64_t piece_rows = static_cast<std::int64_t>(H5File::kWritePieceBytes) / (cols * 4);
  const std::int64_t rows = 3 * piece_rows + 5;
  Tensor t = random_tensor(rows * cols, 6).reshape({rows, cols});
  {
    H5File f = H5File::create(path, MPI_COMM_SELF);
    f.create_dataset("direct", t.shape(), DType::F32);
    std::vector<std::pair<const char*, std::int64_t>> pieces;
    f.write("direct", t, [&](const Tensor& piece) {
      pieces.emplace_back(static_cast<const char*>(piece.raw()), piece.dim(0));
    });
    ASSERT_EQ(pieces.size(), 4u);
    const char* next = static_cast<const char*>(t.raw());
    for (const auto& [p, n] : pieces) {
      EXPECT_EQ(p, next);
      next += n * cols * 4;
    }
    EXPECT_EQ(next, static_cast<const char*>(t.raw()) + t.nbytes());
    const auto all = [](const std::string&) { return true; };
    EXPECT_EQ(write_owned(f, MPI_COMM_SELF, {{"w", t}}, true, all), "");
    f.close();
  }
  {
    H5File f = H5File::open_read(path, MPI_COMM_SELF);
    EXPECT_EQ(verify_manifest(f), "");
    for (const char* name : {"direct", "w"}) {
      const Tensor back = f.read(name);
      ASSERT_EQ(back.shape(), t.shape());
      EXPECT_EQ(std::memcmp(back.raw(), t.raw(), t.nbytes()), 0) << name;
    }
  }
  fs::remove(path);
  t.data<float>()[7] = std::numeric_limits<float>::quiet_NaN();
  t.data<float>()[rows * cols - 1] = -std::numeric_limits<float>::infinity();
  H5File f = H5File::create(path, MPI_COMM_SELF);
  const std::string bad = write_owned(f, MPI_COMM_SELF, {{"ok", random_tensor(10, 7)}, {"w", t}}, true,
                                      [](const std::string& n) { return n == "w"; });
  EXPECT_EQ(bad, "w holds 2 non-finite values (NaN or inf, of " + std::to_string(rows * cols) + ")");
  f.discard();
  EXPECT_FALSE(fs::exists(path));
}

// A checkpoint from before xxh3-64: FNV-1a sums, no manifest_hash attribute.
TEST(Manifest, LegacyFnvManifestStillVerifiesAndUnknownHashIsNamed) {
  const std::string path = temp_path("legacy.h5");
  const Tensor t = random_tensor(300, 4);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(tensor_checksum_fnv1a(t)));
  {
    H5File f = H5File::create(path, MPI_COMM_SELF);
    write_owned(f, MPI_COMM_SELF, {{"w", t}}, false);
    f.set_attr("/", "manifest", std::string("w\t") + hex + "\n");
    f.close();
  }
  {
    H5File f = H5File::open_read(path, MPI_COMM_SELF);
    EXPECT_EQ(verify_manifest(f), "");
  }
  {
    H5File f = H5File::open_rw(path, MPI_COMM_SELF);
    f.set_attr("/", "manifest", std::string("w\t") + "0123456789abcdef\n");
    f.close();
  }
  {
    H5File f = H5File::open_read(path, MPI_COMM_SELF);
    EXPECT_EQ(verify_manifest(f), "checksum mismatch in w (fnv1a-64)");
  }
  {
    H5File f = H5File::open_rw(path, MPI_COMM_SELF);
    f.set_attr("/", "manifest_hash", "sha-999");
    f.close();
  }
  {
    H5File f = H5File::open_read(path, MPI_COMM_SELF);
    const std::string why = verify_manifest(f);
    EXPECT_NE(why.find("'sha-999'"), std::string::npos) << why;
    EXPECT_NE(why.find("does not know"), std::string::npos) << why;
  }
  fs::remove(path);
}

}  // namespace
}  // namespace quopt
