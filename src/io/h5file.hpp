#pragma once
// H5File: a small RAII interface over the parallel HDF5 C API for quopt's run files and checkpoints.
//
// One file is opened by all ranks of an MPI communicator through the MPI-IO file driver
// (H5Pset_fapl_mpio). Everything that touches HDF5 is behind this class; no other file under src/ includes
// <hdf5.h>. HDF5's own error printing is switched off (H5Eset_auto2); every failure becomes a
// quopt::Error whose message names the file, the object and the cause.
//
// Paths name objects relative to the file's root: "weights/layer0/wq" and "/weights/layer0/wq" are the
// same object; "" and "/" are the root group. Components are separated by single '/'; "." and ".."
// are not allowed.
//
// COLLECTIVE RULE (parallel HDF5): every operation that changes the file's structure or metadata must
// be called by EVERY rank of the communicator, in the same order, with the SAME arguments:
//   create, open_read, open_rw, close (and the destructor), flush, create_group, create_dataset(s), remove,
//   set_attr, write_collective, write_tensor.
// These calls check that the arguments agree on all ranks (one small MPI_Allreduce) and throw the
// same quopt::Error on every rank when they do not, or when any rank's input is invalid, so a
// mistake ends in an error instead of a hang or a corrupt file.
// INDEPENDENT operations may be called by any subset of ranks (typically one):
//   write (raw data of an existing dataset, by the rank that owns the tensor), and all reads:
//   read, read_into, read_rows, shape, dtype, exists, list, get_attr_*, has_attr, attr_names.
// A dataset must have been created collectively before any rank writes it independently.
// Data written by one rank is visible to another rank's reads only after flush() and an MPI barrier
// (MPI-IO consistency semantics) or after closing and reopening the file.
// Errors on only some ranks inside a collective call (an HDF5 failure that the checks above cannot
// foresee) may still leave the other ranks waiting: treat a quopt::Error from a collective call as
// fatal for the run unless every rank caught it.
//
// Storage: datasets are contiguous (the layout parallel HDF5 writes without chunk coordination),
// little-endian IEEE f32/f64 and i32; attributes are scalars or 1-D arrays, strings are variable-
// length UTF-8. Such files read back in h5py as numpy arrays, Python ints/floats and str.
#include <mpi.h>

#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace quopt {

class H5File {
 public:
  enum class Mode : std::uint8_t { ReadOnly, ReadWrite };

  // Collective. Creates path, replacing an existing file (truncate).
  static H5File create(const std::string& path, MPI_Comm comm);
  // Collective. Opens an existing file read-only / read-write. Throws when the file is missing, is not
  // an HDF5 file, or is truncated or damaged.
  static H5File open_read(const std::string& path, MPI_Comm comm);
  static H5File open_rw(const std::string& path, MPI_Comm comm);

  H5File() = default;
  H5File(H5File&& other) noexcept;
  H5File& operator=(H5File&& other) noexcept;
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;
  // Collective: closes the file if it is open (so is move-assigning onto an open H5File). Errors are
  // reported as a warning (never thrown). After MPI_Finalize nothing is done (HDF5 has closed it).
  ~H5File();

  // Collective. Flushes and closes the file; afterwards is_open() is false. No-op when not open.
  void close();
  // Collective, for the error path of a file being written under a temporary name: closes the file
  // and removes it, never throwing. Rank 0 first truncates it to 0 bytes so that, on a full disk,
  // HDF5's final metadata flush finds room and the close succeeds. Every rank returns after the removal.
  void discard() noexcept;
  // True once an H5Fclose failed and left its file half-closed: HDF5 1.10 then keeps an identifier to
  // a freed file object, which its own shutdown (run by MPI_Finalize) dereferences and crashes on.
  // main() ends the process without MPI_Finalize when this is set (the error is already reported).
  static bool library_damaged();
  // Collective. Writes all buffered data and metadata to disk.
  void flush();

  bool is_open() const { return file_ >= 0; }
  const std::string& path() const { return path_; }
  Mode mode() const { return mode_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  // ---- structure (collective) --------------------------------------------------------------------
  // Creates a group and any missing intermediate groups; a group that already exists is kept.
  void create_group(const std::string& path);
  // Creates a dataset (and intermediate groups). dtype F32, F64 or I32; Shape {} is a scalar dataset,
  // dimensions of size 0 are allowed. Throws if the path already exists.
  void create_dataset(const std::string& path, const Shape& shape, DType dtype);
  // Creates several datasets with one agreement among the ranks instead of one per dataset (a
  // checkpoint has hundreds); the same checks and errors as create_dataset for each.
  struct DatasetSpec {
    std::string path;
    Shape shape;
    DType dtype;
  };
  void create_datasets(const std::vector<DatasetSpec>& specs);
  // Removes the link at path: a dataset, or a group with everything below it (so that a group can be
  // rewritten from scratch). HDF5 does not give the freed space back to the file system (h5repack
  // does). Throws if path does not exist or is the root group.
  void remove(const std::string& path);

  // ---- attributes on the root (""), a group or a dataset (collective) ---------------------------
  // An existing attribute of the same name is replaced (its type may change).
  void set_attr(const std::string& path, const std::string& name, const std::string& value);
  void set_attr(const std::string& path, const std::string& name, const char* value) {
    set_attr(path, name, std::string(value));
  }
  template <std::integral T>
  void set_attr(const std::string& path, const std::string& name, T value) {
    set_attr_int64s(path, name, {static_cast<std::int64_t>(value)}, true);
  }
  template <std::floating_point T>
  void set_attr(const std::string& path, const std::string& name, T value) {
    set_attr_doubles(path, name, {static_cast<double>(value)}, true);
  }
  template <std::integral T>
  void set_attr(const std::string& path, const std::string& name, const std::vector<T>& values) {
    set_attr_int64s(path, name, std::vector<std::int64_t>(values.begin(), values.end()), false);
  }
  template <std::floating_point T>
  void set_attr(const std::string& path, const std::string& name, const std::vector<T>& values) {
    set_attr_doubles(path, name, std::vector<double>(values.begin(), values.end()), false);
  }

  // ---- data --------------------------------------------------------------------------------------
  // Independent: the calling rank writes the whole dataset. t must match the dataset's shape and
  // dtype; a device tensor is copied to the host first.
  void write(const std::string& path, const Tensor& t);
  // Like write(), in pieces of rows (dimension 0) of about kWritePieceBytes each, calling visit(piece)
  // on each piece just before it is written: a caller that hashes or checks the bytes it writes
  // (checkpoints) reads them once from memory instead of twice, while they are in cache.
  static constexpr std::size_t kWritePieceBytes = std::size_t{256} << 10;  // fits in a core's L2
  using PieceVisitor = std::function<void(const Tensor& piece)>;
  void write(const std::string& path, const Tensor& t, const PieceVisitor& visit);
  // Collective: every rank writes rows [row_begin, row_begin + slab.dim(0)) of the dataset (dimension
  // 0 split across ranks; the other dimensions must match). A rank with nothing to write passes a
  // slab with 0 rows (any row_begin in [0, rows]) and still calls. Uses H5FD_MPIO_COLLECTIVE.
  void write_collective(const std::string& path, const Tensor& slab, std::int64_t row_begin);
  // Collective convenience: create_dataset(path, t.shape(), t.dtype()) on all ranks, then
  // write(path, t) on writer_rank only. Every rank passes a tensor of the same shape and dtype (only
  // the writer's values are used).
  void write_tensor(const std::string& path, const Tensor& t, int writer_rank);

  // Independent reads. read() returns a host tensor of the dataset's dtype and shape.
  Tensor read(const std::string& path) const;
  // Like read(), but throws unless the dataset has exactly this shape and dtype.
  Tensor read(const std::string& path, const Shape& expect_shape, DType expect_dtype) const;
  // Reads into an existing tensor (host or device) of the dataset's exact shape and dtype.
  void read_into(const std::string& path, Tensor& dst) const;
  // Rows [row_begin, row_end) of dimension 0.
  Tensor read_rows(const std::string& path, std::int64_t row_begin, std::int64_t row_end) const;
  Shape shape(const std::string& path) const;
  DType dtype(const std::string& path) const;

  // ---- queries (independent) ---------------------------------------------------------------------
  // True when every component of path exists (root always exists); never throws for a missing path.
  bool exists(const std::string& path) const;
  // Names of the children (groups and datasets) of a group, sorted.
  std::vector<std::string> list(const std::string& group) const;
  bool is_group(const std::string& path) const;
  bool is_dataset(const std::string& path) const;

  bool has_attr(const std::string& path, const std::string& name) const;
  std::vector<std::string> attr_names(const std::string& path) const;  // sorted
  std::string get_attr_string(const std::string& path, const std::string& name) const;
  // Integer attribute with one element.
  std::int64_t get_attr_int(const std::string& path, const std::string& name) const;
  // Floating-point (or integer) attribute with one element.
  double get_attr_double(const std::string& path, const std::string& name) const;
  std::vector<std::int64_t> get_attr_ints(const std::string& path, const std::string& name) const;
  std::vector<double> get_attr_doubles(const std::string& path, const std::string& name) const;

 private:
  static H5File open_impl(const std::string& path, MPI_Comm comm, int how);
  void release() noexcept;
  void require_open(const char* op) const;
  void require_writable(const char* op) const;
  // Collective: throws on every rank unless all ranks passed the same description and all are ok.
  void agree(const char* op, const std::string& args, const std::string& local_error = {}) const;
  void set_attr_int64s(const std::string& path, const std::string& name, const std::vector<std::int64_t>& v,
                       bool scalar);
  void set_attr_doubles(const std::string& path, const std::string& name, const std::vector<double>& v,
                        bool scalar);
  void write_attr(const std::string& path, const std::string& name, std::int64_t type_kind, const void* data,
                  std::size_t n, bool scalar);
  std::vector<std::int64_t> read_int_attr(const std::string& path, const std::string& name, bool one) const;
  std::vector<double> read_double_attr(const std::string& path, const std::string& name, bool one) const;
  void read_dataset(const std::string& path, Tensor& dst, std::int64_t row_begin, std::int64_t row_end,
                    bool rows) const;

  // After every kWritebackBytes of independent writes, asks the kernel to start writing the file's
  // dirty pages back (Linux sync_file_range), so the disk works while later data is still being
  // produced and flush()'s fsync waits for the tail only.
  void start_writeback(std::size_t bytes_written);

  std::int64_t file_ = -1;  // hid_t (int64_t in HDF5 >= 1.10)
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::string path_;
  Mode mode_ = Mode::ReadOnly;
  int rank_ = 0;
  int size_ = 1;
  int writeback_fd_ = -1;  // a read-only descriptor of the file for start_writeback, opened on first use
  std::size_t unsynced_bytes_ = 0;
};

}  // namespace quopt
