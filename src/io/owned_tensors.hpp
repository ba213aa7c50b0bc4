#pragma once
// Writing and verifying tensors that different ranks own, in one HDF5 file.
//
// write_owned: every rank passes the tensors it holds (name = dataset path). Descriptors (name, shape,
// dtype) are all-gathered; a name offered by several ranks (replicas, a tied embedding's copy) is
// written by the lowest rank offering it. Datasets are created collectively in sorted order, then each
// writer writes its own data with independent I/O. With `manifest`, every dataset's FNV-1a checksum is
// gathered into a text manifest ("<name>\t<16 hex digits>\n", sorted) stored as the root attribute
// "manifest", so a reader can verify the file end to end.
#include <mpi.h>

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "io/h5file.hpp"

namespace quopt {

void write_owned(H5File& f, MPI_Comm comm, const std::vector<NamedTensor>& mine, bool manifest);

// FNV-1a 64-bit hash of a tensor's bytes.
std::uint64_t tensor_checksum(const Tensor& t);

// Reads the "manifest" attribute and checks every listed dataset's checksum. Returns an empty string
// when the file verifies, else what is wrong (the first bad dataset). `check`, when given, also sees
// every dataset read (name, tensor) and returns what is wrong with it ("" for nothing), so a caller
// can check contents without reading the file twice.
using TensorCheck = std::function<std::string(const std::string&, const Tensor&)>;
std::string verify_manifest(const H5File& f, const TensorCheck& check = {});

}  // namespace quopt
