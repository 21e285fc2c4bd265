#include "sleuth/common/log.h"

#include "sleuth/common/owned_fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace sleuth::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_fd{STDERR_FILENO};
// The log file's identity and path, so that a host that closed our fd (and
// whose next open() took the number) never gets our lines in its file: the
// line goes to a fresh descriptor of the log file instead. Written by
// SetFile() only, which callers do not race with Write() (it is called at
// start and on reconfiguration).
FdIdentity g_identity;
char g_path[4096];
std::atomic<WriteFn> g_forward_write{nullptr};
std::atomic<EnabledFn> g_forward_enabled{nullptr};
}  // namespace

void ForwardTo(WriteFn write, EnabledFn enabled) {
  g_forward_enabled.store(enabled);
  g_forward_write.store(write);
}

Result<Level> ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  return InvalidArgument("unknown log level \"" + std::string(name) +
                         "\" (expected debug, info, warn, error or off)");
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
    case Level::kOff: return "off";
  }
  return "?";
}

Status SetFile(const std::string& path) {
  if (path.size() >= sizeof g_path)
    return InvalidArgument("log file path is longer than " + std::to_string(sizeof g_path - 1) +
                           " bytes");
  int fd = STDERR_FILENO;
  FdIdentity identity;
  if (!path.empty()) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("cannot open log file " + path, errno);
    FdIdentity::Of(fd, &identity);
  }
  FdIdentity old_identity = g_identity;
  if (!path.empty()) std::memcpy(g_path, path.c_str(), path.size() + 1);
  g_identity = identity;
  int old = g_fd.exchange(fd);
  // A racing writer may still hold the old fd number; closing it is benign
  // at worst (one lost line), and files are rarely switched after start. A
  // number the host has taken over is not ours to close.
  if (old != STDERR_FILENO && old != fd && old_identity.Matches(old)) ::close(old);
  return Status::Ok();
}

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }
Level GetLevel() { return static_cast<Level>(g_level.load()); }
bool Enabled(Level level) noexcept {
  if (EnabledFn forward = g_forward_enabled.load(std::memory_order_relaxed)) return forward(level);
  return level != Level::kOff && static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

// Formats into a buffer on the stack: no allocation, so logging works (and
// cannot throw std::bad_alloc into the host) when the host has exhausted
// its memory. Longer messages are cut, and say so.
void Write(Level level, std::string_view message) noexcept {
  if (WriteFn forward = g_forward_write.load(std::memory_order_relaxed)) {
    forward(level, message);
    return;
  }
  if (!Enabled(level)) return;
  char line[4096];
  constexpr std::string_view kCut = " [...]\n";
  size_t used = 0;
  auto append = [&](std::string_view text) {
    size_t room = sizeof line - kCut.size() - used;
    size_t n = text.size() < room ? text.size() : room;
    std::memcpy(line + used, text.data(), n);
    used += n;
    return n == text.size();
  };
  char pid[16];
  auto [end, ec] = std::to_chars(pid, pid + sizeof pid, static_cast<long>(::getpid()));
  (void)ec;
  append("sleuth[");
  append(std::string_view(pid, static_cast<size_t>(end - pid)));
  append("] ");
  append(LevelName(level));
  append(": ");
  if (append(message)) {
    line[used++] = '\n';
  } else {
    std::memcpy(line + used, kCut.data(), kCut.size());
    used += kCut.size();
  }
  int fd = g_fd.load();
  if (fd != STDERR_FILENO && !g_identity.Matches(fd)) {
    // Our log file's descriptor was closed or taken by the host: write to
    // a new one. The old number is the host's now: never close it.
    int reopened = ::open(g_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (reopened < 0) return;
    FdIdentity::Of(reopened, &g_identity);
    if (!g_fd.compare_exchange_strong(fd, reopened)) {
      ::close(reopened);
      return;
    }
    fd = reopened;
  }
  size_t done = 0;
  while (done < used) {
    ssize_t n = ::write(fd, line + done, used - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to report a failing log; drop the line
    done += static_cast<size_t>(n);
  }
}

}  // namespace sleuth::log
