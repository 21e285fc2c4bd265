#include "sleuth/common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace sleuth::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_fd{STDERR_FILENO};
}  // namespace

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
  int fd = STDERR_FILENO;
  if (!path.empty()) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("cannot open log file " + path, errno);
  }
  int old = g_fd.exchange(fd);
  // A racing writer may still hold the old fd number; closing it is benign
  // at worst (one lost line), and files are rarely switched after start.
  if (old != STDERR_FILENO) ::close(old);
  return Status::Ok();
}

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }
Level GetLevel() { return static_cast<Level>(g_level.load()); }
bool Enabled(Level level) {
  return level != Level::kOff && static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

// Formats into a buffer on the stack: no allocation, so logging works (and
// cannot throw std::bad_alloc into the host) when the host has exhausted
// its memory. Longer messages are cut, and say so.
void Write(Level level, std::string_view message) noexcept {
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
  size_t done = 0;
  while (done < used) {
    ssize_t n = ::write(fd, line + done, used - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to report a failing log; drop the line
    done += static_cast<size_t>(n);
  }
}

}  // namespace sleuth::log
