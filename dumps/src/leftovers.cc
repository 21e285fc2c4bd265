#include "sleuth/dumps/leftovers.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "sleuth/common/log.h"
#include "sleuth/dumps/writer.h"

namespace sleuth::dumps {
namespace {

int64_t MtimeNanos(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// rename(2) updates ctime: a payload moved in a moment ago (the uploader
// requeueing a dump from failed/, its sidecar to follow) is left alone.
constexpr int64_t kRecentlyMovedNanos = 2'000'000'000;
int64_t CtimeNanos(const struct stat& st) {
  return int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
}

int64_t BootTimeUnixNanos() {
  struct timespec real, boot;
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  return (int64_t{real.tv_sec} - boot.tv_sec) * 1'000'000'000 + (real.tv_nsec - boot.tv_nsec);
}

}  // namespace

bool WriterAlive(const ScratchWriter& writer, const struct stat& st) {
  if (writer.pid <= 0) return false;
  if (::kill(writer.pid, 0) != 0 && errno == ESRCH) return false;
  uint64_t start = ProcessStartTicks(writer.pid);
  if (start == 0) return ::kill(writer.pid, 0) == 0 || errno == EPERM;  // no /proc: trust kill
  if (writer.start_ticks != 0) return start == writer.start_ticks;
  // No start time in the name: a process that started after the file was
  // last written cannot be its writer. One second of slack for the
  // rounding of boot time and ticks.
  long hz = ::sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  int64_t started = BootTimeUnixNanos() + static_cast<int64_t>(start) * (1'000'000'000 / hz);
  return started <= MtimeNanos(st) + 1'000'000'000;
}

int RemoveLeftovers(const DumpDir& dir, int64_t now_unix_nanos) {
  std::vector<std::string> doomed;
  Status listed = dir.ForEachEntry([&](std::string_view name, bool is_dir) {
    if (is_dir) return;
    std::string n(name);
    std::optional<ScratchWriter> writer = ScratchWriterOf(n);
    std::optional<std::string> base = writer ? std::nullopt : PayloadBase(n);
    if (!writer && !base) return;
    Result<struct stat> st = dir.Stat(n);
    if (!st.ok()) return;
    if (writer) {
      if (!WriterAlive(*writer, *st)) doomed.push_back(std::move(n));
      return;
    }
    if (IsComplete(dir, *base)) return;
    bool old = now_unix_nanos - MtimeNanos(*st) >
               std::chrono::nanoseconds(kOrphanAge).count();
    Result<DumpName> parsed = ParseDumpBase(*base);
    ScratchWriter payload_writer;
    if (parsed.ok() && parsed->pid > 0 && parsed->pid <= 0x7fffffff) {
      payload_writer.pid = static_cast<pid_t>(parsed->pid);
    }
    bool settled = now_unix_nanos - CtimeNanos(*st) >= kRecentlyMovedNanos;
    if (settled && (old || !WriterAlive(payload_writer, *st))) doomed.push_back(std::move(n));
  });
  if (!listed.ok()) {
    log::Warn("cannot look for leftovers: " + listed.message());
    return 0;
  }
  int removed = 0;
  for (const std::string& name : doomed) {
    // Looked at again just before: the writer may have finished meanwhile.
    if (std::optional<std::string> base = PayloadBase(name); base && IsComplete(dir, *base)) {
      continue;
    }
    if (dir.Remove(name).ok()) {
      removed++;
      log::Info("removed " + dir.PathOf(name) + ", left by a process that died while writing it");
    }
  }
  return removed;
}

int RemoveLeftovers(const DumpDir& dir) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return RemoveLeftovers(dir, int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec);
}

}  // namespace sleuth::dumps
