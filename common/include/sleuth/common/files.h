// File helpers built on one RAII fd wrapper. Every fd sleuth opens is
// O_CLOEXEC so a host's exec never inherits one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/owned_fd.h"
#include "sleuth/common/status.h"

namespace sleuth {

// Owns one file descriptor. Thread-compatible.
//
// In a host, another thread may close our descriptor (a daemon's
// close_range at start) and reuse its number for a file of its own while we
// hold it: ScopedFd records what the descriptor referred to when it was
// taken (one fstat) and closes it only if it still refers to that; reads
// through the helpers below check it first too (StillOurs()). See
// owned_fd.h for what the check can and cannot tell.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) { reset(fd); }
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.fd_), identity_(other.identity_) {
    other.fd_ = -1;
  }
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.fd_;
      identity_ = other.identity_;
      other.fd_ = -1;
    }
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Whether the number still refers to the object it was taken for.
  bool StillOurs() const { return fd_ >= 0 && identity_.Matches(fd_); }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the current descriptor (if still ours; else only forgets it) and
  // takes `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
  FdIdentity identity_;
};

// Calls fn(name, d_type) for each entry of the directory open at `dir`
// except "." and "..", reading it with getdents64 and checking before each
// read that `dir` is still ours (a DIR* would be closed by closedir()
// whatever the number has become). `what` names the directory in errors.
[[nodiscard]] Status ForEachDirEntry(const ScopedFd& dir, const std::string& what,
                                     const std::function<void(std::string_view, unsigned char)>& fn);

// Opens `path` with O_CLOEXEC added to `flags`.
Result<ScopedFd> OpenFile(const std::string& path, int flags, mode_t mode = 0);

// Reads a whole file (procfs-safe: loops until EOF, no size from stat).
// Fails with kNotFound if it does not exist, and with kIo past max_bytes.
Result<std::string> ReadFile(const std::string& path, size_t max_bytes = 64 << 20);

// Writes `data` to `path` through a temporary file in the same directory,
// fsyncs it and renames it into place, so readers see all or nothing.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0600);

// Creates `path` and its missing parents with `mode` (like mkdir -p).
Status MakeDirs(const std::string& path, mode_t mode = 0700);

// Names of the entries of a directory (no "." or ".."), unsorted.
Result<std::vector<std::string>> ListDir(const std::string& path);

}  // namespace sleuth
