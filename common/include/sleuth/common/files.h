// File helpers built on one RAII fd wrapper. Every fd sleuth opens is
// O_CLOEXEC so a host's exec never inherits one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/status.h"

namespace sleuth {

// Owns one file descriptor. Thread-compatible.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

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
