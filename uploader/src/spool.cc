#include "sleuth/uploader/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <utility>

#include "sleuth/common/files.h"

namespace sleuth::uploader {
namespace {

constexpr std::string_view kProfileExt = ".pb.gz";
constexpr std::string_view kSidecarExt = ".json";
constexpr std::string_view kTextExt = ".txt";
constexpr std::string_view kReasonExt = ".reason";
constexpr std::string_view kDoneExt = ".done";
constexpr std::string_view kStateDirName = ".sleuth-upload";
constexpr std::string_view kFailedDirName = "failed";

// How many eviction candidates one pass over the spool keeps in memory.
constexpr size_t kEvictionWindow = 256;
// How many entries of failed/ one requeue pass handles before rereading the
// directory (readdir while renaming out of the same directory is allowed to
// skip entries, so each batch starts a fresh listing).
constexpr size_t kRequeueBatch = 1024;

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string Join(std::string_view dir, std::string_view name) {
  std::string path(dir);
  path += '/';
  path += name;
  return path;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

uint64_t SizeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

// Removes a file; a file already gone is fine (someone else's retention
// may have removed it first).
void Unlink(const std::string& path) {
  ::unlink(path.c_str());
}

// Streams the names in a directory (no "." or ".."). A missing directory is
// an empty one.
Status ForEachEntry(const std::string& dir, const std::function<void(std::string_view)>& fn,
                    bool only_dirs = false) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("cannot list " + dir, errno);
  }
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d.get());
    if (e == nullptr) {
      if (errno != 0) return ErrnoStatus("cannot list " + dir, errno);
      return Status::Ok();
    }
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (only_dirs) {
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = ::stat(Join(dir, name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      }
      if (!is_dir) continue;
    }
    fn(name);
  }
}

// Calls fn(sub, dir, base) for every complete dump set aside under
// failed_root/<sub>/ (dir is that subdirectory).
Status ForEachFailedSidecar(
    const std::string& failed_root,
    const std::function<void(const std::string&, const std::string&, const std::string&)>& fn) {
  std::vector<std::string> subdirs;
  SLEUTH_RETURN_IF_ERROR(ForEachEntry(
      failed_root, [&](std::string_view name) { subdirs.emplace_back(name); }, true));
  for (const std::string& sub : subdirs) {
    std::string dir = Join(failed_root, sub);
    SLEUTH_RETURN_IF_ERROR(ForEachEntry(dir, [&](std::string_view name) {
      if (std::optional<std::string> base = SidecarBase(name)) fn(sub, dir, *base);
    }));
  }
  return Status::Ok();
}

// Writes `data` to `path` through a temporary name and rename(2), without
// fsync: the rename makes the write atomic for any crash of this process
// (kill -9 included); only a power loss could lose it, and then the dump is
// sent once more, which the event_id lets a backend de-duplicate. Skipping
// fsync keeps a marker at a few microseconds instead of milliseconds.
Status WriteSmallFileAtomic(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    SLEUTH_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Status s = ErrnoStatus("cannot write " + tmp, errno);
        Unlink(tmp);
        return s;
      }
      done += static_cast<size_t>(n);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = ErrnoStatus("cannot rename " + tmp + " to " + path, errno);
    Unlink(tmp);
    return s;
  }
  return Status::Ok();
}

Status CopyFile(const std::string& from, const std::string& to) {
  SLEUTH_ASSIGN_OR_RETURN(std::string data, ReadFile(from, size_t{1} << 30));
  return WriteSmallFileAtomic(to, data);
}

// Makes `to` another name of `from` (a hard link: no copy, and the data
// outlives the removal of `from`), copying where links are impossible.
Status LinkOrCopy(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return Status::Ok();
  int err = errno;
  if (err == EEXIST) {  // a leftover of an interrupted attempt
    Unlink(to);
    if (::link(from.c_str(), to.c_str()) == 0) return Status::Ok();
    err = errno;
  }
  if (err == ENOENT) return ErrnoStatus("cannot link " + from, err);
  if (err == EXDEV || err == EPERM || err == EMLINK || err == ENOTSUP || err == EACCES) {
    return CopyFile(from, to);
  }
  return ErrnoStatus("cannot link " + from + " to " + to, err);
}

Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) == 0) return Status::Ok();
  return ErrnoStatus("cannot move " + from + " to " + to, errno);
}

std::string StripExtension(std::string_view name) {
  for (std::string_view ext : {kProfileExt, kSidecarExt, kTextExt, kReasonExt, kDoneExt}) {
    if (EndsWith(name, ext)) return std::string(name.substr(0, name.size() - ext.size()));
  }
  return {};
}

Result<DumpKey> KeyIn(const std::string& dir, const std::string& base) {
  Result<DumpName> name = ParseDumpBase(base);
  if (name.ok()) return DumpKey{name->time, base};
  struct stat st;
  std::string sidecar = Join(dir, base + std::string(kSidecarExt));
  if (::stat(sidecar.c_str(), &st) != 0) return ErrnoStatus("cannot stat " + sidecar, errno);
  int64_t nanos = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  return DumpKey{FormatDumpTime(nanos), base};
}

uint64_t EntryBytes(const std::string& dir, std::string_view base) {
  std::string b(base);
  return SizeOf(Join(dir, b + std::string(kSidecarExt))) +
         SizeOf(Join(dir, b + std::string(kProfileExt))) +
         SizeOf(Join(dir, b + std::string(kTextExt))) +
         SizeOf(Join(dir, b + std::string(kReasonExt)));
}

// Removes an entry's files, the sidecar first so that it stops being a
// complete dump before anything else goes.
void RemoveEntry(const std::string& dir, std::string_view base) {
  std::string b(base);
  Unlink(Join(dir, b + std::string(kSidecarExt)));
  Unlink(Join(dir, b + std::string(kProfileExt)));
  Unlink(Join(dir, b + std::string(kTextExt)));
  Unlink(Join(dir, b + std::string(kReasonExt)));
}

}  // namespace

Result<DumpName> ParseDumpBase(std::string_view base) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t dot = base.find('.', start);
    parts.push_back(base.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  auto bad = [&](std::string_view what) {
    return InvalidArgument("dump name \"" + std::string(base) + "\" " + std::string(what) +
                           " (expected <service>.<pid>.<kind>.<YYYYMMDDTHHMMSS.mmmZ>.<event_id>)");
  };
  if (parts.size() < 6) return bad("has too few dot-separated fields");
  size_t n = parts.size();
  std::string_view event_id = parts[n - 1];
  std::string_view millis = parts[n - 2];
  std::string_view seconds = parts[n - 3];
  std::string_view kind = parts[n - 4];
  std::string_view pid = parts[n - 5];
  if (event_id.size() != 32 || !IsLowerHex(event_id)) {
    return bad("does not end in a 32-hex-digit event id");
  }
  if (millis.size() != 4 || !IsDigits(millis.substr(0, 3)) || millis[3] != 'Z' ||
      seconds.size() != 15 || seconds[8] != 'T' || !IsDigits(seconds.substr(0, 8)) ||
      !IsDigits(seconds.substr(9))) {
    return bad("has no UTC time");
  }
  if (kind.empty()) return bad("has an empty kind");
  if (!IsDigits(pid) || pid.size() > 10) return bad("has no pid");
  DumpName out;
  out.event_id = std::string(event_id);
  out.time = std::string(seconds) + "." + std::string(millis);
  out.kind = std::string(kind);
  out.pid = std::stoll(std::string(pid));
  size_t service_end = static_cast<size_t>(pid.data() - base.data()) - 1;
  out.service = std::string(base.substr(0, service_end));
  if (out.service.empty()) return bad("has an empty service");
  return out;
}

std::optional<std::string> SidecarBase(std::string_view file_name) {
  if (file_name.empty() || file_name[0] == '.') return std::nullopt;
  if (!EndsWith(file_name, kSidecarExt)) return std::nullopt;
  if (file_name.find(".tmp") != std::string_view::npos) return std::nullopt;
  std::string_view base = file_name.substr(0, file_name.size() - kSidecarExt.size());
  if (base.empty()) return std::nullopt;
  return std::string(base);
}

std::string FormatDumpTime(int64_t unix_nanos) {
  if (unix_nanos < 0) unix_nanos = 0;
  time_t seconds = static_cast<time_t>(unix_nanos / 1'000'000'000);
  int millis = static_cast<int>((unix_nanos / 1'000'000) % 1000);
  struct tm tm;
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

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
    : dir_(std::move(dump_dir)), sinks_(std::move(sinks)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

std::string Spool::ProfilePath(std::string_view base) const {
  return Join(dir_, std::string(base) + std::string(kProfileExt));
}
std::string Spool::SidecarPath(std::string_view base) const {
  return Join(dir_, std::string(base) + std::string(kSidecarExt));
}
std::string Spool::TextPath(std::string_view base) const {
  return Join(dir_, std::string(base) + std::string(kTextExt));
}
std::string Spool::StateDir() const {
  return Join(dir_, kStateDirName);
}
std::string Spool::DoneMarkerPath(size_t sink, std::string_view base) const {
  return Join(Join(StateDir(), sinks_[sink]), std::string(base) + std::string(kDoneExt));
}
std::string Spool::FailedDir(std::string_view sink_or_invalid) const {
  return Join(Join(dir_, kFailedDirName), sink_or_invalid);
}

Result<DumpKey> Spool::KeyOf(const std::string& base) const {
  return KeyIn(dir_, base);
}

bool Spool::IsPending(size_t sink, std::string_view base) const {
  if (Exists(DoneMarkerPath(sink, base))) return false;
  return !Exists(Join(FailedDir(sinks_[sink]), std::string(base) + std::string(kSidecarExt)));
}

bool Spool::IsPendingForAny(std::string_view base) const {
  for (size_t i = 0; i < sinks_.size(); ++i) {
    if (IsPending(i, base)) return true;
  }
  return false;
}

uint64_t Spool::DumpBytes(std::string_view base) const {
  return EntryBytes(dir_, base);
}

Status Spool::MarkDelivered(size_t sink, std::string_view base, std::string_view note) {
  std::string path = DoneMarkerPath(sink, base);
  Status s = WriteSmallFileAtomic(path, note);
  if (s.code() == StatusCode::kNotFound) {
    SLEUTH_RETURN_IF_ERROR(MakeDirs(Join(StateDir(), sinks_[sink]), 0700));
    s = WriteSmallFileAtomic(path, note);
  }
  return s.ok() ? s : s.WithContext("cannot record the delivery of " + std::string(base));
}

Status Spool::MarkRejected(size_t sink, std::string_view base_view, std::string_view reason) {
  std::string base(base_view);
  std::string dir = FailedDir(sinks_[sink]);
  SLEUTH_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  auto into = [&](std::string_view ext) { return Join(dir, base + std::string(ext)); };
  Status s = LinkOrCopy(ProfilePath(base), into(kProfileExt));
  if (!s.ok()) return s.code() == StatusCode::kNotFound ? NotFound(base + " vanished") : s;
  if (Exists(TextPath(base))) {
    Status text = LinkOrCopy(TextPath(base), into(kTextExt));
    if (!text.ok() && text.code() != StatusCode::kNotFound) return text;
  }
  SLEUTH_RETURN_IF_ERROR(WriteSmallFileAtomic(into(kReasonExt), reason));
  // The sidecar last: failed/<sink>/<base>.json is what makes the entry
  // complete, exactly as in dump_dir.
  s = LinkOrCopy(SidecarPath(base), into(kSidecarExt));
  if (!s.ok()) {
    RemoveEntry(dir, base);
    return s.code() == StatusCode::kNotFound ? NotFound(base + " vanished") : s;
  }
  return Status::Ok();
}

Status Spool::SetAsideInvalid(std::string_view base_view, std::string_view reason) {
  std::string base(base_view);
  std::string dir = FailedDir(kInvalidDir);
  SLEUTH_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  auto into = [&](std::string_view ext) { return Join(dir, base + std::string(ext)); };
  Status s = RenameFile(ProfilePath(base), into(kProfileExt));
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  s = RenameFile(TextPath(base), into(kTextExt));
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  SLEUTH_RETURN_IF_ERROR(WriteSmallFileAtomic(into(kReasonExt), reason));
  s = RenameFile(SidecarPath(base), into(kSidecarExt));
  if (!s.ok()) return s.code() == StatusCode::kNotFound ? NotFound(base + " vanished") : s;
  return Status::Ok();
}

Result<uint64_t> Spool::RequeueFailed() {
  std::string failed_root = Join(dir_, kFailedDirName);
  std::vector<std::string> subdirs;
  SLEUTH_RETURN_IF_ERROR(ForEachEntry(
      failed_root, [&](std::string_view name) { subdirs.emplace_back(name); }, true));
  uint64_t requeued = 0;
  for (const std::string& sub : subdirs) {
    std::string dir = Join(failed_root, sub);
    for (;;) {
      std::vector<std::string> batch;
      SLEUTH_RETURN_IF_ERROR(ForEachEntry(dir, [&](std::string_view name) {
        if (batch.size() >= kRequeueBatch) return;
        if (std::optional<std::string> base = SidecarBase(name)) batch.push_back(*base);
      }));
      if (batch.empty()) break;
      for (const std::string& base : batch) {
        auto in_failed = [&](std::string_view ext) { return Join(dir, base + std::string(ext)); };
        if (Exists(SidecarPath(base))) {
          // Still in the queue directory: dropping the failed/ copy is all
          // it takes to make it pending for this sink again.
          RemoveEntry(dir, base);
        } else {
          Status s = RenameFile(in_failed(kProfileExt), ProfilePath(base));
          if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
          s = RenameFile(in_failed(kTextExt), TextPath(base));
          if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
          SLEUTH_RETURN_IF_ERROR(RenameFile(in_failed(kSidecarExt), SidecarPath(base)));
          Unlink(in_failed(kReasonExt));
        }
        if (Exists(in_failed(kSidecarExt))) {
          return IoError("cannot requeue " + in_failed(kSidecarExt) + ": it could not be removed");
        }
        ++requeued;
      }
    }
  }
  return requeued;
}

Status Spool::ForEachDump(const std::function<void(const std::string& base)>& fn) const {
  return ForEachEntry(dir_, [&](std::string_view name) {
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
  std::string failed_root = Join(dir_, kFailedDirName);
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
      uint64_t bytes = DumpBytes(base);
      Result<DumpKey> key = KeyOf(base);
      if (bytes == 0 || !key.ok()) return;  // vanished meanwhile
      usage.pending_dumps++;
      usage.pending_bytes += bytes;
      consider(Candidate{std::move(*key), {}, bytes});
    }));
    SLEUTH_RETURN_IF_ERROR(ForEachFailedSidecar(
        failed_root, [&](const std::string& sub, const std::string& dir, const std::string& base) {
          uint64_t bytes = EntryBytes(dir, base);
          Result<DumpKey> key = KeyIn(dir, base);
          if (!key.ok()) return;
          usage.failed_dumps++;
          usage.failed_bytes += bytes;
          consider(Candidate{std::move(*key), sub, bytes});
        }));
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
        RemoveEntry(dir_, c.key.base);
        for (size_t i = 0; i < sinks_.size(); ++i) Unlink(DoneMarkerPath(i, c.key.base));
        usage.pending_dumps--;
        usage.pending_bytes -= std::min(usage.pending_bytes, c.bytes);
        on_evict(Eviction{c.key, "queue", c.bytes});
      } else {
        RemoveEntry(Join(failed_root, c.failed_subdir), c.key.base);
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
  std::string failed_root = Join(dir_, kFailedDirName);
  std::vector<std::string> failed_subdirs;
  SLEUTH_RETURN_IF_ERROR(ForEachEntry(
      failed_root, [&](std::string_view name) { failed_subdirs.emplace_back(name); }, true));
  auto exists_anywhere = [&](const std::string& base) {
    if (Exists(SidecarPath(base))) return true;
    for (const std::string& sub : failed_subdirs) {
      if (Exists(Join(Join(failed_root, sub), base + std::string(kSidecarExt)))) return true;
    }
    return false;
  };
  std::vector<std::string> state_subdirs;
  SLEUTH_RETURN_IF_ERROR(ForEachEntry(
      StateDir(), [&](std::string_view name) { state_subdirs.emplace_back(name); }, true));
  for (const std::string& sub : state_subdirs) {
    std::string dir = Join(StateDir(), sub);
    SLEUTH_RETURN_IF_ERROR(ForEachEntry(dir, [&](std::string_view name) {
      if (name.find(".tmp.") != std::string_view::npos) {
        Unlink(Join(dir, name));
      } else if (EndsWith(name, kDoneExt)) {
        std::string base(name.substr(0, name.size() - kDoneExt.size()));
        if (!exists_anywhere(base)) Unlink(Join(dir, name));
      }
    }));
  }
  for (const std::string& sub : failed_subdirs) {
    std::string dir = Join(failed_root, sub);
    SLEUTH_RETURN_IF_ERROR(ForEachEntry(dir, [&](std::string_view name) {
      if (name.find(".tmp.") != std::string_view::npos) {
        Unlink(Join(dir, name));
        return;
      }
      std::string base = StripExtension(name);
      if (base.empty() || EndsWith(name, kSidecarExt)) return;
      if (!Exists(Join(dir, base + std::string(kSidecarExt)))) Unlink(Join(dir, name));
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
  std::string failed_root = Join(dir_, kFailedDirName);
  return ForEachFailedSidecar(
      failed_root, [&](const std::string& sub, const std::string& dir, const std::string& base) {
        Result<std::string> reason = ReadFile(Join(dir, base + std::string(kReasonExt)), 4096);
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
    : fd_(std::exchange(other.fd_, -1)), key_(std::move(other.key_)) {}

SpoolLock& SpoolLock::operator=(SpoolLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
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
  ::close(fd_);  // releases the record lock
  fd_ = -1;
}

Result<SpoolLock> SpoolLock::TryAcquire(const std::string& dump_dir) {
  std::string state_dir = Join(dump_dir, kStateDirName);
  SLEUTH_RETURN_IF_ERROR(MakeDirs(state_dir, 0700));
  char resolved[PATH_MAX];
  if (::realpath(state_dir.c_str(), resolved) == nullptr) {
    return ErrnoStatus("cannot resolve " + state_dir, errno);
  }
  std::string key = resolved;
  // POSIX record locks are per process, so a second Uploader of this process
  // is refused here, and before any open(): closing any descriptor of the
  // lock file would drop the lock the first one holds.
  std::lock_guard<std::mutex> lock(g_locked_mu);
  if (auto it = LockedDirs().find(key); it != LockedDirs().end() && it->second == ::getpid()) {
    return Status(StatusCode::kBusy,
                  "another uploader in this process is already shipping " + dump_dir);
  }
  std::string path = Join(state_dir, "lock");
  SLEUTH_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_RDWR | O_CREAT, 0600));
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
  out.key_ = std::move(key);
  return out;
}

}  // namespace sleuth::uploader
