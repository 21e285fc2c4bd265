#include "sleuth/common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <cstring>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace sleuth {

void ScopedFd::reset(int fd) {
  // close() must not be retried on EINTR on Linux: the fd is gone anyway.
  // A number someone else has taken over is not ours to close.
  if (fd_ >= 0 && identity_.Matches(fd_)) ::close(fd_);
  fd_ = fd;
  identity_ = FdIdentity{};
  if (fd_ >= 0 && !FdIdentity::Of(fd_, &identity_)) fd_ = -1;  // already closed
}

Result<ScopedFd> OpenFile(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus("cannot open " + path, errno);
  return ScopedFd(fd);
}

Result<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  SLEUTH_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_RDONLY));
  std::string out;
  char buf[16384];
  for (;;) {
    if (!fd.StillOurs())
      return IoError("cannot read " + path + ": its descriptor was closed or taken by another thread");
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read " + path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes)
      return IoError("cannot read " + path + ": larger than " + std::to_string(max_bytes) + " bytes");
  }
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    SLEUTH_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        Status s = ErrnoStatus("cannot write " + tmp, errno);
        ::unlink(tmp.c_str());
        return s;
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
      Status s = ErrnoStatus("cannot fsync " + tmp, errno);
      ::unlink(tmp.c_str());
      return s;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = ErrnoStatus("cannot rename " + tmp + " to " + path, errno);
    ::unlink(tmp.c_str());
    return s;
  }
  return Status::Ok();
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return InvalidArgument("empty directory path");
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST)
      return ErrnoStatus("cannot create directory " + partial, errno);
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("cannot stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(path + " exists and is not a directory");
  return Status::Ok();
}

Status ForEachDirEntry(const ScopedFd& dir, const std::string& what,
                       const std::function<void(std::string_view, unsigned char)>& fn) {
  alignas(8) char buf[16384];
  for (;;) {
    if (!dir.StillOurs())
      return IoError("cannot list " + what + ": its descriptor was closed or taken by another thread");
    long n = ::syscall(SYS_getdents64, dir.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot list " + what, errno);
    }
    if (n == 0) return Status::Ok();
    for (long pos = 0; pos < n;) {
      // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[]
      unsigned short reclen;
      std::memcpy(&reclen, buf + pos + 16, sizeof reclen);
      const unsigned char type = static_cast<unsigned char>(buf[pos + 18]);
      std::string_view name(buf + pos + 19);
      if (name != "." && name != "..") fn(name, type);
      pos += reclen;
    }
  }
}

Result<std::vector<std::string>> ListDir(const std::string& path) {
  SLEUTH_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_RDONLY | O_DIRECTORY));
  std::vector<std::string> names;
  SLEUTH_RETURN_IF_ERROR(ForEachDirEntry(
      fd, path, [&](std::string_view name, unsigned char) { names.emplace_back(name); }));
  return names;
}

}  // namespace sleuth
