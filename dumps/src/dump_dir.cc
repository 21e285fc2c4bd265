#include "sleuth/dumps/dump_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <vector>

#include "sleuth/dumps/layout.h"

namespace sleuth::dumps {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
// How deep TotalBytes() looks (failed/<sink>/ is two levels down).
constexpr int kMaxCountDepth = 4;

int OpenAtRetry(int dir_fd, const char* name, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::openat(dir_fd, name, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

std::string Octal(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string FixForDumpDir(const std::string& path) {
  std::string fallback = DefaultDumpDir();
  if (path == fallback) {
    return "remove it (another user may have created it to take it over) or set "
           "agent.dump_dir (SLEUTH_AGENT_DUMP_DIR) to a directory only you can write";
  }
  return "use a directory only you can write, e.g. `mkdir -m 0700 " + fallback +
         "`, or set agent.dump_dir";
}

constexpr std::string_view kStateFix = "remove it (sleuth recreates it)";

Status Refuse(std::string message) {
  return Status(StatusCode::kPermission, std::move(message));
}

Status CheckOwnFile(const struct stat& st, const std::string& path) {
  uid_t euid = ::geteuid();
  if (!S_ISREG(st.st_mode)) return Refuse("refusing " + path + ": not a regular file");
  if (st.st_uid != euid) {
    return Refuse("refusing " + path + ": owned by uid " + std::to_string(st.st_uid) +
                  ", not by this process's uid " + std::to_string(euid) +
                  " (another user may have planted it)");
  }
  if (st.st_nlink != 1) {
    return Refuse("refusing " + path + ": it has " + std::to_string(st.st_nlink) +
                  " hard links (one may be a file sleuth must not read or change)");
  }
  return Status::Ok();
}

Status RefuseSymlink(const std::string& what, const std::string& path, bool state_dir) {
  return Refuse(what + " " + path + " is a symbolic link: another user could point it anywhere; " +
                (state_dir ? std::string(kStateFix) : FixForDumpDir(path)));
}

std::string RandomSuffix() {
  unsigned char bytes[8] = {};
  ssize_t n;
  do {
    n = ::getrandom(bytes, sizeof bytes, GRND_NONBLOCK);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof bytes)) {
    // No entropy (a seccomp filter): still unpredictable enough to make an
    // inotify race unlikely, and O_EXCL keeps it safe regardless.
    static std::atomic<uint64_t> counter{0};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mix = static_cast<uint64_t>(ts.tv_nsec) * 0x9e3779b97f4a7c15ULL ^
                   (counter.fetch_add(1) << 17) ^ static_cast<uint64_t>(ts.tv_sec);
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] ^= static_cast<unsigned char>(mix >> (8 * i));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool ValidComponent(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

uint64_t CountBytes(int dir_fd, int depth) {
  ScopedFd dir(OpenAtRetry(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return 0;
  uint64_t total = 0;
  (void)ForEachDirEntry(dir, "a dump directory", [&](std::string_view entry, unsigned char) {
    std::string name(entry);
    struct stat st;
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    if (S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_size);
    } else if (S_ISDIR(st.st_mode) && depth < kMaxCountDepth) {
      ScopedFd sub(OpenAtRetry(dir.get(), name.c_str(), kDirFlags));
      if (sub.valid()) total += CountBytes(sub.get(), depth + 1);
    }
  });
  return total;
}

}  // namespace

Status CheckPrivateDir(const struct stat& st, const std::string& what, const std::string& path,
                       uid_t euid) {
  bool state_dir = what != "dump directory";
  std::string fix = state_dir ? std::string(kStateFix) : FixForDumpDir(path);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(what + " " + path + " is not a directory");
  if (st.st_uid != euid) {
    return Refuse(what + " " + path + " is owned by uid " + std::to_string(st.st_uid) +
                  ", not by this process's uid " + std::to_string(euid) +
                  ": another user could plant files there; " + fix);
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Refuse(what + " " + path + " is writable by " +
                  ((st.st_mode & S_IWOTH) != 0 ? "others" : "its group") + " (mode " +
                  Octal(st.st_mode) + "): another user could plant files there; " + fix);
  }
  return Status::Ok();
}

uint64_t ProcessStartTicks(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  ScopedFd fd(OpenAtRetry(AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return 0;
  char buf[1024];
  ssize_t n;
  do {
    n = fd.StillOurs() ? ::read(fd.get(), buf, sizeof buf - 1) : -1;
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and ')': fields are counted
  // after the last ')'. Field 3 follows it; start time is field 22.
  std::string_view text(buf, static_cast<size_t>(n));
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return 0;
  size_t pos = close + 1;
  for (int field = 3; field <= 22; ++field) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    if (field == 22) {
      uint64_t v = 0;
      for (size_t i = pos; i < end; ++i) {
        if (text[i] < '0' || text[i] > '9') return 0;
        v = v * 10 + static_cast<uint64_t>(text[i] - '0');
      }
      return v;
    }
    pos = end;
  }
  return 0;
}

uint64_t SelfStartTicks() {
  static std::atomic<pid_t> cached_pid{0};
  static std::atomic<uint64_t> cached_ticks{0};
  pid_t pid = ::getpid();
  if (cached_pid.load(std::memory_order_acquire) == pid) {
    return cached_ticks.load(std::memory_order_relaxed);
  }
  uint64_t ticks = ProcessStartTicks(pid);
  cached_ticks.store(ticks, std::memory_order_relaxed);
  cached_pid.store(pid, std::memory_order_release);
  return ticks;
}

DumpDir::DumpDir(std::string path, ScopedFd fd) : path_(std::move(path)), fd_(std::move(fd)) {
  struct stat st;
  if (::fstat(fd_.get(), &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
}

bool DumpDir::StillOurs() const {
  struct stat st;
  return fd_.valid() && ::fstat(fd_.get(), &st) == 0 && S_ISDIR(st.st_mode) &&
         st.st_dev == dev_ && st.st_ino == ino_;
}

Result<DumpDir> DumpDir::Open(std::string_view configured, Create create) {
  std::string path = ResolveDumpDir(configured);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const std::string what = "dump directory";
  uid_t euid = ::geteuid();

  std::vector<std::string> parts;
  for (size_t start = 0; start <= path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    start = slash + 1;
  }
  int root = OpenAtRetry(AT_FDCWD, path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return ErrnoStatus("cannot open " + path, errno);
  ScopedFd cur(root);
  std::string prefix = path[0] == '/' ? "" : ".";
  if (parts.empty()) {
    struct stat st;
    if (::fstat(cur.get(), &st) != 0) return ErrnoStatus("cannot stat " + path, errno);
    SLEUTH_RETURN_IF_ERROR(CheckPrivateDir(st, what, path, euid));
    return DumpDir(path, std::move(cur));
  }
  // Walk one component at a time so that every step is checked: a missing
  // component is created 0700 by us, a symlink on the way is followed only
  // if root or we own it, and the directory itself must not be a symlink.
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    bool last = i + 1 == parts.size();
    prefix += "/" + part;
    bool created = false;
    int fd = OpenAtRetry(cur.get(), part.c_str(), kDirFlags);
    if (fd < 0 && errno == ENOENT && create == Create::kYes) {
      if (::mkdirat(cur.get(), part.c_str(), 0700) == 0) {
        created = true;
      } else if (errno != EEXIST) {
        return ErrnoStatus("cannot create directory " + prefix, errno);
      }
      fd = OpenAtRetry(cur.get(), part.c_str(), kDirFlags);
    }
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT) {
        return NotFound(last ? what + " " + path + " does not exist"
                             : "cannot open " + path + ": " + prefix + " does not exist");
      }
      if (err != ELOOP && err != ENOTDIR) return ErrnoStatus("cannot open " + prefix, err);
      struct stat lst;
      if (::fstatat(cur.get(), part.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoStatus("cannot stat " + prefix, errno);
      }
      if (!S_ISLNK(lst.st_mode)) {
        return InvalidArgument(prefix + " exists and is not a directory" +
                               (last ? "" : " (on the way to " + what + " " + path + ")"));
      }
      if (last) return RefuseSymlink(what, path, false);
      if (lst.st_uid != 0 && lst.st_uid != euid) {
        return Refuse(prefix + ", on the way to " + what + " " + path +
                      ", is a symbolic link owned by uid " + std::to_string(lst.st_uid) +
                      ": that user could point it anywhere; " + FixForDumpDir(path));
      }
      // e.g. /var/run -> /run: a link of root's or ours is followed.
      fd = OpenAtRetry(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return ErrnoStatus("cannot open " + prefix, errno);
    }
    ScopedFd next(fd);
    if (created && ::fchmod(next.get(), 0700) != 0) {  // the umask may have taken bits
      return ErrnoStatus("cannot set the mode of " + prefix, errno);
    }
    if (created || last) {
      struct stat st;
      if (::fstat(next.get(), &st) != 0) return ErrnoStatus("cannot stat " + prefix, errno);
      SLEUTH_RETURN_IF_ERROR(CheckPrivateDir(st, last ? what : "directory", prefix, euid));
    }
    cur = std::move(next);
  }
  return DumpDir(path, std::move(cur));
}

Result<DumpDir> DumpDir::Subdir(std::string_view name_view, Create create) const {
  std::string name(name_view);
  std::string path = PathOf(name);
  const std::string what = "state directory";
  if (!ValidComponent(name)) return InvalidArgument("invalid state directory name \"" + name + "\"");
  bool created = false;
  int fd = OpenAtRetry(fd_.get(), name.c_str(), kDirFlags);
  if (fd < 0 && errno == ENOENT && create == Create::kYes) {
    if (::mkdirat(fd_.get(), name.c_str(), 0700) == 0) {
      created = true;
    } else if (errno != EEXIST) {
      return ErrnoStatus("cannot create directory " + path, errno);
    }
    fd = OpenAtRetry(fd_.get(), name.c_str(), kDirFlags);
  }
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound(what + " " + path + " does not exist");
    if (err != ELOOP && err != ENOTDIR) return ErrnoStatus("cannot open " + path, err);
    struct stat lst;
    if (::fstatat(fd_.get(), name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
      return RefuseSymlink(what, path, true);
    }
    return InvalidArgument(what + " " + path + " is not a directory; " + std::string(kStateFix));
  }
  ScopedFd dir(fd);
  if (created && ::fchmod(dir.get(), 0700) != 0) {
    return ErrnoStatus("cannot set the mode of " + path, errno);
  }
  struct stat st;
  if (::fstat(dir.get(), &st) != 0) return ErrnoStatus("cannot stat " + path, errno);
  SLEUTH_RETURN_IF_ERROR(CheckPrivateDir(st, what, path, ::geteuid()));
  return DumpDir(std::move(path), std::move(dir));
}

std::string DumpDir::PathOf(std::string_view name) const {
  std::string out = path_;
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

Result<struct stat> DumpDir::Stat(std::string_view name) const {
  std::string n(name);
  struct stat st;
  if (::fstatat(fd_.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("cannot stat " + PathOf(name), errno);
  }
  return st;
}

bool DumpDir::IsOwnFile(std::string_view name) const {
  Result<struct stat> st = Stat(name);
  return st.ok() && CheckOwnFile(*st, "").ok();
}

Result<std::string> DumpDir::ReadOwnFile(std::string_view name, size_t max_bytes) const {
  std::string n(name);
  std::string path = PathOf(name);
  int raw = OpenAtRetry(fd_.get(), n.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (raw < 0) {
    int err = errno;
    if (err == ELOOP) {
      return Refuse("refusing " + path +
                    ": it is a symbolic link (another user may have planted it to make sleuth "
                    "read a file of someone else's)");
    }
    return ErrnoStatus("cannot open " + path, err);
  }
  ScopedFd fd(raw);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("cannot stat " + path, errno);
  SLEUTH_RETURN_IF_ERROR(CheckOwnFile(st, path));
  std::string out;
  try {
    if (static_cast<uint64_t>(st.st_size) <= max_bytes) out.reserve(static_cast<size_t>(st.st_size));
    char buf[16384];
    for (;;) {
      ssize_t got = ::read(fd.get(), buf, sizeof buf);
      if (got < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("cannot read " + path, errno);
      }
      if (got == 0) break;
      out.append(buf, static_cast<size_t>(got));
      if (out.size() > max_bytes) {
        return IoError("cannot read " + path + ": larger than " + std::to_string(max_bytes) +
                       " bytes");
      }
    }
  } catch (const std::bad_alloc&) {
    return IoError("cannot read " + path + ": out of memory");
  }
  return out;
}

Result<ScopedFd> DumpDir::OpenOwnFile(std::string_view name) const {
  std::string n(name);
  std::string path = PathOf(name);
  int raw = OpenAtRetry(fd_.get(), n.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                        0600);
  if (raw < 0) {
    int err = errno;
    if (err == ELOOP) {
      return Refuse("refusing " + path +
                    ": it is a symbolic link (another user may have planted it to make sleuth "
                    "write to a file of someone else's); remove it");
    }
    return ErrnoStatus("cannot open " + path, err);
  }
  ScopedFd fd(raw);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("cannot stat " + path, errno);
  SLEUTH_RETURN_IF_ERROR(CheckOwnFile(st, path));
  return fd;
}

Status DumpDir::WriteAtomic(std::string_view name, std::string_view data, Sync sync) const {
  std::string final_name(name);
  if (!ValidComponent(final_name)) return InvalidArgument("invalid file name \"" + final_name + "\"");
  std::string scratch;
  int raw = -1;
  // A fresh random suffix each attempt: the name cannot be predicted, and
  // O_EXCL refuses anything already there (a planted symlink included).
  for (int attempt = 0; attempt < 4 && raw < 0; ++attempt) {
    scratch = final_name + std::string(kScratchMark) + std::to_string(::getpid()) + "-" +
              std::to_string(SelfStartTicks()) + "." + RandomSuffix();
    raw = OpenAtRetry(fd_.get(), scratch.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
    if (raw < 0 && errno != EEXIST) break;
  }
  if (raw < 0) return ErrnoStatus("cannot create " + PathOf(scratch), errno);
  ScopedFd fd(raw);
  auto fail = [&](std::string what, int err) {
    Status s = ErrnoStatus(what + " " + PathOf(scratch), err);
    fd.reset();
    ::unlinkat(fd_.get(), scratch.c_str(), 0);
    return s;
  };
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write", errno);
    }
    if (n == 0) return fail("cannot write", ENOSPC);
    done += static_cast<size_t>(n);
  }
  if (sync == Sync::kYes && ::fsync(fd.get()) != 0) return fail("cannot fsync", errno);
  // close() reports delayed write errors on some file systems (NFS, quota).
  int raw_fd = fd.release();
  if (::close(raw_fd) != 0 && errno != EINTR) return fail("cannot close", errno);
  if (::renameat(fd_.get(), scratch.c_str(), fd_.get(), final_name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(fd_.get(), scratch.c_str(), 0);
    return ErrnoStatus("cannot rename " + PathOf(scratch) + " to " + final_name, err);
  }
  return Status::Ok();
}

Status DumpDir::Remove(std::string_view name) const {
  std::string n(name);
  if (::unlinkat(fd_.get(), n.c_str(), 0) == 0 || errno == ENOENT) return Status::Ok();
  return ErrnoStatus("cannot remove " + PathOf(name), errno);
}

Status DumpDir::RemoveEmptyDir(std::string_view name) const {
  std::string n(name);
  if (::unlinkat(fd_.get(), n.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) return Status::Ok();
  return ErrnoStatus("cannot remove directory " + PathOf(name), errno);
}

Status DumpDir::MoveTo(std::string_view name, const DumpDir& to, std::string_view to_name) const {
  std::string from(name), dest(to_name);
  if (::renameat(fd_.get(), from.c_str(), to.fd_.get(), dest.c_str()) == 0) return Status::Ok();
  return ErrnoStatus("cannot move " + PathOf(name) + " to " + to.PathOf(to_name), errno);
}

Status DumpDir::CopyTo(std::string_view name, const DumpDir& to, std::string_view to_name,
                       size_t max_bytes) const {
  SLEUTH_ASSIGN_OR_RETURN(std::string data, ReadOwnFile(name, max_bytes));
  return to.WriteAtomic(to_name, data, Sync::kNo);
}

Status DumpDir::ForEachEntry(const std::function<void(std::string_view, bool)>& fn) const {
  ScopedFd dir(OpenAtRetry(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoStatus("cannot list " + path_, errno);
  return ForEachDirEntry(dir, path_, [&](std::string_view name, unsigned char type) {
    bool is_dir = type == DT_DIR;
    if (type == DT_UNKNOWN) {
      std::string copy(name);
      struct stat st;
      is_dir = ::fstatat(dir.get(), copy.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISDIR(st.st_mode);
    }
    fn(name, is_dir);
  });
}

uint64_t DumpDir::TotalBytes() const {
  return CountBytes(fd_.get(), 0);
}

}  // namespace sleuth::dumps
