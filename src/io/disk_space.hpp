#pragma once
// Free space on a file system, for the messages of failed writes: HDF5 and MPI-IO report a full disk
// only as "file write failed", so quopt says how much room was left where it wrote.
#include <string>

namespace quopt {

// "; the file system of DIR has 12 KB free" (for the directory holding `path`), or "" when unknown.
std::string free_space_note(const std::string& path);

}  // namespace quopt
