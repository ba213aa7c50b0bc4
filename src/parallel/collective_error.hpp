#pragma once
// Turning an error that only some ranks saw into the same quopt::Error on every rank, so that all
// ranks leave a collective phase together (and unwind through collective cleanup together) instead of
// some waiting forever for the others.
#include <mpi.h>

#include <string>

#include "core/error.hpp"

namespace quopt {

// Thrown by throw_if_any: every rank of the communicator throws it with the same message at the same
// point, so the ranks can end together (main() prints it once, on rank 0, and needs no MPI_Abort).
class CollectiveError : public Error {
 public:
  explicit CollectiveError(const std::string& what) : Error(what) {}
};

// Collective over comm. Every rank passes its own error message ("" for none); when any is non-empty,
// every rank throws CollectiveError with the message of the lowest failing rank, prefixed by "rank R: "
// when comm has more than one rank.
void throw_if_any(MPI_Comm comm, const std::string& local_error);
// The same agreement without throwing: the message every rank would throw, or "" when no rank failed.
std::string first_error(MPI_Comm comm, const std::string& local_error);

// Collective: rank `root`'s string on every rank.
std::string bcast_string(MPI_Comm comm, const std::string& s, int root = 0);

}  // namespace quopt
