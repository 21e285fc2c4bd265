#include "sleuth/dumps/layout.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sleuth/dumps/dump_meta.h"

namespace sleuth::dumps {
namespace {

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

// Parses a decimal number of at most 19 digits.
std::optional<uint64_t> Decimal(std::string_view s) {
  if (!IsDigits(s) || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) v = v * 10 + static_cast<uint64_t>(c - '0');
  return v;
}

constexpr size_t kMaxServiceChars = 64;

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
  out.pid = static_cast<int64_t>(*Decimal(pid));
  size_t service_end = static_cast<size_t>(pid.data() - base.data()) - 1;
  out.service = std::string(base.substr(0, service_end));
  if (out.service.empty()) return bad("has an empty service");
  return out;
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

std::string SafeServiceName(std::string_view service) {
  std::string out;
  for (char c : service.substr(0, kMaxServiceChars)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    out += ok ? c : '_';
  }
  return out.empty() ? "unknown" : out;
}

std::string DumpBaseName(const DumpMeta& meta) {
  return SafeServiceName(meta.service) + "." + std::to_string(meta.pid) + "." + meta.kind + "." +
         FormatDumpTime(meta.start_time_unix_nanos) + "." + meta.event_id;
}

std::string NewEventId() {
  unsigned char bytes[16] = {};
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < sizeof bytes) {
    // getrandom cannot fail on Linux >= 3.17 short of a seccomp filter;
    // fall back to time, pid and a counter so ids stay unique per host.
    static unsigned counter = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t mix = static_cast<uint64_t>(ts.tv_nsec) ^ (static_cast<uint64_t>(ts.tv_sec) << 20) ^
                   (static_cast<uint64_t>(::getpid()) << 44) ^ (uint64_t{++counter} << 32);
    for (size_t i = 0; i < sizeof bytes; i++)
      bytes[i] ^= static_cast<unsigned char>(mix >> ((i % 8) * 8));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

std::optional<std::string> SidecarBase(std::string_view file_name) {
  if (file_name.empty() || file_name[0] == '.') return std::nullopt;
  if (!EndsWith(file_name, kSidecarExt)) return std::nullopt;
  if (file_name.find(".tmp") != std::string_view::npos) return std::nullopt;
  std::string_view base = file_name.substr(0, file_name.size() - kSidecarExt.size());
  if (base.empty()) return std::nullopt;
  return std::string(base);
}

std::optional<std::string> PayloadBase(std::string_view file_name) {
  if (file_name.empty() || file_name[0] == '.') return std::nullopt;
  if (file_name.find(kScratchMark) != std::string_view::npos) return std::nullopt;
  for (std::string_view ext : {kProfileExt, kTextExt}) {
    if (EndsWith(file_name, ext) && file_name.size() > ext.size()) {
      return std::string(file_name.substr(0, file_name.size() - ext.size()));
    }
  }
  return std::nullopt;
}

std::optional<ScratchWriter> ScratchWriterOf(std::string_view name) {
  if (name.substr(0, kCpuScratchPrefix.size()) == kCpuScratchPrefix && EndsWith(name, ".prof")) {
    std::string_view rest = name.substr(kCpuScratchPrefix.size());
    std::optional<uint64_t> pid = Decimal(rest.substr(0, rest.find('.')));
    if (!pid || *pid == 0 || *pid > 0x7fffffff) return ScratchWriter{};
    return ScratchWriter{static_cast<pid_t>(*pid), 0};
  }
  size_t mark = name.rfind(kScratchMark);
  if (mark == std::string_view::npos) return std::nullopt;
  std::string_view rest = name.substr(mark + kScratchMark.size());
  std::string_view writer = rest.substr(0, rest.find('.'));
  std::string_view pid_text = writer.substr(0, writer.find('-'));
  ScratchWriter out;
  std::optional<uint64_t> pid = Decimal(pid_text);
  if (!pid || *pid == 0 || *pid > 0x7fffffff) return out;  // a scratch file of unknown writer
  out.pid = static_cast<pid_t>(*pid);
  if (size_t dash = writer.find('-'); dash != std::string_view::npos) {
    out.start_ticks = Decimal(writer.substr(dash + 1)).value_or(0);
  }
  return out;
}

std::string DefaultDumpDir() {
  uid_t uid = ::geteuid();
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && xdg[0] == '/') {
    struct stat st;
    if (::stat(xdg, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid &&
        (st.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
      std::string dir = xdg;
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      return dir + "/sleuth";
    }
  }
  return "/var/tmp/sleuth-" + std::to_string(uid);
}

std::string ResolveDumpDir(std::string_view configured) {
  return configured.empty() ? DefaultDumpDir() : std::string(configured);
}

}  // namespace sleuth::dumps
