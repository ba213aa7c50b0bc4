#include "parallel/collective_error.hpp"

#include "core/error.hpp"

namespace quopt {

std::string bcast_string(MPI_Comm comm, const std::string& s, int root) {
  std::string out = s;
  long long n = static_cast<long long>(out.size());
  MPI_Bcast(&n, 1, MPI_LONG_LONG, root, comm);
  out.resize(static_cast<std::size_t>(n));
  if (n > 0) MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, root, comm);
  return out;
}

std::string first_error(MPI_Comm comm, const std::string& local_error) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int first = local_error.empty() ? size : rank;
  MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return {};
  const std::string msg = bcast_string(comm, local_error, first);
  return size > 1 ? cat("rank ", first, ": ", msg) : msg;
}

void throw_if_any(MPI_Comm comm, const std::string& local_error) {
  std::string msg = first_error(comm, local_error);
  if (!msg.empty()) throw CollectiveError(msg);
}

}  // namespace quopt
