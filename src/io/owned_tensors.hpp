#pragma once
// Writing and verifying tensors that different ranks own, in one HDF5 file.
//
// write_owned: every rank passes the tensors it holds (name = dataset path). Descriptors (name, shape,
// dtype) are all-gathered; a name offered by several ranks (replicas, a tied embedding's copy) is
// written by the lowest rank offering it. Datasets are created collectively in sorted order, then each
// writer writes its own data with independent I/O (in pieces that are checksummed, and checked,
// while they are in cache: H5File::write with a visitor). With `manifest`, every dataset's checksum is
// gathered into a text manifest ("<name>\t<16 hex digits>\n", sorted) stored as the root attribute
// "manifest", with the hash's name in the root attribute "manifest_hash" ("xxh3-64"), so a reader can
// verify the file end to end. A manifest without "manifest_hash" is from a quopt before the change
// (FNV-1a sums) and verifies with FNV-1a; an unknown hash name is reported, not guessed.
#include <mpi.h>

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "io/h5file.hpp"

namespace quopt {

// With `must_be_finite`, every tensor of `mine` whose name it accepts has its non-finite values counted
// (written tensors in the same pass over their bytes as the write and the checksum, so the data is read
// from memory once) and the result is describe_nonfinite's text for this rank's tensors ("" when all
// are finite); what to do about it is the caller's (checkpoints discard the file).
using NameFilter = std::function<bool(const std::string& name)>;
std::string write_owned(H5File& f, MPI_Comm comm, const std::vector<NamedTensor>& mine, bool manifest,
                        const NameFilter& must_be_finite = {});

// XXH3 64-bit hash (xxHash 0.8, seed 0) of a tensor's bytes: any single flipped bit changes it, and it
// runs at memory speed (FNV-1a, one byte per multiply, took two thirds of a checkpoint's write time).
// A device tensor is copied to the host first.
std::uint64_t tensor_checksum(const Tensor& t);
// FNV-1a 64-bit hash of a tensor's bytes: the checksum of manifests written before xxh3-64 (verification).
std::uint64_t tensor_checksum_fnv1a(const Tensor& t);

// Reads the "manifest" attribute and checks every listed dataset's checksum. Returns an empty string
// when the file verifies, else what is wrong (the first bad dataset). `check`, when given, also sees
// every dataset read (name, tensor) and returns what is wrong with it ("" for nothing), so a caller
// can check contents without reading the file twice.
using TensorCheck = std::function<std::string(const std::string&, const Tensor&)>;
std::string verify_manifest(const H5File& f, const TensorCheck& check = {});

}  // namespace quopt
