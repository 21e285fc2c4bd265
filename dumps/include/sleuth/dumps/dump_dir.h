// DumpDir: the dump directory (or one of its state subdirectories), opened
// once and then used only relative to that descriptor, so nothing another
// user does to the path afterwards (a symlink swapped in, a directory
// renamed) can redirect what sleuth reads, writes or removes.
//
// Opening refuses, with one message that names the fix, a directory that is
// a symbolic link, is not owned by the effective uid, or is writable by its
// group or by others: in such a directory another user could plant files
// (a symlinked lock, a sidecar beside `x.pb.gz -> /etc/shadow`, a
// pre-created `.done` marker) and make a root sleuth act on them. Missing
// directories are created 0700, each new component checked the same way.
//
// Every file is opened with openat(O_NOFOLLOW | O_CLOEXEC); new files are
// created O_EXCL under an unpredictable scratch name and renamed into place;
// files read back (payloads to upload, markers) must be regular files owned
// by the effective uid with a single link, so a planted symlink or hard
// link to a file of someone else's is refused, not followed.
//
// Thread-safety: a DumpDir is immutable after Open(); its methods are thread
// safe (each call works on its own descriptors).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "sleuth/common/files.h"
#include "sleuth/common/status.h"

namespace sleuth::dumps {

enum class Create { kNo, kYes };

// Whether an atomic write is fsynced before its rename (a dump: yes, so a
// power loss cannot leave a complete-looking empty file; a small marker the
// uploader can afford to lose: no).
enum class Sync { kNo, kYes };

class DumpDir {
 public:
  DumpDir() = default;
  DumpDir(DumpDir&&) noexcept = default;
  DumpDir& operator=(DumpDir&&) noexcept = default;

  // Opens the dump directory `path` (empty: DefaultDumpDir()). Fails with
  // kPermission and the fix for an unsafe directory, kNotFound for a
  // missing one when `create` is kNo, kInvalidArgument for a non-directory.
  [[nodiscard]] static Result<DumpDir> Open(std::string_view path, Create create);

  // Opens the state subdirectory `name` (one path component, e.g.
  // ".sleuth-upload" or a sink's name) with the same checks. A missing one
  // is created 0700 with kYes, else kNotFound.
  [[nodiscard]] Result<DumpDir> Subdir(std::string_view name, Create create) const;

  bool is_open() const { return fd_.valid(); }

  // Whether the descriptor still is the directory Open() checked. A host
  // that closes every descriptor (close_range) and opens its own files may
  // have been given our number: then every *at() call would act on the
  // host's file. Holders of a long-lived DumpDir check this before use and,
  // when it fails, Forget() it (never close what is now the host's) and
  // open the directory again.
  bool StillOurs() const;
  // Drops the descriptor without closing it.
  void Forget() { (void)fd_.release(); }
  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  std::string PathOf(std::string_view name) const;  // for messages only

  // lstat() of an entry (a symlink is described, never followed).
  // kNotFound if it is not there.
  [[nodiscard]] Result<struct stat> Stat(std::string_view name) const;
  bool Exists(std::string_view name) const { return Stat(name).ok(); }
  // Whether `name` is a regular file owned by us with one link: the only
  // kind of marker or payload sleuth trusts.
  bool IsOwnFile(std::string_view name) const;

  // Reads a file that must be a regular file owned by the effective uid with
  // a single link (else kPermission, naming what is wrong). kNotFound if it
  // is not there, kIo past max_bytes.
  [[nodiscard]] Result<std::string> ReadOwnFile(std::string_view name, size_t max_bytes) const;

  // Opens (creating 0600 if missing) a file for reading and writing, e.g. a
  // lock file, with the same ownership checks as ReadOwnFile().
  [[nodiscard]] Result<ScopedFd> OpenOwnFile(std::string_view name) const;

  // Writes `data` to a new scratch file "<name>.tmp.<pid>-<start>.<random>"
  // (O_CREAT | O_EXCL, mode 0600) and renames it to `name`, replacing what
  // was there: readers see all of it or nothing. On failure (ENOSPC, EDQUOT
  // included) the scratch file is removed and nothing else changes.
  [[nodiscard]] Status WriteAtomic(std::string_view name, std::string_view data, Sync sync) const;

  // Removes a file; one already gone is fine. Never follows a symlink (an
  // entry that is one is removed itself).
  Status Remove(std::string_view name) const;
  // Removes an empty subdirectory; a missing one is fine.
  Status RemoveEmptyDir(std::string_view name) const;
  // renameat(2) into `to` (which may be this directory).
  [[nodiscard]] Status MoveTo(std::string_view name, const DumpDir& to,
                              std::string_view to_name) const;
  // Copies an own file (see ReadOwnFile) into `to` atomically.
  [[nodiscard]] Status CopyTo(std::string_view name, const DumpDir& to, std::string_view to_name,
                              size_t max_bytes) const;

  // Calls fn(name, is_dir) for each entry but "." and "..", in directory
  // order. is_dir is true only for real directories (never for a symlink to
  // one). Streams; holds nothing.
  [[nodiscard]] Status ForEachEntry(
      const std::function<void(std::string_view name, bool is_dir)>& fn) const;

  // Bytes of every regular file here and in every subdirectory (symlinks are
  // not followed; depth is bounded).
  uint64_t TotalBytes() const;

 private:
  DumpDir(std::string path, ScopedFd fd);
  std::string path_;
  ScopedFd fd_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// Checks an open directory's fstat() as Open() does: owned by `euid`, not
// writable by group or others. `what` names it in the message ("dump
// directory /x" or "state directory /x/.sleuth-upload"). Pure.
[[nodiscard]] Status CheckPrivateDir(const struct stat& st, const std::string& what,
                                     const std::string& path, uid_t euid);

// A process's start time in clock ticks since boot (field 22 of
// /proc/<pid>/stat), or 0 if it does not exist or cannot be read. With the
// pid it names one process for good: a reused pid has another start time.
uint64_t ProcessStartTicks(pid_t pid);
// The same for this process, cached per pid (a forked child re-reads).
uint64_t SelfStartTicks();

}  // namespace sleuth::dumps
