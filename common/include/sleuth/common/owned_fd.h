// A descriptor that can tell whether it is still its creator's.
//
// Code that runs inside a host process does not own the fd table: a daemon
// that calls close_range(3, ~0U, 0) at start closes our descriptors behind
// our back, and its next open() takes the same numbers. Writing to, polling,
// reading or closing such a number then hits the host's file. OwnedFd records
// what the descriptor referred to when it was created and checks it before
// every use; when it no longer matches, the owner forgets the number without
// closing it and re-creates what it needs.
//
// The test is one fstat(2): (st_dev, st_ino) names an open object uniquely
// while it is alive, since the kernel does not hand out the inode number of
// a live pipe, socket or file again. Cheap (no path lookup, no allocation)
// and async-signal-safe. It is not a valid test for anon-inode descriptors
// (eventfd, timerfd, signalfd, epoll): every one of a kind shares a single
// inode, so another eventfd on the same number would pass. Use a pipe or a
// socket where a wake-up descriptor must be checked, as the uploader does.
//
// The check and the use that follows are two system calls: a host that
// closes and reopens the number between them still wins that race. The
// window is a few instructions; the check turns "always" into "almost never".
#pragma once

#include <sys/types.h>

namespace sleuth {

// What an fd referred to when it was recorded.
struct FdIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  mode_t type = 0;  // the S_IFMT bits

  // The identity of `fd` now; false if fstat fails (the number is closed).
  // async-signal-safe.
  static bool Of(int fd, FdIdentity* out);
  // Whether `fd` still refers to this object. async-signal-safe.
  bool Matches(int fd) const;
};

// Owns one descriptor, remembering its identity. Thread-compatible; the
// const checks are async-signal-safe.
class OwnedFd {
 public:
  OwnedFd() = default;
  // Takes `fd` (which must be open) and records its identity. If fstat
  // fails the fd is left alone and the OwnedFd is empty.
  explicit OwnedFd(int fd);
  OwnedFd(OwnedFd&& other) noexcept;
  OwnedFd& operator=(OwnedFd&& other) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  // Closes the fd only if it is still ours.
  ~OwnedFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  const FdIdentity& identity() const { return identity_; }

  // Whether the number still refers to what we created. False when empty.
  bool StillOurs() const { return fd_ >= 0 && identity_.Matches(fd_); }

  // Closes the fd if it is still ours, else only forgets it. Returns false
  // when it had been taken (closed or reused by someone else).
  bool reset();
  // Forgets the fd without closing it: for a number someone else now holds.
  void Forget() { fd_ = -1; }
  // Gives the fd up to the caller, unchecked.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
  FdIdentity identity_;
};

}  // namespace sleuth
