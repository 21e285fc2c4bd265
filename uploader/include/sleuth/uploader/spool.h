// The dump directory seen as the uploader's queue, and the upload state kept
// beside it. Everything the uploader knows survives a restart or a kill -9
// because it lives in these files, not in memory:
//
//   <dump_dir>/<base>.pb.gz, <base>.json [, <base>.txt]   a dump; complete
//       once <base>.json exists (the agent renames the sidecar last)
//   <dump_dir>/.sleuth-upload/lock                       held (fcntl) by the one
//       process shipping this directory
//   <dump_dir>/.sleuth-upload/<sink>/<base>.done         written atomically after
//       the sink answered 2xx: the dump is never sent to that sink again
//   <dump_dir>/failed/<sink>/<base>.{pb.gz,json,txt,reason}   the sink refused
//       the dump (4xx other than 408/429); copies of the dump's files (not
//       hard links: a payload must have a single link to be read) plus the
//       server's answer. `sleuth upload --retry-failed` requeues them.
//   <dump_dir>/failed/_invalid/<base>.*                  a dump whose sidecar
//       cannot be read; moved out of the queue so it never stalls it
//
// A dump is pending for a sink unless it has that sink's .done marker or sits
// in failed/<sink>/. A dump settled for every sink stays in dump_dir for local
// inspection (the agent's retention removes it in time) and no longer counts
// toward upload.max_spool_bytes; failed/ entries do count, so a backend that
// refuses everything cannot fill the disk.
//
// The layout, names and safe access belong to sleuth::dumps: every file is
// reached through a dumps::DumpDir, which refuses a dump directory or state
// subdirectory another user could write, never follows a symlink, and
// trusts a .done marker or payload only if it is our own regular file with
// a single link.
//
// Memory stays flat however many dumps wait: directories are streamed with
// readdir and only bounded selections (the oldest N) are ever held.
//
// Thread-safety: a Spool is thread-compatible (one thread at a time); the
// on-disk protocol tolerates the agent writing and removing dumps
// concurrently.
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/owned_fd.h"
#include "sleuth/common/status.h"
#include "sleuth/dumps/dump_dir.h"
#include "sleuth/dumps/layout.h"

namespace sleuth::uploader {

// Orders dumps oldest first: by the UTC time in the name, then by name.
struct DumpKey {
  std::string time;  // "20261130T101502.123Z"
  std::string base;  // the file name without extension
  auto operator<=>(const DumpKey&) const = default;
};

// The dump directory's names are defined once, in sleuth::dumps.
using dumps::DumpName;
using dumps::FormatDumpTime;
using dumps::ParseDumpBase;
using dumps::SidecarBase;

// Name of the failed/ subdirectory for dumps whose sidecar is unreadable.
inline constexpr std::string_view kInvalidDir = "_invalid";

// A sink name is used as a directory name: [A-Za-z0-9][A-Za-z0-9_-]*.
[[nodiscard]] Status CheckSinkName(std::string_view name);

struct SpoolUsage {
  uint64_t pending_dumps = 0;  // in dump_dir, pending for at least one sink
  uint64_t pending_bytes = 0;
  uint64_t failed_dumps = 0;  // under failed/
  uint64_t failed_bytes = 0;
  uint64_t spool_bytes() const { return pending_bytes + failed_bytes; }
};

// One dump removed to keep the spool under its cap.
struct Eviction {
  DumpKey key;
  std::string where;  // "queue" or "failed/<sink>"
  uint64_t bytes = 0;
};

// A dump not delivered to one sink, with why.
struct Undelivered {
  std::string base;
  std::string sink;
  bool set_aside = false;  // in failed/<sink>/ (reason is the server's answer)
  std::string reason;      // for set-aside dumps; empty for dumps still queued
};

class Spool {
 public:
  // `sinks` are the configured sink names, each valid per CheckSinkName().
  // The directory is opened (and checked) by Open(), or by the first call
  // that needs it.
  Spool(std::string dump_dir, std::vector<std::string> sinks);

  // Opens the dump directory, creating it 0700 if missing. Fails with
  // kPermission and the fix if another user could write it (see DumpDir).
  [[nodiscard]] Status Open();

  const std::string& dir() const { return dir_; }
  const std::vector<std::string>& sinks() const { return sinks_; }

  // Paths, for messages and tests; the spool itself never opens by path.
  std::string ProfilePath(std::string_view base) const;
  std::string SidecarPath(std::string_view base) const;
  std::string TextPath(std::string_view base) const;
  std::string StateDir() const;  // <dump_dir>/.sleuth-upload
  std::string DoneMarkerPath(size_t sink, std::string_view base) const;
  std::string FailedDir(std::string_view sink_or_invalid) const;

  // A dump's sidecar text and profile bytes, read safely: kPermission for a
  // symlink, a file of another user's or one with several links (refused,
  // never followed), kNotFound if gone.
  [[nodiscard]] Result<std::string> ReadSidecar(std::string_view base) const;
  [[nodiscard]] Result<std::string> ReadProfile(std::string_view base, size_t max_bytes) const;
  // Whether the dump is complete (its sidecar exists).
  bool IsComplete(std::string_view base) const;

  // The ordering key of a complete dump: the time in its name, else the
  // sidecar's mtime (for files named some other way). Fails with kNotFound
  // if the dump vanished.
  [[nodiscard]] Result<DumpKey> KeyOf(const std::string& base) const;

  // Whether the dump still has to go to sink number `sink`.
  bool IsPending(size_t sink, std::string_view base) const;
  bool IsPendingForAny(std::string_view base) const;

  // Records the sink's 2xx. After this returns ok, the dump is never sent to
  // that sink again, even after a crash.
  [[nodiscard]] Status MarkDelivered(size_t sink, std::string_view base, std::string_view note);

  // Writes and removes a tiny marker-sized file where sink's markers go:
  // whether a delivery could be recorded now (e.g. the disk has room again).
  [[nodiscard]] Status ProbeMarkerSpace(size_t sink);

  // Sets the dump aside in failed/<sink>/ with the server's answer. Fails
  // with kNotFound if the dump vanished meanwhile.
  [[nodiscard]] Status MarkRejected(size_t sink, std::string_view base, std::string_view reason);

  // Moves a dump that cannot be shipped (unreadable sidecar) to
  // failed/_invalid/ with the reason, out of every sink's queue.
  [[nodiscard]] Status SetAsideInvalid(std::string_view base, std::string_view reason);

  // Requeues everything under failed/: a dump still in dump_dir simply loses
  // its failed/ copy; one that is gone from dump_dir is moved back. Returns
  // how many (dump, sink) pairs were requeued.
  [[nodiscard]] Result<uint64_t> RequeueFailed();

  // Calls `fn` with the base of every complete dump in dump_dir, in
  // directory order. Streams; holds nothing.
  [[nodiscard]] Status ForEachDump(const std::function<void(const std::string& base)>& fn) const;

  // Measures the spool and, while pending + failed bytes exceed `max_bytes`,
  // removes the oldest dumps (queued or set aside) for which `busy` is false,
  // calling `on_evict` for each. Memory: a bounded window of candidates.
  [[nodiscard]] Result<SpoolUsage> EnforceCap(
      uint64_t max_bytes, const std::function<bool(std::string_view base)>& busy,
      const std::function<void(const Eviction&)>& on_evict);

  // Removes the leftovers of killed writers in dump_dir (dumps::
  // RemoveLeftovers), .done markers whose dump is gone from dump_dir and
  // failed/, and partial entries under failed/ left by a crash. Call only
  // while holding the directory's lock.
  [[nodiscard]] Status CollectGarbage();

  // Calls `fn` for each (dump, sink) not delivered: queued ones first, then
  // set-aside ones. Streams.
  [[nodiscard]] Status ForEachUndelivered(const std::function<void(const Undelivered&)>& fn) const;

  // The total size of a dump's files in dump_dir (0 if gone).
  uint64_t DumpBytes(std::string_view base) const;

 private:
  // The open directory, opening it on first use. Thread safe.
  Result<const dumps::DumpDir*> Dir() const;
  Result<dumps::DumpDir> SinkStateDir(size_t sink, dumps::Create create) const;
  Result<dumps::DumpDir> FailedSubdir(std::string_view name, dumps::Create create) const;

  std::string dir_;
  std::vector<std::string> sinks_;
  mutable std::mutex open_mu_;
  mutable dumps::DumpDir open_;
};

// An exclusive lock on a dump directory's upload state, so only one process
// (and one Uploader in this process) ships it at a time. A POSIX record lock
// on <dump_dir>/.sleuth-upload/lock, opened through the checked DumpDir
// (never through a symlink): released by the kernel when the holder dies,
// never inherited by a fork()ed child. Thread-compatible.
class SpoolLock {
 public:
  SpoolLock() = default;
  SpoolLock(SpoolLock&& other) noexcept;
  SpoolLock& operator=(SpoolLock&& other) noexcept;
  SpoolLock(const SpoolLock&) = delete;
  SpoolLock& operator=(const SpoolLock&) = delete;
  ~SpoolLock();

  // Fails with kBusy, naming the holder's pid, if another process or another
  // Uploader of this process holds it; with kPermission if the directory or
  // the lock file is unsafe (see DumpDir).
  [[nodiscard]] static Result<SpoolLock> TryAcquire(const std::string& dump_dir);

  bool held() const { return fd_ >= 0; }

 private:
  void Release();
  int fd_ = -1;
  FdIdentity identity_;  // what fd_ was when taken: never close a number the host took over
  std::string key_;  // the state directory's identity (device and inode)
};

}  // namespace sleuth::uploader
