#include "io/run_file_update.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "core/log.hpp"
#include "io/disk_space.hpp"
#include "io/run_file.hpp"
#include "parallel/collective_error.hpp"

namespace fs = std::filesystem;

namespace quopt {

RunFileUpdate::RunFileUpdate(const std::string& run_file, MPI_Comm comm)
    : path_(run_file), tmp_(run_file + ".tmp"), comm_(comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  {
    const H5File original = H5File::open_read(path_, comm);  // a clear error for a missing or foreign file
    require_run_file(original);
  }
  std::string copy_error;
  if (rank == 0) {
    std::error_code ec;
    fs::copy_file(path_, tmp_, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      copy_error =
          cat("cannot copy ", path_, " to ", tmp_, " to update it: ", ec.message(), free_space_note(path_),
              " (an update needs room for a second copy of the run file); ", path_, " is unchanged");
      fs::remove(tmp_, ec);
    }
  }
  throw_if_any(comm, copy_error);
  file_ = H5File::open_rw(tmp_, comm);
}

RunFileUpdate::~RunFileUpdate() {
  if (committed_ || !file_.is_open()) return;
  file_.discard();
  if (file_.rank() == 0) log_warn(path_, " is unchanged: its update was abandoned (", tmp_, " removed)");
}

void RunFileUpdate::commit() {
  try {
    file_.close();
  } catch (const Error& e) {
    file_.discard();
    committed_ = true;
    fail(e.what(), ". ", path_, " is unchanged (", tmp_, " removed)");
  }
  committed_ = true;
  rename_completed(comm_, tmp_, path_);
}

}  // namespace quopt
