#include "sleuth/uploader/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <map>
#include <mutex>
#include <queue>
#include <utility>

#include "sleuth/common/log.h"
#include "sleuth/dumps/dump_meta.h"
#include "sleuth/dumps/leftovers.h"

namespace sleuth::uploader {
namespace {

using dumps::Create;
using dumps::DumpDir;
using dumps::kFailedDirName;
using dumps::kProfileExt;
using dumps::kSidecarExt;
using dumps::kStateDirName;
using dumps::kTextExt;

constexpr std::string_view kReasonExt = ".reason";
constexpr std::string_view kDoneExt = ".done";
constexpr std::string_view kLockName = "lock";
constexpr size_t kMaxReasonBytes = 64 * 1024;
// failed/ copies of a dump are read whole; a profile is far below this.
constexpr size_t kMaxCopyBytes = size_t{256} << 20;

// How many eviction candidates one pass over the spool keeps in memory.
constexpr size_t kEvictionWindow = 256;
// How many entries of failed/ one requeue pass handles before rereading the
// directory (readdir while renaming out of the same directory is allowed to
// skip entries, so each batch starts a fresh listing).
constexpr size_t kRequeueBatch = 1024;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string Join(std::string_view dir, std::string_view name) {
  std::string path(dir);
  path += '/';
  path += name;
  return path;
}

std::string Name(std::string_view base, std::string_view ext) {
  return std::string(base) + std::string(ext);
}

uint64_t SizeIn(const DumpDir& dir, const std::string& name) {
  Result<struct stat> st = dir.Stat(name);
  return st.ok() && S_ISREG(st->st_mode) ? static_cast<uint64_t>(st->st_size) : 0;
}

// The names of the real subdirectories of `dir` (symlinks are not).
Status ListSubdirs(const DumpDir& dir, std::vector<std::string>* out) {
  return dir.ForEachEntry([&](std::string_view name, bool is_dir) {
    if (is_dir) out->emplace_back(name);
  });
}

std::string StripExtension(std::string_view name) {
  for (std::string_view ext : {kProfileExt, kSidecarExt, kTextExt, kReasonExt, kDoneExt}) {
    if (EndsWith(name, ext)) return std::string(name.substr(0, name.size() - ext.size()));
  }
  return {};
}

Result<DumpKey> KeyIn(const DumpDir& dir, const std::string& base) {
  Result<DumpName> name = ParseDumpBase(base);
  if (name.ok()) return DumpKey{name->time, base};
  SLEUTH_ASSIGN_OR_RETURN(struct stat st, dir.Stat(Name(base, kSidecarExt)));
  int64_t nanos = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  return DumpKey{FormatDumpTime(nanos), base};
}

uint64_t EntryBytes(const DumpDir& dir, std::string_view base) {
  return SizeIn(dir, Name(base, kSidecarExt)) + SizeIn(dir, Name(base, kProfileExt)) +
         SizeIn(dir, Name(base, kTextExt)) + SizeIn(dir, Name(base, kReasonExt));
}

// Removes an entry's files, the sidecar first so that it stops being a
// complete dump before anything else goes. Files already gone are fine
// (someone else's retention may have removed them first).
void RemoveEntry(const DumpDir& dir, std::string_view base) {
  for (std::string_view ext : {kSidecarExt, kProfileExt, kTextExt, kReasonExt}) {
    (void)dir.Remove(Name(base, ext));
  }
}

// Calls fn(sub, dir, base) for every complete dump set aside under
// failed/<sub>/.
Status ForEachFailedSidecar(
    const DumpDir& failed_root,
    const std::function<void(const std::string&, const DumpDir&, const std::string&)>& fn) {
  std::vector<std::string> subdirs;
  SLEUTH_RETURN_IF_ERROR(ListSubdirs(failed_root, &subdirs));
  for (const std::string& sub : subdirs) {
    SLEUTH_ASSIGN_OR_RETURN(DumpDir dir, failed_root.Subdir(sub, Create::kNo));
    SLEUTH_RETURN_IF_ERROR(dir.ForEachEntry([&](std::string_view name, bool is_dir) {
      if (is_dir) return;
      if (std::optional<std::string> base = SidecarBase(name)) fn(sub, dir, *base);
    }));
  }
  return Status::Ok();
}

// A missing failed/ or state directory is an empty one.
template <typename T>
bool Missing(const Result<T>& r) {
  return !r.ok() && r.status().code() == StatusCode::kNotFound;
}

}  // namespace

Status CheckSinkName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') ok = false;
  }
  if (ok) return Status::Ok();
  return InvalidArgument("invalid sink name \"" + std::string(name) +
                         "\": use letters, digits, _ and - (starting with a letter or digit), "
                         "at most 64 characters");
}

Spool::Spool(std::string dump_dir, std::vector<std::string> sinks)
    : dir_(dumps::ResolveDumpDir(dump_dir)), sinks_(std::move(sinks)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

Status Spool::Open() {
  Result<const DumpDir*> d = Dir();
  return d.ok() ? Status::Ok() : d.status();
}

Result<const DumpDir*> Spool::Dir() const {
  std::lock_guard<std::mutex> lock(open_mu_);
  if (open_.is_open() && !open_.StillOurs()) {
    // A host that closes every descriptor may own this number now: forget
    // it without closing it, and open the directory again.
    open_.Forget();
    log::Warn("upload: the descriptor of " + dir_ + " was closed by the host; opening it again");
  }
  if (!open_.is_open()) {
    SLEUTH_ASSIGN_OR_RETURN(open_, DumpDir::Open(dir_, Create::kYes));
  }
  return &open_;
}

Result<DumpDir> Spool::SinkStateDir(size_t sink, Create create) const {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* dir, Dir());
  SLEUTH_ASSIGN_OR_RETURN(DumpDir state, dir->Subdir(kStateDirName, create));
  return state.Subdir(sinks_[sink], create);
}

Result<DumpDir> Spool::FailedSubdir(std::string_view name, Create create) const {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* dir, Dir());
  SLEUTH_ASSIGN_OR_RETURN(DumpDir failed, dir->Subdir(kFailedDirName, create));
  return failed.Subdir(name, create);
}

std::string Spool::ProfilePath(std::string_view base) const {
  return Join(dir_, Name(base, kProfileExt));
}
std::string Spool::SidecarPath(std::string_view base) const {
  return Join(dir_, Name(base, kSidecarExt));
}
std::string Spool::TextPath(std::string_view base) const {
  return Join(dir_, Name(base, kTextExt));
}
std::string Spool::StateDir() const {
  return Join(dir_, kStateDirName);
}
std::string Spool::DoneMarkerPath(size_t sink, std::string_view base) const {
  return Join(Join(StateDir(), sinks_[sink]), Name(base, kDoneExt));
}
std::string Spool::FailedDir(std::string_view sink_or_invalid) const {
  return Join(Join(dir_, kFailedDirName), sink_or_invalid);
}

Result<std::string> Spool::ReadSidecar(std::string_view base) const {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* dir, Dir());
  return dir->ReadOwnFile(Name(base, kSidecarExt), dumps::kMaxSidecarBytes + 1);
}

Result<std::string> Spool::ReadProfile(std::string_view base, size_t max_bytes) const {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* dir, Dir());
  return dir->ReadOwnFile(Name(base, kProfileExt), max_bytes);
}

bool Spool::IsComplete(std::string_view base) const {
  Result<const DumpDir*> dir = Dir();
  return dir.ok() && (*dir)->Exists(Name(base, kSidecarExt));
}

Result<DumpKey> Spool::KeyOf(const std::string& base) const {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* dir, Dir());
  return KeyIn(*dir, base);
}

bool Spool::IsPending(size_t sink, std::string_view base) const {
  // Only our own regular files count: they live in directories checked to
  // be ours alone, so nobody else could have planted them.
  if (Result<DumpDir> state = SinkStateDir(sink, Create::kNo);
      state.ok() && state->IsOwnFile(Name(base, kDoneExt))) {
    return false;
  }
  Result<DumpDir> failed = FailedSubdir(sinks_[sink], Create::kNo);
  return !(failed.ok() && failed->IsOwnFile(Name(base, kSidecarExt)));
}

bool Spool::IsPendingForAny(std::string_view base) const {
  for (size_t i = 0; i < sinks_.size(); ++i) {
    if (IsPending(i, base)) return true;
  }
  return false;
}

uint64_t Spool::DumpBytes(std::string_view base) const {
  Result<const DumpDir*> dir = Dir();
  return dir.ok() ? EntryBytes(**dir, base) : 0;
}

Status Spool::MarkDelivered(size_t sink, std::string_view base, std::string_view note) {
  Result<DumpDir> state = SinkStateDir(sink, Create::kYes);
  Status s = state.ok() ? state->WriteAtomic(Name(base, kDoneExt), note, dumps::Sync::kNo)
                        : state.status();
  return s.ok() ? s : s.WithContext("cannot record the delivery of " + std::string(base));
}

Status Spool::ProbeMarkerSpace(size_t sink) {
  SLEUTH_ASSIGN_OR_RETURN(DumpDir state, SinkStateDir(sink, Create::kYes));
  constexpr std::string_view kProbe = ".probe";
  Status s = state.WriteAtomic(kProbe, "probe\n", dumps::Sync::kNo);
  (void)state.Remove(kProbe);
  return s;
}

Status Spool::MarkRejected(size_t sink, std::string_view base, std::string_view reason) {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* queue, Dir());
  SLEUTH_ASSIGN_OR_RETURN(DumpDir failed, FailedSubdir(sinks_[sink], Create::kYes));
  auto vanished = [&](const Status& s) {
    return s.code() == StatusCode::kNotFound ? NotFound(std::string(base) + " vanished") : s;
  };
  // Copies, not hard links: a payload with a second link is refused when
  // read, and a copy also survives the agent's retention of the original.
  Status s = queue->CopyTo(Name(base, kProfileExt), failed, Name(base, kProfileExt), kMaxCopyBytes);
  if (!s.ok()) return vanished(s);
  if (queue->Exists(Name(base, kTextExt))) {
    Status text = queue->CopyTo(Name(base, kTextExt), failed, Name(base, kTextExt), kMaxCopyBytes);
    if (!text.ok() && text.code() != StatusCode::kNotFound) return text;
  }
  SLEUTH_RETURN_IF_ERROR(failed.WriteAtomic(Name(base, kReasonExt), reason, dumps::Sync::kNo));
  // The sidecar last: failed/<sink>/<base>.json is what makes the entry
  // complete, exactly as in dump_dir.
  s = queue->CopyTo(Name(base, kSidecarExt), failed, Name(base, kSidecarExt), kMaxCopyBytes);
  if (!s.ok()) {
    RemoveEntry(failed, base);
    return vanished(s);
  }
  return Status::Ok();
}

Status Spool::SetAsideInvalid(std::string_view base, std::string_view reason) {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* queue, Dir());
  SLEUTH_ASSIGN_OR_RETURN(DumpDir invalid, FailedSubdir(kInvalidDir, Create::kYes));
  // renameat moves a planted symlink itself, never what it points to.
  for (std::string_view ext : {kProfileExt, kTextExt}) {
    Status s = queue->MoveTo(Name(base, ext), invalid, Name(base, ext));
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  }
  SLEUTH_RETURN_IF_ERROR(invalid.WriteAtomic(Name(base, kReasonExt), reason, dumps::Sync::kNo));
  Status s = queue->MoveTo(Name(base, kSidecarExt), invalid, Name(base, kSidecarExt));
  if (!s.ok()) {
    return s.code() == StatusCode::kNotFound ? NotFound(std::string(base) + " vanished") : s;
  }
  return Status::Ok();
}

Result<uint64_t> Spool::RequeueFailed() {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* queue, Dir());
  Result<DumpDir> failed_root = queue->Subdir(kFailedDirName, Create::kNo);
  if (Missing(failed_root)) return uint64_t{0};
  if (!failed_root.ok()) return failed_root.status();
  std::vector<std::string> subdirs;
  SLEUTH_RETURN_IF_ERROR(ListSubdirs(*failed_root, &subdirs));
  uint64_t requeued = 0;
  for (const std::string& sub : subdirs) {
    SLEUTH_ASSIGN_OR_RETURN(DumpDir dir, failed_root->Subdir(sub, Create::kNo));
    for (;;) {
      std::vector<std::string> batch;
      SLEUTH_RETURN_IF_ERROR(dir.ForEachEntry([&](std::string_view name, bool is_dir) {
        if (is_dir || batch.size() >= kRequeueBatch) return;
        if (std::optional<std::string> base = SidecarBase(name)) batch.push_back(*base);
      }));
      if (batch.empty()) break;
      for (const std::string& base : batch) {
        if (queue->Exists(Name(base, kSidecarExt))) {
          // Still in the queue directory: dropping the failed/ copy is all
          // it takes to make it pending for this sink again.
          RemoveEntry(dir, base);
        } else {
          for (std::string_view ext : {kProfileExt, kTextExt}) {
            Status s = dir.MoveTo(Name(base, ext), *queue, Name(base, ext));
            if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
          }
          SLEUTH_RETURN_IF_ERROR(dir.MoveTo(Name(base, kSidecarExt), *queue, Name(base, kSidecarExt)));
          (void)dir.Remove(Name(base, kReasonExt));
        }
        if (dir.Exists(Name(base, kSidecarExt))) {
          return IoError("cannot requeue " + dir.PathOf(Name(base, kSidecarExt)) +
                         ": it could not be removed");
        }
        ++requeued;
      }
    }
  }
  return requeued;
}

Status Spool::ForEachDump(const std::function<void(const std::string& base)>& fn) const {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* dir, Dir());
  return dir->ForEachEntry([&](std::string_view name, bool is_dir) {
    if (is_dir) return;
    if (std::optional<std::string> base = SidecarBase(name)) fn(*base);
  });
}

Result<SpoolUsage> Spool::EnforceCap(uint64_t max_bytes,
                                     const std::function<bool(std::string_view base)>& busy,
                                     const std::function<void(const Eviction&)>& on_evict) {
  struct Candidate {
    DumpKey key;
    std::string failed_subdir;  // empty: the queue itself
    uint64_t bytes;
    bool operator<(const Candidate& o) const { return key < o.key; }
  };
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* queue, Dir());
  // Each round keeps only the oldest kEvictionWindow candidates; a spool far
  // over its cap simply takes several rounds. The bound on rounds only stops
  // a pathological loop (everything busy is handled below).
  for (int round = 0; round < 10'000; ++round) {
    SpoolUsage usage;
    std::priority_queue<Candidate> oldest;  // max-heap: the newest kept on top
    auto consider = [&](Candidate c) {
      if (oldest.size() < kEvictionWindow) {
        oldest.push(std::move(c));
      } else if (c.key < oldest.top().key) {
        oldest.pop();
        oldest.push(std::move(c));
      }
    };
    SLEUTH_RETURN_IF_ERROR(ForEachDump([&](const std::string& base) {
      if (!IsPendingForAny(base)) return;
      uint64_t bytes = EntryBytes(*queue, base);
      Result<DumpKey> key = KeyIn(*queue, base);
      if (bytes == 0 || !key.ok()) return;  // vanished meanwhile
      usage.pending_dumps++;
      usage.pending_bytes += bytes;
      consider(Candidate{std::move(*key), {}, bytes});
    }));
    Result<DumpDir> failed_root = queue->Subdir(kFailedDirName, Create::kNo);
    if (!failed_root.ok() && !Missing(failed_root)) return failed_root.status();
    if (failed_root.ok()) {
      SLEUTH_RETURN_IF_ERROR(ForEachFailedSidecar(
          *failed_root, [&](const std::string& sub, const DumpDir& dir, const std::string& base) {
            uint64_t bytes = EntryBytes(dir, base);
            Result<DumpKey> key = KeyIn(dir, base);
            if (!key.ok()) return;
            usage.failed_dumps++;
            usage.failed_bytes += bytes;
            consider(Candidate{std::move(*key), sub, bytes});
          }));
    }
    if (usage.spool_bytes() <= max_bytes) return usage;

    std::vector<Candidate> ordered;
    ordered.reserve(oldest.size());
    while (!oldest.empty()) {
      ordered.push_back(oldest.top());
      oldest.pop();
    }
    std::reverse(ordered.begin(), ordered.end());
    bool evicted_any = false;
    for (const Candidate& c : ordered) {
      if (usage.spool_bytes() <= max_bytes) return usage;
      if (c.failed_subdir.empty()) {
        if (busy && busy(c.key.base)) continue;
        RemoveEntry(*queue, c.key.base);
        for (size_t i = 0; i < sinks_.size(); ++i) {
          if (Result<DumpDir> state = SinkStateDir(i, Create::kNo); state.ok()) {
            (void)state->Remove(Name(c.key.base, kDoneExt));
          }
        }
        usage.pending_dumps--;
        usage.pending_bytes -= std::min(usage.pending_bytes, c.bytes);
        on_evict(Eviction{c.key, "queue", c.bytes});
      } else {
        Result<DumpDir> sub = failed_root->Subdir(c.failed_subdir, Create::kNo);
        if (sub.ok()) RemoveEntry(*sub, c.key.base);
        usage.failed_dumps--;
        usage.failed_bytes -= std::min(usage.failed_bytes, c.bytes);
        on_evict(Eviction{c.key, std::string(kFailedDirName) + "/" + c.failed_subdir, c.bytes});
      }
      evicted_any = true;
    }
    if (usage.spool_bytes() <= max_bytes || !evicted_any) return usage;
  }
  return Internal("the upload spool in " + dir_ + " stays over its cap after many rounds");
}

Status Spool::CollectGarbage() {
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* queue, Dir());
  dumps::RemoveLeftovers(*queue);
  std::vector<std::string> failed_subdirs;
  Result<DumpDir> failed_root = queue->Subdir(kFailedDirName, Create::kNo);
  if (!failed_root.ok() && !Missing(failed_root)) return failed_root.status();
  std::vector<DumpDir> failed_dirs;
  if (failed_root.ok()) {
    SLEUTH_RETURN_IF_ERROR(ListSubdirs(*failed_root, &failed_subdirs));
    for (const std::string& sub : failed_subdirs) {
      SLEUTH_ASSIGN_OR_RETURN(DumpDir d, failed_root->Subdir(sub, Create::kNo));
      failed_dirs.push_back(std::move(d));
    }
  }
  auto exists_anywhere = [&](const std::string& base) {
    if (queue->Exists(Name(base, kSidecarExt))) return true;
    for (const DumpDir& d : failed_dirs) {
      if (d.Exists(Name(base, kSidecarExt))) return true;
    }
    return false;
  };
  // Scratch files here are the lock holder's own; we hold the lock, so any
  // we find were left by an earlier holder that died.
  auto tidy = [](const DumpDir& dir, const std::function<bool(std::string_view)>& doomed) {
    std::vector<std::string> names;
    Status s = dir.ForEachEntry([&](std::string_view name, bool is_dir) {
      if (!is_dir && doomed(name)) names.emplace_back(name);
    });
    for (const std::string& n : names) (void)dir.Remove(n);
    return s;
  };
  Result<DumpDir> state = queue->Subdir(kStateDirName, Create::kNo);
  if (!state.ok() && !Missing(state)) return state.status();
  if (state.ok()) {
    std::vector<std::string> state_subdirs;
    SLEUTH_RETURN_IF_ERROR(ListSubdirs(*state, &state_subdirs));
    for (const std::string& sub : state_subdirs) {
      SLEUTH_ASSIGN_OR_RETURN(DumpDir dir, state->Subdir(sub, Create::kNo));
      SLEUTH_RETURN_IF_ERROR(tidy(dir, [&](std::string_view name) {
        if (name.find(dumps::kScratchMark) != std::string_view::npos) return true;
        if (!EndsWith(name, kDoneExt)) return false;
        return !exists_anywhere(std::string(name.substr(0, name.size() - kDoneExt.size())));
      }));
    }
  }
  for (const DumpDir& dir : failed_dirs) {
    SLEUTH_RETURN_IF_ERROR(tidy(dir, [&](std::string_view name) {
      if (name.find(dumps::kScratchMark) != std::string_view::npos) return true;
      std::string base = StripExtension(name);
      if (base.empty() || EndsWith(name, kSidecarExt)) return false;
      return !dir.Exists(Name(base, kSidecarExt));
    }));
  }
  return Status::Ok();
}

Status Spool::ForEachUndelivered(const std::function<void(const Undelivered&)>& fn) const {
  SLEUTH_RETURN_IF_ERROR(ForEachDump([&](const std::string& base) {
    for (size_t i = 0; i < sinks_.size(); ++i) {
      if (IsPending(i, base)) fn(Undelivered{base, sinks_[i], false, {}});
    }
  }));
  SLEUTH_ASSIGN_OR_RETURN(const DumpDir* queue, Dir());
  Result<DumpDir> failed_root = queue->Subdir(kFailedDirName, Create::kNo);
  if (Missing(failed_root)) return Status::Ok();
  if (!failed_root.ok()) return failed_root.status();
  return ForEachFailedSidecar(
      *failed_root, [&](const std::string& sub, const DumpDir& dir, const std::string& base) {
        Result<std::string> reason = dir.ReadOwnFile(Name(base, kReasonExt), kMaxReasonBytes);
        std::string text = reason.ok() ? *reason : "(no reason recorded)";
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
        fn(Undelivered{base, sub, true, std::move(text)});
      });
}

// ---------------------------------------------------------------- SpoolLock

namespace {
std::mutex g_locked_mu;
// Directories locked by this process, with the pid that locked them: a
// fork()ed child inherits this memory but not the record locks, so it
// ignores its parent's entries.
std::map<std::string, pid_t>& LockedDirs() {
  static std::map<std::string, pid_t> dirs;
  return dirs;
}
}  // namespace

SpoolLock::SpoolLock(SpoolLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), identity_(other.identity_), key_(std::move(other.key_)) {}

SpoolLock& SpoolLock::operator=(SpoolLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
    identity_ = other.identity_;
    key_ = std::move(other.key_);
  }
  return *this;
}

SpoolLock::~SpoolLock() {
  Release();
}

void SpoolLock::Release() {
  if (fd_ < 0) return;
  {
    std::lock_guard<std::mutex> lock(g_locked_mu);
    LockedDirs().erase(key_);
  }
  if (identity_.Matches(fd_)) ::close(fd_);  // releases the record lock
  fd_ = -1;
}

Result<SpoolLock> SpoolLock::TryAcquire(const std::string& dump_dir) {
  SLEUTH_ASSIGN_OR_RETURN(DumpDir dir, DumpDir::Open(dump_dir, Create::kYes));
  SLEUTH_ASSIGN_OR_RETURN(DumpDir state, dir.Subdir(kStateDirName, Create::kYes));
  struct stat st;
  if (::fstat(state.fd(), &st) != 0) return ErrnoStatus("cannot stat " + state.path(), errno);
  std::string key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  // POSIX record locks are per process, so a second Uploader of this process
  // is refused here, and before any open(): closing any descriptor of the
  // lock file would drop the lock the first one holds.
  std::lock_guard<std::mutex> lock(g_locked_mu);
  if (auto it = LockedDirs().find(key); it != LockedDirs().end() && it->second == ::getpid()) {
    return Status(StatusCode::kBusy,
                  "another uploader in this process is already shipping " + dump_dir);
  }
  std::string path = state.PathOf(kLockName);
  SLEUTH_ASSIGN_OR_RETURN(ScopedFd fd, state.OpenOwnFile(kLockName));
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd.get(), F_SETLK, &fl) != 0) {
    int err = errno;
    if (err != EACCES && err != EAGAIN) return ErrnoStatus("cannot lock " + path, err);
    struct flock holder = {};
    holder.l_type = F_WRLCK;
    holder.l_whence = SEEK_SET;
    std::string who = "another process";
    if (::fcntl(fd.get(), F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK) {
      who += " (pid " + std::to_string(holder.l_pid) + ")";
    }
    return Status(StatusCode::kBusy,
                  who + " is already shipping " + dump_dir + " (it holds " + path + ")");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) == 0) {
    [[maybe_unused]] ssize_t n = ::pwrite(fd.get(), pid.data(), pid.size(), 0);
  }
  LockedDirs()[key] = ::getpid();
  SpoolLock out;
  out.fd_ = fd.release();
  FdIdentity::Of(out.fd_, &out.identity_);
  out.key_ = std::move(key);
  return out;
}

}  // namespace sleuth::uploader
