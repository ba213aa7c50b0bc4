#pragma once
// One writer per run directory. quopt train, ptq, eval and analyze take an exclusive lock on
// DIR/quopt.lock for as long as they run, so two of them never write the same metrics.jsonl,
// checkpoints or run.h5 (ptq/eval/analyze: DIR/run.h5). A second one stops at once with an error that
// names the holder (host, pid, rank count, start time and command line, which the holder writes into
// the lock file).
//
// The lock is flock(2) on the lock file, taken by rank 0 of the job. The kernel releases it when the
// holding process ends, however it ends (exit, crash, SIGKILL), so a lock never outlives its process:
// there are no stale locks to clean up, and the file itself stays behind harmlessly. On NFS, Linux
// emulates flock with byte-range locks that the server arbitrates, so it works across nodes (unless the
// mount has local_lock=flock/all); on Lustre it needs the `flock` mount option (`localflock` only locks
// within one node). Where the file system has no locks at all (flock fails with ENOLCK, ENOSYS,
// EOPNOTSUPP) quopt warns and runs unlocked. docs/reliability.md has the details.
#include <mpi.h>

#include <string>

namespace quopt {

class RunLock {
 public:
  RunLock() = default;
  RunLock(RunLock&& o) noexcept;
  RunLock& operator=(RunLock&& o) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  ~RunLock();  // releases the lock

  // Collective over comm. Locks `dir` for `command` (the command line, shown to anyone who finds the
  // directory locked); throws quopt::Error on every rank when another process holds the lock. A missing
  // `dir` is created (training) or, with create = false, left alone: there is nothing to protect, and the
  // command reports the missing run itself.
  static RunLock acquire(const std::string& dir, const std::string& command, MPI_Comm comm,
                         bool create = true);
  // Not collective: the same for one process.
  static RunLock acquire_local(const std::string& dir, const std::string& command, int world_size = 1,
                               bool create = true);

  bool held() const { return fd_ >= 0; }
  static std::string lock_path(const std::string& dir);

 private:
  int fd_ = -1;
};

}  // namespace quopt
