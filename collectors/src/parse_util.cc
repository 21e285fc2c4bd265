#include "parse_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "sleuth/common/files.h"

namespace sleuth::collectors::internal {

int ReadFileInto(const char* path, std::string* out) {
  int fd;
  do {
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  ScopedFd owned(fd);
  // procfs files report size 0, so read until EOF into the buffer's whole
  // capacity, growing it only when a file no longer fits.
  if (out->capacity() < 4096) out->reserve(4096);
  out->resize(out->capacity());
  size_t used = 0;
  while (true) {
    if (used == out->size()) out->resize(out->size() * 2);
    // A host that closed our descriptor and reopened the number must not
    // have its file read (and its offset moved) by us.
    if (!owned.StillOurs()) {
      out->clear();
      return EBADF;
    }
    ssize_t n = ::read(fd, out->data() + used, out->size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      out->clear();
      return err;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  out->resize(used);
  return 0;
}

}  // namespace sleuth::collectors::internal
