#include "io/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/error.hpp"
#include "core/log.hpp"
#include "parallel/collective_error.hpp"

namespace quopt {

namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

std::string now_text() {
  const std::time_t t = std::time(nullptr);
  char buf[64] = {};
  std::tm tm{};
  localtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", &tm);
  return buf;
}

// What the holder wrote into the lock file, on one line.
std::string holder_of(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? "a process that has not written its name yet" : text;
}

}  // namespace

std::string RunLock::lock_path(const std::string& dir) {
  return dir + "/quopt.lock";
}

RunLock::RunLock(RunLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

RunLock& RunLock::operator=(RunLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // Clear the holder's name while still holding the lock, then release it by closing the descriptor.
  if (::ftruncate(fd_, 0) != 0) { /* a stale name is harmless: the next holder overwrites it */
  }
  ::close(fd_);
}

RunLock RunLock::acquire_local(const std::string& dir, const std::string& command, int world_size,
                               bool create) {
  std::error_code ec;
  if (!create && !std::filesystem::is_directory(dir, ec)) return RunLock();
  std::filesystem::create_directories(dir, ec);
  QUOPT_CHECK(!ec, "cannot create the run directory ", dir, ": ", ec.message());
  const std::string path = lock_path(dir);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  QUOPT_CHECK(fd >= 0, "cannot open the lock file ", path, ": ", std::strerror(errno),
              "; check that the run directory is writable");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);  // not ours: leave the holder's name in the file
    if (err == EWOULDBLOCK) {
      fail(dir, " is in use by another quopt process: ", holder_of(path),
           ". Wait for it to finish or stop it, or use another directory; two writers would mix their "
           "files. (The lock is released when that process ends, whatever the cause.)");
    }
    if (err == ENOLCK || err == ENOSYS || err == EOPNOTSUPP || err == EINVAL) {
      log_warn("cannot lock ", path, " (", std::strerror(err),
               "): this file system does not support flock(2) (on Lustre mount with -o flock); running "
               "unlocked, so make sure no other quopt process writes to ",
               dir);
      return RunLock();
    }
    fail("cannot lock ", path, ": ", std::strerror(err));
  }
  RunLock lock;
  lock.fd_ = fd;
  const std::string info = cat("host ", host_name(), ", pid ", ::getpid(),
                               world_size > 1 ? cat(" (rank 0 of ", world_size, ")") : std::string(),
                               ", since ", now_text(), ": ", command, "\n");
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, info.data(), info.size(), 0) != static_cast<ssize_t>(info.size()))
    log_warn("cannot record the lock holder in ", path, ": ", std::strerror(errno));
  return lock;
}

RunLock RunLock::acquire(const std::string& dir, const std::string& command, MPI_Comm comm, bool create) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  RunLock lock;
  std::string err;
  if (rank == 0) {
    try {
      lock = acquire_local(dir, command, size, create);
    } catch (const Error& e) {
      err = e.what();
    }
  }
  throw_if_any(comm, err);
  return lock;
}

}  // namespace quopt
