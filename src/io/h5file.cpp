#include "io/h5file.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <type_traits>
#include <utility>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"
#include "io/disk_space.hpp"

#ifndef H5_HAVE_PARALLEL
#error "quopt needs a parallel (MPI) build of HDF5"
#endif

namespace quopt {

static_assert(std::is_same_v<hid_t, std::int64_t>, "H5File stores hid_t as int64_t (HDF5 >= 1.10)");

namespace {

namespace fs = std::filesystem;

// ---- HDF5 handles and errors -------------------------------------------------------------------------

// Owns one HDF5 identifier and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), close_(closer) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      close_ = o.close_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// HDF5 prints its error stack to stderr by default; quopt reports errors itself.
void silence_hdf5() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// The most specific description on HDF5's error stack (then clears the stack), e.g.
// "truncated file: eof = 1024, sblock->base_addr = 0, stored_eof = 2144".
std::string hdf5_cause() {
  struct Walk {
    std::string first;
    std::string minor;
  } w;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<Walk*>(data);
        if (n == 0 && e) {
          if (e->desc) out->first = e->desc;
          char buf[256] = {};
          if (H5Eget_msg(e->min_num, nullptr, buf, sizeof buf) > 0) out->minor = buf;
        }
        return 0;
      },
      &w);
  H5Eclear2(H5E_DEFAULT);
  if (w.first.empty()) return w.minor.empty() ? std::string("unknown HDF5 error") : w.minor;
  if (w.minor.empty() || w.first.find(w.minor) != std::string::npos) return w.first;
  return cat(w.first, " (", w.minor, ")");
}

// ---- paths -------------------------------------------------------------------------------------------

// Splits "a/b/c" or "/a/b/c" into components; "" and "/" are the root (no components).
std::vector<std::string> split_path(const std::string& path, const std::string& file) {
  std::vector<std::string> out;
  std::size_t i = (!path.empty() && path[0] == '/') ? 1 : 0;
  if (i == path.size()) return out;
  while (true) {
    const std::size_t j = path.find('/', i);
    std::string c = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (c.empty() || c == "." || c == "..") {
      fail("invalid HDF5 object path '", path, "' for file '", file, "': component '", c,
           "' is not allowed; use names separated by single '/' (e.g. \"weights/layer0/wq\")");
    }
    out.push_back(std::move(c));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

std::string join_path(const std::vector<std::string>& comps, std::size_t n) {
  if (n == 0) return "/";
  std::string s;
  for (std::size_t k = 0; k < n; ++k) s += "/" + comps[k];
  return s;
}
std::string join_path(const std::vector<std::string>& comps) {
  return join_path(comps, comps.size());
}

// Runs f and returns the quopt::Error message it threw, or "" when it did not throw.
template <class F>
std::string capture(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

// ---- dtypes ------------------------------------------------------------------------------------------

hid_t file_type(DType dt) {
  switch (dt) {
    case DType::F32:
      return H5T_IEEE_F32LE;
    case DType::F64:
      return H5T_IEEE_F64LE;
    case DType::I32:
      return H5T_STD_I32LE;
    case DType::BF16:
      break;
  }
  return -1;
}

hid_t mem_type(DType dt) {
  switch (dt) {
    case DType::F32:
      return H5T_NATIVE_FLOAT;
    case DType::F64:
      return H5T_NATIVE_DOUBLE;
    case DType::I32:
      return H5T_NATIVE_INT32;
    case DType::BF16:
      break;
  }
  return -1;
}

void check_storable(DType dt, const std::string& what) {
  if (file_type(dt) < 0) {
    fail(what, ": dtype ", dtype_name(dt), " cannot be stored; H5File stores f32, f64 and i32 (convert with ",
         "Tensor::astype(DType::F32))");
  }
}

const char* class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "floating-point";
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ARRAY:
      return "array";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length";
    default:
      return "other";
  }
}

// ---- dataspaces --------------------------------------------------------------------------------------

Shape space_shape(hid_t space) {
  const int n = H5Sget_simple_extent_ndims(space);
  if (n <= 0) return {};
  std::vector<hsize_t> d(static_cast<std::size_t>(n));
  H5Sget_simple_extent_dims(space, d.data(), nullptr);
  return Shape(d.begin(), d.end());
}

Handle make_space(const Shape& shape) {
  if (shape.empty()) return {H5Screate(H5S_SCALAR), H5Sclose};
  std::vector<hsize_t> d(shape.begin(), shape.end());
  return {H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr), H5Sclose};
}

// Selects rows [b, e) of dimension 0 in a simple dataspace of the given shape (nothing when b == e).
void select_rows(hid_t space, const Shape& shape, std::int64_t b, std::int64_t e) {
  if (e <= b) {
    H5Sselect_none(space);
    return;
  }
  std::vector<hsize_t> start(shape.size(), 0), count(shape.begin(), shape.end());
  start[0] = static_cast<hsize_t>(b);
  count[0] = static_cast<hsize_t>(e - b);
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
}

std::string list_hint(const std::vector<std::string>& names) {
  if (names.empty()) return "it is empty";
  constexpr std::size_t kShow = 12;  // enough to spot a typo without flooding the terminal
  std::string s = "it contains: ";
  for (std::size_t i = 0; i < names.size() && i < kShow; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > kShow) s += cat(", ... (", names.size() - kShow, " more)");
  return s;
}

std::vector<std::string> link_names(hid_t group) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5Literate(
      group, H5_INDEX_NAME, H5_ITER_INC, &idx,
      [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
      },
      &names);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> attribute_names(hid_t obj) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5Aiterate2(
      obj, H5_INDEX_NAME, H5_ITER_INC, &idx,
      [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
      },
      &names);
  std::sort(names.begin(), names.end());
  return names;
}

enum class Want { Any, Group, Dataset };

const char* kind_name(H5I_type_t t) {
  return t == H5I_GROUP ? "group" : (t == H5I_DATASET ? "dataset" : "named datatype");
}

// Opens the object at comps (the root for none), checking each component so that a missing one is
// named together with what its parent group does contain.
Handle open_object(hid_t file, const std::string& fname, const std::string& path, Want want) {
  const auto comps = split_path(path, fname);
  Handle cur(H5Oopen(file, "/", H5P_DEFAULT), H5Oclose);
  if (!cur.valid()) fail("cannot open the root group of '", fname, "': ", hdf5_cause());
  for (std::size_t k = 0; k < comps.size(); ++k) {
    if (H5Iget_type(cur.get()) != H5I_GROUP) {
      fail("object '", join_path(comps), "' not found in '", fname, "': '", join_path(comps, k), "' is a ",
           kind_name(H5Iget_type(cur.get())), ", not a group");
    }
    const htri_t ex = H5Lexists(cur.get(), comps[k].c_str(), H5P_DEFAULT);
    if (ex <= 0) {
      H5Eclear2(H5E_DEFAULT);
      fail(want == Want::Dataset ? "dataset '" : (want == Want::Group ? "group '" : "object '"),
           join_path(comps), "' not found in '", fname, "': group '", join_path(comps, k),
           "' has no member '", comps[k], "' (", list_hint(link_names(cur.get())), ")");
    }
    Handle next(H5Oopen(cur.get(), comps[k].c_str(), H5P_DEFAULT), H5Oclose);
    if (!next.valid()) fail("cannot open '", join_path(comps, k + 1), "' in '", fname, "': ", hdf5_cause());
    cur = std::move(next);
  }
  const H5I_type_t t = H5Iget_type(cur.get());
  if (want == Want::Group && t != H5I_GROUP) {
    fail("'", join_path(comps), "' in '", fname, "' is a ", kind_name(t), ", not a group");
  }
  if (want == Want::Dataset && t != H5I_DATASET) {
    fail("'", join_path(comps), "' in '", fname, "' is a ", kind_name(t), ", not a dataset");
  }
  return cur;
}

// What exists at path: 0 nothing (all existing prefixes are groups), 1 group, 2 dataset, 3 other.
// Throws when an intermediate component exists but is not a group (nothing can be created below it).
int probe(hid_t file, const std::string& fname, const std::vector<std::string>& comps) {
  Handle cur(H5Oopen(file, "/", H5P_DEFAULT), H5Oclose);
  for (std::size_t k = 0; k < comps.size(); ++k) {
    if (H5Iget_type(cur.get()) != H5I_GROUP) {
      fail("'", join_path(comps, k), "' in '", fname, "' is a dataset, so '", join_path(comps),
           "' cannot be created below it");
    }
    if (H5Lexists(cur.get(), comps[k].c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return 0;
    }
    Handle next(H5Oopen(cur.get(), comps[k].c_str(), H5P_DEFAULT), H5Oclose);
    if (!next.valid()) fail("cannot open '", join_path(comps, k + 1), "' in '", fname, "': ", hdf5_cause());
    cur = std::move(next);
  }
  const H5I_type_t t = H5Iget_type(cur.get());
  return t == H5I_GROUP ? 1 : (t == H5I_DATASET ? 2 : 3);
}

// Dataset dtype from its file type.
DType dataset_dtype(hid_t ds, const std::string& fname, const std::string& path) {
  Handle t(H5Dget_type(ds), H5Tclose);
  const H5T_class_t c = H5Tget_class(t.get());
  const std::size_t size = H5Tget_size(t.get());
  if (c == H5T_FLOAT && size == 4) return DType::F32;
  if (c == H5T_FLOAT && size == 8) return DType::F64;
  if (c == H5T_INTEGER && size == 4 && H5Tget_sign(t.get()) == H5T_SGN_2) return DType::I32;
  fail("dataset '", path, "' in '", fname, "' has element type ", class_name(c), " of ", size,
       " bytes; H5File reads f32, f64 and i32 datasets");
}

// ---- file checks done once (on rank 0) before HDF5 opens the file -------------------------------------

constexpr char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};  // HDF5 spec, "Superblock"

// "" when path looks like an HDF5 file; otherwise why not. The superblock signature sits at offset 0
// or, after a user block, at 512, 1024, 2048, ... (HDF5 File Format Specification, section II.A).
std::string check_existing(const std::string& path, bool write) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::exists(st)) return cat("cannot open '", path, "': the file does not exist (check the path)");
  if (fs::is_directory(st)) return cat("cannot open '", path, "': it is a directory, not an HDF5 file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return cat("cannot open '", path, "': the file exists but cannot be read (check permissions)");
  if (write && ::access(path.c_str(), W_OK) != 0) {
    return cat("cannot open '", path, "' for writing: the file is not writable (check permissions)");
  }
  const auto size = fs::file_size(path, ec);
  if (ec) return cat("cannot open '", path, "': cannot determine its size: ", ec.message());
  for (std::uintmax_t off = 0; off + sizeof kSignature <= size; off = (off == 0 ? 512 : off * 2)) {
    char buf[sizeof kSignature] = {};
    in.seekg(static_cast<std::streamoff>(off));
    if (!in.read(buf, sizeof buf)) break;
    if (std::memcmp(buf, kSignature, sizeof buf) == 0) return {};
  }
  return cat("cannot open '", path, "': not an HDF5 file (", size,
             " bytes, no HDF5 signature found); was it written by quopt?");
}

std::string check_creatable(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) {
    return cat("cannot create '", path, "': directory '", dir.string(), "' does not exist; create it first");
  }
  if (fs::is_directory(p, ec)) return cat("cannot create '", path, "': a directory of that name exists");
  return {};
}

void bcast_string(std::string& s, int root, MPI_Comm comm) {
  long long n = static_cast<long long>(s.size());
  MPI_Bcast(&n, 1, MPI_LONG_LONG, root, comm);
  s.resize(static_cast<std::size_t>(n));
  if (n > 0) MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, root, comm);
}

constexpr int kCreate = 0, kRead = 1, kReadWrite = 2;

}  // namespace

// ---- lifetime ------------------------------------------------------------------------------------------

H5File H5File::create(const std::string& path, MPI_Comm comm) {
  return open_impl(path, comm, kCreate);
}
H5File H5File::open_read(const std::string& path, MPI_Comm comm) {
  return open_impl(path, comm, kRead);
}
H5File H5File::open_rw(const std::string& path, MPI_Comm comm) {
  return open_impl(path, comm, kReadWrite);
}

H5File H5File::open_impl(const std::string& path, MPI_Comm comm, int how) {
  silence_hdf5();
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  // One rank inspects the file system and all ranks agree on the verdict, so either every rank
  // enters the collective H5Fopen/H5Fcreate or none does.
  std::string err;
  if (rank == 0) err = how == kCreate ? check_creatable(path) : check_existing(path, how == kReadWrite);
  bcast_string(err, 0, comm);
  if (!err.empty()) throw Error(err);

  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL) < 0) {
    fail("cannot set up MPI-IO access for '", path, "': ", hdf5_cause());
  }
  hid_t f = -1;
  if (how == kCreate) {
    f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
    if (f < 0) fail("cannot create HDF5 file '", path, "': ", hdf5_cause(), free_space_note(path));
  } else {
    f = H5Fopen(path.c_str(), how == kRead ? H5F_ACC_RDONLY : H5F_ACC_RDWR, fapl.get());
    if (f < 0) {
      const std::string cause = hdf5_cause();
      if (cause.find("truncated") != std::string::npos) {
        fail("cannot open '", path,
             "': the HDF5 file is truncated (shorter than its superblock says); it was ",
             "not closed properly (a crash while writing?) or is still being copied. HDF5: ", cause);
      }
      fail("cannot open HDF5 file '", path, "' ", how == kRead ? "for reading" : "for writing",
           ": the file is damaged or not accessible. HDF5: ", cause);
    }
  }
  H5File h;
  h.file_ = f;
  h.path_ = path;
  h.mode_ = how == kRead ? Mode::ReadOnly : Mode::ReadWrite;
  h.rank_ = rank;
  h.size_ = size;
  MPI_Comm_dup(comm, &h.comm_);  // H5File's own consistency checks never mix with the caller's messages
  return h;
}

H5File::H5File(H5File&& o) noexcept
    : file_(std::exchange(o.file_, -1)),
      comm_(std::exchange(o.comm_, MPI_COMM_NULL)),
      path_(std::move(o.path_)),
      mode_(o.mode_),
      rank_(o.rank_),
      size_(o.size_),
      writeback_fd_(std::exchange(o.writeback_fd_, -1)),
      unsynced_bytes_(o.unsynced_bytes_) {}

H5File& H5File::operator=(H5File&& o) noexcept {
  if (this != &o) {
    release();
    file_ = std::exchange(o.file_, -1);
    comm_ = std::exchange(o.comm_, MPI_COMM_NULL);
    path_ = std::move(o.path_);
    mode_ = o.mode_;
    rank_ = o.rank_;
    size_ = o.size_;
    writeback_fd_ = std::exchange(o.writeback_fd_, -1);
    unsynced_bytes_ = o.unsynced_bytes_;
  }
  return *this;
}

H5File::~H5File() {
  release();
}

void H5File::release() noexcept {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) {  // HDF5 closed its files when MPI finalised; nothing can be done any more
    if (writeback_fd_ >= 0) ::close(std::exchange(writeback_fd_, -1));
    file_ = -1;
    comm_ = MPI_COMM_NULL;
    return;
  }
  try {
    close();
  } catch (const std::exception& e) {
    log_warn(e.what());
  }
}

namespace {
bool g_library_damaged = false;
}  // namespace

bool H5File::library_damaged() {
  return g_library_damaged;
}

void H5File::close() {
  if (writeback_fd_ >= 0) ::close(std::exchange(writeback_fd_, -1));
  unsynced_bytes_ = 0;
  if (file_ >= 0) {
    const auto id = static_cast<hid_t>(file_);
    const herr_t st = H5Fclose(id);
    file_ = -1;
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    if (st < 0) {
      const std::string cause = hdf5_cause();
      // HDF5 1.10.8: a failed close leaves the identifier registered but its object freed.
      if (H5Iis_valid(id) > 0) g_library_damaged = true;
      H5Eclear2(H5E_DEFAULT);
      fail("error closing HDF5 file '", path_, "' (data may be incomplete): ", cause, free_space_note(path_));
    }
  }
}

void H5File::discard() noexcept {
  if (file_ < 0) return;
  const std::string path = path_;
  // close() frees comm_; a duplicate outlives it for the final barrier.
  MPI_Comm comm = MPI_COMM_NULL;
  if (comm_ != MPI_COMM_NULL) MPI_Comm_dup(comm_, &comm);
  if (rank_ == 0 && ::truncate(path.c_str(), 0) != 0)
    log_warn("cannot truncate ", path, ": ", std::strerror(errno));
  if (comm != MPI_COMM_NULL) MPI_Barrier(comm);
  try {
    close();
  } catch (const std::exception&) {
    // Expected on this path (the write that failed may fail again); the file is removed below.
  }
  if (rank_ == 0) {
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) log_warn("cannot remove the incomplete file ", path, ": ", ec.message());
  }
  if (comm != MPI_COMM_NULL) {  // no rank returns before the file is gone
    MPI_Barrier(comm);
    MPI_Comm_free(&comm);
  }
}

void H5File::flush() {
  require_open("flush");
  if (H5Fflush(static_cast<hid_t>(file_), H5F_SCOPE_GLOBAL) < 0) {
    fail("cannot flush HDF5 file '", path_, "': ", hdf5_cause(), free_space_note(path_));
  }
}

void H5File::require_open(const char* op) const {
  if (file_ < 0) fail("H5File::", op, ": no file is open (it was closed or never opened)");
}

void H5File::require_writable(const char* op) const {
  require_open(op);
  if (mode_ != Mode::ReadWrite) {
    fail("H5File::", op, ": '", path_, "' was opened read-only; open it with H5File::open_rw or create it");
  }
}

void H5File::agree(const char* op, const std::string& args, const std::string& local_error) const {
  if (size_ == 1) {
    if (!local_error.empty()) throw Error(local_error);
    return;
  }
  const std::uint64_t h = fnv1a64(args);
  // One reduction finds both the smallest and largest hash (max h = ~min ~h) and the first failing rank.
  std::array<std::uint64_t, 3> v = {h, ~h,
                                    local_error.empty() ? std::uint64_t{UINT64_MAX} : std::uint64_t(rank_)};
  MPI_Allreduce(MPI_IN_PLACE, v.data(), 3, MPI_UINT64_T, MPI_MIN, comm_);
  if (v[2] != UINT64_MAX) {
    const int bad = static_cast<int>(v[2]);
    std::string msg = local_error;
    bcast_string(msg, bad, comm_);
    if (bad == rank_) throw Error(msg);
    fail(msg, " [reported by rank ", bad, " during the collective H5File::", op, "]");
  }
  if (v[0] != h || ~v[1] != h) {
    fail("H5File::", op, " on '", path_, "' was called with different arguments on different ranks (rank ",
         rank_, ": ", args.substr(0, 200),
         "); collective HDF5 operations need identical arguments on every rank");
  }
}

// ---- structure -----------------------------------------------------------------------------------------

void H5File::create_group(const std::string& path) {
  int what = 0;
  std::vector<std::string> comps;
  const std::string err = capture([&] {
    require_writable("create_group");
    comps = split_path(path, path_);
    what = probe(file_, path_, comps);
    if (what >= 2)
      fail("cannot create group '", join_path(comps), "' in '", path_, "': a dataset of that name exists");
  });
  agree("create_group", cat("create_group ", path), err);
  if (what == 1) return;  // already there (the root included)
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle g(H5Gcreate2(file_, join_path(comps).c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g.valid()) fail("cannot create group '", join_path(comps), "' in '", path_, "': ", hdf5_cause());
}

void H5File::create_dataset(const std::string& path, const Shape& shape, DType dtype) {
  create_datasets({{path, shape, dtype}});
}

void H5File::create_datasets(const std::vector<DatasetSpec>& specs) {
  std::vector<std::string> names;  // each spec's normalised path
  const std::string err = capture([&] {
    require_writable("create_dataset");
    for (const auto& s : specs) {
      const auto comps = split_path(s.path, path_);
      if (comps.empty()) fail("cannot create a dataset at the root of '", path_, "'; give it a name");
      names.push_back(join_path(comps));
      check_storable(s.dtype, cat("cannot create dataset '", names.back(), "' in '", path_, "'"));
      for (auto d : s.shape) {
        if (d < 0)
          fail("cannot create dataset '", names.back(), "' in '", path_, "': shape ", shape_str(s.shape),
               " has a negative dimension");
      }
      if (probe(file_, path_, comps) != 0) {
        fail("cannot create dataset '", names.back(), "' in '", path_,
             "': the name exists already (datasets are written once; use a new name or a new file)");
      }
    }
  });
  std::string args = "create_dataset";
  for (const auto& s : specs) args += cat(" ", s.path, " ", shape_str(s.shape), " ", dtype_name(s.dtype));
  agree("create_dataset", args, err);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const DatasetSpec& s = specs[i];
    Handle space = make_space(s.shape);
    Handle ds(H5Dcreate2(file_, names[i].c_str(), file_type(s.dtype), space.get(), lcpl.get(), H5P_DEFAULT,
                         H5P_DEFAULT),
              H5Dclose);
    if (!ds.valid()) {
      fail("cannot create dataset '", names[i], "' ", dtype_name(s.dtype), shape_str(s.shape), " in '", path_,
           "': ", hdf5_cause(), free_space_note(path_));
    }
  }
}

void H5File::remove(const std::string& path) {
  std::vector<std::string> comps;
  const std::string err = capture([&] {
    require_writable("remove");
    comps = split_path(path, path_);
    if (comps.empty()) fail("cannot remove the root group of '", path_, "'; remove its members instead");
    if (probe(file_, path_, comps) == 0)
      fail("cannot remove '", join_path(comps), "' from '", path_,
           "': it does not exist (check with exists())");
  });
  agree("remove", cat("remove ", path), err);
  if (H5Ldelete(file_, join_path(comps).c_str(), H5P_DEFAULT) < 0)
    fail("cannot remove '", join_path(comps), "' from '", path_, "': ", hdf5_cause());
}

// ---- attributes ----------------------------------------------------------------------------------------

namespace {
enum AttrKind : std::int64_t { kAttrInt = 0, kAttrDouble = 1, kAttrString = 2 };
}

void H5File::set_attr(const std::string& path, const std::string& name, const std::string& value) {
  write_attr(path, name, kAttrString, &value, 1, true);
}

void H5File::set_attr_int64s(const std::string& path, const std::string& name,
                             const std::vector<std::int64_t>& v, bool scalar) {
  write_attr(path, name, kAttrInt, v.data(), v.size(), scalar);
}

void H5File::set_attr_doubles(const std::string& path, const std::string& name, const std::vector<double>& v,
                              bool scalar) {
  write_attr(path, name, kAttrDouble, v.data(), v.size(), scalar);
}

void H5File::write_attr(const std::string& path, const std::string& name, std::int64_t kind, const void* data,
                        std::size_t n, bool scalar) {
  const std::string* str = kind == kAttrString ? static_cast<const std::string*>(data) : nullptr;
  const std::string err = capture([&] {
    require_writable("set_attr");
    if (name.empty()) fail("set_attr on '", path, "' in '", path_, "': the attribute name is empty");
    if (str && str->find('\0') != std::string::npos) {
      fail("set_attr '", name, "' on '", path, "' in '", path_, "': the string contains a NUL byte");
    }
    open_object(file_, path_, path, Want::Any);
  });
  // Every rank must write the same value too: the value is part of what the ranks agree on.
  std::string args = cat("set_attr ", path, " ", name, " ", kind, " ", scalar, " ", n, " ");
  if (str) {
    args += *str;
  } else {
    args.append(static_cast<const char*>(data), n * 8);
  }
  agree("set_attr", args, err);

  Handle obj = open_object(file_, path_, path, Want::Any);
  if (H5Aexists(obj.get(), name.c_str()) > 0 && H5Adelete(obj.get(), name.c_str()) < 0) {
    fail("cannot replace attribute '", name, "' on '", path, "' in '", path_, "': ", hdf5_cause());
  }
  Handle space;
  if (scalar) {
    space = Handle(H5Screate(H5S_SCALAR), H5Sclose);
  } else {
    const hsize_t dim = n;
    space = Handle(H5Screate_simple(1, &dim, nullptr), H5Sclose);
  }
  Handle strtype;
  hid_t ftype = -1, mtype = -1;
  if (str) {
    strtype = Handle(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(strtype.get(), H5T_VARIABLE);
    H5Tset_cset(strtype.get(), H5T_CSET_UTF8);
    ftype = mtype = strtype.get();
  } else if (kind == kAttrInt) {
    ftype = H5T_STD_I64LE;
    mtype = H5T_NATIVE_INT64;
  } else {
    ftype = H5T_IEEE_F64LE;
    mtype = H5T_NATIVE_DOUBLE;
  }
  Handle attr(H5Acreate2(obj.get(), name.c_str(), ftype, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.valid())
    fail("cannot create attribute '", name, "' on '", path, "' in '", path_, "': ", hdf5_cause());
  const char* cstr = str ? str->c_str() : nullptr;
  const std::int64_t dummy = 0;  // HDF5 wants a non-null buffer even for zero elements
  const void* buf = str ? static_cast<const void*>(&cstr) : (n ? data : &dummy);
  if (H5Awrite(attr.get(), mtype, buf) < 0) {
    fail("cannot write attribute '", name, "' on '", path, "' in '", path_, "': ", hdf5_cause(),
         free_space_note(path_));
  }
}

namespace {

// Opens attribute name on object path; the message names what the object does have otherwise.
Handle open_attr(hid_t file, const std::string& fname, const std::string& path, const std::string& name) {
  Handle obj = open_object(file, fname, path, Want::Any);
  if (H5Aexists(obj.get(), name.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    fail("attribute '", name, "' not found on '", path.empty() ? "/" : path, "' in '", fname, "' (",
         list_hint(attribute_names(obj.get())), ")");
  }
  Handle a(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!a.valid()) fail("cannot open attribute '", name, "' on '", path, "' in '", fname, "': ", hdf5_cause());
  return a;
}

std::size_t attr_count(hid_t attr) {
  Handle space(H5Aget_space(attr), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

H5T_class_t attr_class(hid_t attr) {
  Handle t(H5Aget_type(attr), H5Tclose);
  return H5Tget_class(t.get());
}

}  // namespace

bool H5File::has_attr(const std::string& path, const std::string& name) const {
  require_open("has_attr");
  Handle obj = open_object(file_, path_, path, Want::Any);
  const htri_t ex = H5Aexists(obj.get(), name.c_str());
  if (ex < 0) fail("cannot check attribute '", name, "' on '", path, "' in '", path_, "': ", hdf5_cause());
  return ex > 0;
}

std::vector<std::string> H5File::attr_names(const std::string& path) const {
  require_open("attr_names");
  Handle obj = open_object(file_, path_, path, Want::Any);
  return attribute_names(obj.get());
}

std::string H5File::get_attr_string(const std::string& path, const std::string& name) const {
  require_open("get_attr_string");
  Handle a = open_attr(file_, path_, path, name);
  Handle ftype(H5Aget_type(a.get()), H5Tclose);
  const H5T_class_t c = H5Tget_class(ftype.get());
  if (c != H5T_STRING || attr_count(a.get()) != 1) {
    fail("attribute '", name, "' on '", path, "' in '", path_, "' is ", attr_count(a.get()), " ",
         class_name(c), " value(s), not one string");
  }
  Handle mtype(H5Tcopy(ftype.get()), H5Tclose);
  if (H5Tis_variable_str(ftype.get()) > 0) {
    char* s = nullptr;
    if (H5Aread(a.get(), mtype.get(), &s) < 0) {
      fail("cannot read attribute '", name, "' on '", path, "' in '", path_, "': ", hdf5_cause());
    }
    std::string out = s ? s : "";
    H5free_memory(s);
    return out;
  }
  // Fixed-length string (as written by other tools): read the raw bytes and drop the padding.
  std::string out(H5Tget_size(ftype.get()), '\0');
  if (!out.empty() && H5Aread(a.get(), mtype.get(), out.data()) < 0) {
    fail("cannot read attribute '", name, "' on '", path, "' in '", path_, "': ", hdf5_cause());
  }
  const auto end = out.find('\0');
  if (end != std::string::npos) out.resize(end);
  if (H5Tget_strpad(ftype.get()) == H5T_STR_SPACEPAD) {
    while (!out.empty() && out.back() == ' ') out.pop_back();
  }
  return out;
}

std::vector<std::int64_t> H5File::read_int_attr(const std::string& path, const std::string& name,
                                                bool one) const {
  require_open("get_attr_int");
  Handle a = open_attr(file_, path_, path, name);
  const H5T_class_t c = attr_class(a.get());
  const std::size_t n = attr_count(a.get());
  if (c != H5T_INTEGER || (one && n != 1)) {
    fail("attribute '", name, "' on '", path, "' in '", path_, "' is ", n, " ", class_name(c),
         " value(s), not ", one ? "one integer" : "integers");
  }
  std::vector<std::int64_t> v(n);
  if (n && H5Aread(a.get(), H5T_NATIVE_INT64, v.data()) < 0) {
    fail("cannot read attribute '", name, "' on '", path, "' in '", path_, "': ", hdf5_cause());
  }
  return v;
}

std::vector<double> H5File::read_double_attr(const std::string& path, const std::string& name,
                                             bool one) const {
  require_open("get_attr_double");
  Handle a = open_attr(file_, path_, path, name);
  const H5T_class_t c = attr_class(a.get());
  const std::size_t n = attr_count(a.get());
  if ((c != H5T_FLOAT && c != H5T_INTEGER) || (one && n != 1)) {
    fail("attribute '", name, "' on '", path, "' in '", path_, "' is ", n, " ", class_name(c),
         " value(s), not ", one ? "one number" : "numbers");
  }
  std::vector<double> v(n);
  if (n && H5Aread(a.get(), H5T_NATIVE_DOUBLE, v.data()) < 0) {
    fail("cannot read attribute '", name, "' on '", path, "' in '", path_, "': ", hdf5_cause());
  }
  return v;
}

std::int64_t H5File::get_attr_int(const std::string& path, const std::string& name) const {
  return read_int_attr(path, name, true)[0];
}
double H5File::get_attr_double(const std::string& path, const std::string& name) const {
  return read_double_attr(path, name, true)[0];
}
std::vector<std::int64_t> H5File::get_attr_ints(const std::string& path, const std::string& name) const {
  return read_int_attr(path, name, false);
}
std::vector<double> H5File::get_attr_doubles(const std::string& path, const std::string& name) const {
  return read_double_attr(path, name, false);
}

// ---- data ----------------------------------------------------------------------------------------------

void H5File::write(const std::string& path, const Tensor& t) {
  write(path, t, nullptr);
}

void H5File::write(const std::string& path, const Tensor& t, const PieceVisitor& visit) {
  require_writable("write");
  QUOPT_CHECK(t.defined(), "H5File::write '", path, "' in '", path_, "': the tensor is undefined");
  Handle ds = open_object(file_, path_, path, Want::Dataset);
  const DType dt = dataset_dtype(ds.get(), path_, path);
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  const Shape shape = space_shape(space.get());
  if (dt != t.dtype() || shape != t.shape()) {
    fail("cannot write ", t.describe(), " to dataset '", path, "' in '", path_, "': the dataset is ",
         dtype_name(dt), shape_str(shape), "; shapes and dtypes must match exactly");
  }
  if (t.numel() == 0) return;
  const Tensor h = t.is_host() ? t : t.to(Device::Host);
  const std::int64_t rows = shape.empty() ? 1 : shape[0];
  const std::size_t row_bytes = h.nbytes() / static_cast<std::size_t>(rows);
  const std::int64_t step =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(kWritePieceBytes / std::max<std::size_t>(row_bytes, 1)));
  if (!visit || step >= rows) {  // one piece: the whole dataset
    if (visit) visit(h);
    if (H5Dwrite(ds.get(), mem_type(dt), H5S_ALL, H5S_ALL, H5P_DEFAULT, h.raw()) < 0) {
      fail("cannot write dataset '", path, "' in '", path_, "': ", hdf5_cause(), free_space_note(path_));
    }
    start_writeback(h.nbytes());
    return;
  }
  Handle fspace(H5Dget_space(ds.get()), H5Sclose);
  for (std::int64_t b = 0; b < rows; b += step) {
    const std::int64_t e = std::min(rows, b + step);
    const Tensor piece = h.slice(b, e);
    visit(piece);
    select_rows(fspace.get(), shape, b, e);
    Handle mspace = make_space(piece.shape());
    if (H5Dwrite(ds.get(), mem_type(dt), mspace.get(), fspace.get(), H5P_DEFAULT, piece.raw()) < 0) {
      fail("cannot write rows [", b, ", ", e, ") of dataset '", path, "' in '", path_, "': ", hdf5_cause(),
           free_space_note(path_));
    }
    start_writeback(piece.nbytes());
  }
}

// 8 MiB: measured on ext4 (docs/benchmarks.md, checkpoint row), it takes flush()'s fsync of a 126 MB
// checkpoint from about 60 ms to 5 ms; smaller steps only add system calls.
constexpr std::size_t kWritebackBytes = std::size_t{8} << 20;

void H5File::start_writeback(std::size_t bytes_written) {
#ifdef __linux__
  unsynced_bytes_ += bytes_written;
  if (unsynced_bytes_ < kWritebackBytes) return;
  unsynced_bytes_ = 0;
  if (writeback_fd_ < 0) writeback_fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  // Advisory (it starts I/O and waits for none): a failure to write shows up in flush() and close().
  if (writeback_fd_ >= 0) ::sync_file_range(writeback_fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
  (void)bytes_written;
#endif
}

void H5File::write_collective(const std::string& path, const Tensor& slab, std::int64_t row_begin) {
  const std::int64_t rows = slab.defined() && slab.ndim() >= 1 ? slab.dim(0) : 0;
  Handle ds;
  DType dt = DType::F32;
  Shape shape;
  const std::string err = capture([&] {
    require_writable("write_collective");
    ds = open_object(file_, path_, path, Want::Dataset);
    dt = dataset_dtype(ds.get(), path_, path);
    Handle space(H5Dget_space(ds.get()), H5Sclose);
    shape = space_shape(space.get());
    const std::string where = cat("write_collective to dataset '", path, "' ", dtype_name(dt),
                                  shape_str(shape), " in '", path_, "' (rank ", rank_, ")");
    if (shape.empty()) fail(where, ": a scalar dataset has no rows; use write() from one rank");
    if (slab.defined() && rows > 0) {
      if (slab.dtype() != dt) fail(where, ": the slab is ", slab.describe(), ", the dtype differs");
      if (slab.ndim() != static_cast<int>(shape.size()) ||
          !std::equal(shape.begin() + 1, shape.end(), slab.shape().begin() + 1)) {
        fail(where, ": the slab ", slab.describe(),
             " must have the dataset's shape in every dimension but the first");
      }
    }
    if (row_begin < 0 || row_begin + rows > shape[0]) {
      fail(where, ": rows [", row_begin, ", ", row_begin + rows, ") are outside [0, ", shape[0], ")");
    }
  });
  agree("write_collective", cat("write_collective ", path), err);

  // Slabs must not overlap: overlapping collective writes leave unspecified values in the file.
  std::vector<std::int64_t> ranges(2 * static_cast<std::size_t>(size_));
  const std::array<std::int64_t, 2> mine = {row_begin, rows};
  MPI_Allgather(mine.data(), 2, MPI_INT64_T, ranges.data(), 2, MPI_INT64_T, comm_);
  std::vector<std::pair<std::int64_t, int>> order;
  for (int r = 0; r < size_; ++r) {
    if (ranges[2 * r + 1] > 0) order.emplace_back(ranges[2 * r], r);
  }
  std::sort(order.begin(), order.end());
  for (std::size_t k = 1; k < order.size(); ++k) {
    const int a = order[k - 1].second, b = order[k].second;
    if (ranges[2 * a] + ranges[2 * a + 1] > ranges[2 * b]) {
      fail("write_collective to dataset '", path, "' in '", path_, "': the rows of rank ", a, " [",
           ranges[2 * a], ", ", ranges[2 * a] + ranges[2 * a + 1], ") and rank ", b, " [", ranges[2 * b],
           ", ", ranges[2 * b] + ranges[2 * b + 1], ") overlap; each row must be written by one rank");
    }
  }

  // A dataset with no elements has no storage; HDF5 1.10 fails a collective write to it, and there is
  // nothing to write. Every rank sees the same shape, so all return here together.
  if (std::any_of(shape.begin(), shape.end(), [](std::int64_t d) { return d == 0; })) return;

  Handle fspace(H5Dget_space(ds.get()), H5Sclose);
  select_rows(fspace.get(), shape, row_begin, row_begin + rows);
  Shape mshape = shape;
  mshape[0] = rows;
  Handle mspace = make_space(mshape);
  if (rows == 0) H5Sselect_none(mspace.get());
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  H5Pset_dxpl_mpio(dxpl.get(), H5FD_MPIO_COLLECTIVE);
  Tensor h;
  const std::int64_t dummy = 0;
  const void* buf = &dummy;
  if (rows > 0) {
    h = slab.is_host() ? slab : slab.to(Device::Host);
    buf = h.raw();
  }
  if (H5Dwrite(ds.get(), mem_type(dt), mspace.get(), fspace.get(), dxpl.get(), buf) < 0) {
    fail("collective write of dataset '", path, "' in '", path_, "' failed on rank ", rank_, ": ",
         hdf5_cause());
  }
}

void H5File::write_tensor(const std::string& path, const Tensor& t, int writer_rank) {
  const std::string err = capture([&] {
    if (writer_rank < 0 || writer_rank >= size_) {
      fail("write_tensor '", path, "' in '", path_, "': writer_rank ", writer_rank, " is not in [0, ", size_,
           ")");
    }
    QUOPT_CHECK(t.defined(), "write_tensor '", path, "' in '", path_, "': the tensor is undefined");
  });
  agree("write_tensor", cat("write_tensor ", path, " ", writer_rank), err);
  create_dataset(path, t.shape(), t.dtype());
  if (rank_ == writer_rank) write(path, t);
}

void H5File::read_dataset(const std::string& path, Tensor& dst, std::int64_t row_begin, std::int64_t row_end,
                          bool rows) const {
  Handle ds = open_object(file_, path_, path, Want::Dataset);
  const DType dt = dataset_dtype(ds.get(), path_, path);
  Handle fspace(H5Dget_space(ds.get()), H5Sclose);
  const Shape shape = space_shape(fspace.get());
  Shape want = shape;
  if (rows) {
    if (shape.empty()) fail("cannot read rows of scalar dataset '", path, "' in '", path_, "'");
    if (row_begin < 0 || row_begin > row_end || row_end > shape[0]) {
      fail("cannot read rows [", row_begin, ", ", row_end, ") of dataset '", path, "' ", dtype_name(dt),
           shape_str(shape), " in '", path_, "': valid rows are [0, ", shape[0], ")");
    }
    want[0] = row_end - row_begin;
    select_rows(fspace.get(), shape, row_begin, row_end);
  }
  if (!dst.defined()) dst = Tensor::empty(want, dt);
  if (dst.dtype() != dt || dst.shape() != want) {
    fail("dataset '", path, "' in '", path_, "' is ", dtype_name(dt), shape_str(shape),
         rows ? " (rows requested: " : "", rows ? shape_str(want) : "", rows ? ")" : "", " but ",
         dtype_name(dst.dtype()), shape_str(dst.shape()),
         " was expected; the file does not match this model/config");
  }
  if (dst.numel() == 0) return;
  Tensor h = dst.is_host() ? dst : Tensor::empty(want, dt);
  Handle mspace = make_space(want);
  if (H5Dread(ds.get(), mem_type(dt), rows ? mspace.get() : H5S_ALL, rows ? fspace.get() : H5S_ALL,
              H5P_DEFAULT, h.raw()) < 0) {
    fail("cannot read dataset '", path, "' in '", path_, "': ", hdf5_cause());
  }
  if (!dst.is_host()) dst.copy_from(h);
}

Tensor H5File::read(const std::string& path) const {
  require_open("read");
  Tensor t;
  read_dataset(path, t, 0, 0, false);
  return t;
}

Tensor H5File::read(const std::string& path, const Shape& expect_shape, DType expect_dtype) const {
  require_open("read");
  Tensor t = Tensor::empty(expect_shape, expect_dtype);
  read_dataset(path, t, 0, 0, false);
  return t;
}

void H5File::read_into(const std::string& path, Tensor& dst) const {
  require_open("read_into");
  QUOPT_CHECK(dst.defined(), "H5File::read_into '", path, "' in '", path_, "': the destination is undefined");
  read_dataset(path, dst, 0, 0, false);
}

Tensor H5File::read_rows(const std::string& path, std::int64_t row_begin, std::int64_t row_end) const {
  require_open("read_rows");
  Tensor t;
  read_dataset(path, t, row_begin, row_end, true);
  return t;
}

Shape H5File::shape(const std::string& path) const {
  require_open("shape");
  Handle ds = open_object(file_, path_, path, Want::Dataset);
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  return space_shape(space.get());
}

DType H5File::dtype(const std::string& path) const {
  require_open("dtype");
  Handle ds = open_object(file_, path_, path, Want::Dataset);
  return dataset_dtype(ds.get(), path_, path);
}

// ---- queries -------------------------------------------------------------------------------------------

bool H5File::exists(const std::string& path) const {
  require_open("exists");
  const auto comps = split_path(path, path_);
  Handle cur(H5Oopen(file_, "/", H5P_DEFAULT), H5Oclose);
  for (const auto& c : comps) {
    if (H5Iget_type(cur.get()) != H5I_GROUP || H5Lexists(cur.get(), c.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    cur = Handle(H5Oopen(cur.get(), c.c_str(), H5P_DEFAULT), H5Oclose);
    if (!cur.valid()) {  // e.g. a dangling soft link
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
  }
  return true;
}

bool H5File::is_group(const std::string& path) const {
  return exists(path) && probe(file_, path_, split_path(path, path_)) == 1;
}

bool H5File::is_dataset(const std::string& path) const {
  return exists(path) && probe(file_, path_, split_path(path, path_)) == 2;
}

std::vector<std::string> H5File::list(const std::string& group) const {
  require_open("list");
  Handle g = open_object(file_, path_, group, Want::Group);
  return link_names(g.get());
}

}  // namespace quopt
