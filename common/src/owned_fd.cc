#include "sleuth/common/owned_fd.h"

#include <sys/stat.h>
#include <unistd.h>

namespace sleuth {

bool FdIdentity::Of(int fd, FdIdentity* out) {
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) return false;
  out->dev = st.st_dev;
  out->ino = st.st_ino;
  out->type = st.st_mode & S_IFMT;
  return true;
}

bool FdIdentity::Matches(int fd) const {
  FdIdentity now;
  return Of(fd, &now) && now.dev == dev && now.ino == ino && now.type == type;
}

OwnedFd::OwnedFd(int fd) {
  if (FdIdentity::Of(fd, &identity_)) fd_ = fd;
}

OwnedFd::OwnedFd(OwnedFd&& other) noexcept : fd_(other.fd_), identity_(other.identity_) {
  other.fd_ = -1;
}

OwnedFd& OwnedFd::operator=(OwnedFd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.fd_;
    identity_ = other.identity_;
    other.fd_ = -1;
  }
  return *this;
}

bool OwnedFd::reset() {
  if (fd_ < 0) return true;
  bool ours = identity_.Matches(fd_);
  // close() is not retried on EINTR on Linux: the number is released anyway.
  if (ours) ::close(fd_);
  fd_ = -1;
  return ours;
}

}  // namespace sleuth
