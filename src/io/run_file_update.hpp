#pragma once
// Changing an existing run file (quopt ptq, eval, analyze add /eval, /quant/<scheme>, /analysis/<scheme>)
// without ever leaving a damaged one: the changes go to a copy, "run.h5.tmp", which replaces run.h5 by a
// rename only once it is complete and closed. A failure on the way (a full disk, a crash, an error in
// the command) leaves run.h5 as it was; the copy is removed (or, after a crash, overwritten by the next
// update). The caller holds the run directory's lock (io/run_lock.hpp), so no one else writes run.h5.
#include <mpi.h>

#include <string>

#include "io/h5file.hpp"

namespace quopt {

class RunFileUpdate {
 public:
  // Collective over comm: copies run_file to "<run_file>.tmp" (rank 0) and opens the copy read-write.
  // Throws naming the file and the cause (missing, not a run file, no space for the copy).
  RunFileUpdate(const std::string& run_file, MPI_Comm comm);
  RunFileUpdate(const RunFileUpdate&) = delete;
  RunFileUpdate& operator=(const RunFileUpdate&) = delete;
  // Without commit(): the copy is discarded and run_file is unchanged.
  ~RunFileUpdate();

  H5File& file() { return file_; }
  // Collective: closes the copy and renames it over run_file.
  void commit();

 private:
  std::string path_, tmp_;
  MPI_Comm comm_;
  H5File file_;
  bool committed_ = false;
};

}  // namespace quopt
