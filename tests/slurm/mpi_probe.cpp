// Checks that `srun --mpi=pmix` wires MPI up: every rank reports its rank and the world size, the
// ranks agree on a sum and on the size Slurm asked for (SLURM_NTASKS), and each rank's MPI rank is the
// task id Slurm gave it (SLURM_PROCID), i.e. MPI got its identity from Slurm's PMIx server and not
// from a singleton start. Prints "mpi_probe: rank R of N ok" per rank; exits 1 on any mismatch.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

long env_long(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtol(v, nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  long local = rank + 1;
  long sum = 0;
  MPI_Allreduce(&local, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  const long expected_sum = static_cast<long>(size) * (size + 1) / 2;

  std::string problems;
  if (sum != expected_sum)
    problems += " allreduce sum " + std::to_string(sum) + " != " + std::to_string(expected_sum) + ";";
  const long ntasks = env_long("SLURM_NTASKS", -1);
  if (ntasks != size)
    problems += " SLURM_NTASKS=" + std::to_string(ntasks) + " but MPI size " + std::to_string(size) + ";";
  const long procid = env_long("SLURM_PROCID", -1);
  if (procid != rank)
    problems += " SLURM_PROCID=" + std::to_string(procid) + " but MPI rank " + std::to_string(rank) + ";";
  if (std::getenv("PMIX_RANK") == nullptr) problems += " PMIX_RANK is not set (not launched through PMIx);";

  if (problems.empty()) {
    std::printf("mpi_probe: rank %d of %d ok\n", rank, size);
  } else {
    std::printf("mpi_probe: rank %d of %d FAILED:%s\n", rank, size, problems.c_str());
  }
  std::fflush(stdout);
  int bad = problems.empty() ? 0 : 1;
  int any_bad = 0;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_bad;
}
