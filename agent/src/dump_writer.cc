#include "sleuth/agent/dump_writer.h"

#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "sleuth/common/files.h"
#include "sleuth/common/log.h"
#include "sleuth/uploader/spool.h"

namespace sleuth::agent {
namespace {

constexpr const char* kProfileSuffix = ".pb.gz";
constexpr const char* kSidecarSuffix = ".json";
constexpr const char* kTextSuffix = ".txt";

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint64_t FileBytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::string SafeServiceName(const std::string& service) {
  std::string out;
  for (char c : service) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    out += ok ? c : '_';
  }
  return out.empty() ? "unknown" : out;
}

}  // namespace

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
    // fall back to time and pid so ids stay unique per host.
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t mix = static_cast<uint64_t>(ts.tv_nsec) ^ (static_cast<uint64_t>(ts.tv_sec) << 20) ^
                   (static_cast<uint64_t>(::getpid()) << 44);
    for (size_t i = 0; i < sizeof bytes; i++)
      bytes[i] ^= static_cast<unsigned char>(mix >> ((i % 8) * 8));
  }
  static const char* kHex = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

static std::string Rfc3339(int64_t unix_nanos) {
  time_t secs = static_cast<time_t>(unix_nanos / 1'000'000'000);
  int millis = static_cast<int>((unix_nanos / 1'000'000) % 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string DumpBaseName(const DumpMeta& meta) {
  return SafeServiceName(meta.service) + "." + std::to_string(meta.pid) + "." + meta.kind + "." +
         uploader::FormatDumpTime(meta.start_time_unix_nanos) + "." + meta.event_id;
}

std::string SidecarJson(const DumpMeta& meta, const std::string& profile_file,
                        uint64_t profile_bytes) {
  using nlohmann::json;
  json j;
  j["event_id"] = meta.event_id;
  j["kind"] = meta.kind;
  j["reason"] = meta.reason;
  j["metric"] = meta.metric;
  j["value"] = meta.value ? json(*meta.value) : json(nullptr);
  j["average"] = meta.average ? json(*meta.average) : json(nullptr);
  if (meta.thresholds) {
    j["thresholds"] = {{"min", meta.thresholds->min},
                       {"diff", meta.thresholds->diff},
                       {"abs", meta.thresholds->abs},
                       {"max", meta.thresholds->max},
                       {"cooldown_seconds", meta.thresholds->cooldown_seconds}};
  } else {
    j["thresholds"] = nullptr;
  }
  j["limits"] = {{"cpu_cores", meta.cpu_limit_cores},
                 {"cpu_source", meta.cpu_limit_source},
                 {"memory_bytes", meta.memory_limit_bytes},
                 {"memory_source", meta.memory_limit_source}};
  j["pid"] = meta.pid;
  j["hostname"] = meta.hostname;
  j["service"] = meta.service;
  j["labels"] = meta.labels;
  j["cmdline"] = meta.cmdline;
  j["executable"] = meta.executable;
  j["build_id"] = meta.build_id;
  j["start_time"] = Rfc3339(meta.start_time_unix_nanos);
  j["start_time_unix_nanos"] = meta.start_time_unix_nanos;
  j["duration_nanos"] = meta.duration_nanos;
  j["comment"] = meta.comment;
  j["profile_file"] = profile_file;
  j["profile_bytes"] = profile_bytes;
  j["notes"] = meta.notes;
  // Replace invalid UTF-8 (a cmdline can hold anything) instead of throwing.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

DumpWriter::DumpWriter(std::string dir, int max_dumps, uint64_t max_dump_bytes)
    : dir_(std::move(dir)), max_dumps_(max_dumps), max_dump_bytes_(max_dump_bytes) {}

Status DumpWriter::Prepare() {
  std::lock_guard<std::mutex> lock(mu_);
  SLEUTH_RETURN_IF_ERROR(MakeDirs(dir_, 0700).WithContext("agent.dump_dir"));
  auto names = ListDir(dir_);
  if (!names.ok()) return names.status();
  for (const auto& name : *names) {
    size_t tmp = name.find(".tmp.");
    if (tmp != std::string::npos) {
      // Another live process (a sibling sharing the directory, the parent
      // of a fork) may be writing it right now.
      pid_t writer = static_cast<pid_t>(std::atoi(name.c_str() + tmp + 5));
      if (writer > 0 && (::kill(writer, 0) == 0 || errno == EPERM)) continue;
      std::string path = dir_ + "/" + name;
      if (::unlink(path.c_str()) == 0)
        log::Info("removed partial file " + path + " left by an earlier run");
    }
  }
  return Status::Ok();
}

Result<WrittenDump> DumpWriter::Write(const DumpMeta& meta, const std::string& profile_gz,
                                      const std::optional<std::string>& text) {
  WrittenDump out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.base = dir_ + "/" + DumpBaseName(meta);
    out.profile_path = out.base + kProfileSuffix;
    out.sidecar_path = out.base + kSidecarSuffix;
    SLEUTH_RETURN_IF_ERROR(WriteFileAtomic(out.profile_path, profile_gz, 0600));
    out.bytes += profile_gz.size();
    if (text) {
      SLEUTH_RETURN_IF_ERROR(WriteFileAtomic(out.base + kTextSuffix, *text, 0600));
      out.bytes += text->size();
    }
    std::string profile_file = out.profile_path.substr(dir_.size() + 1);
    std::string sidecar = SidecarJson(meta, profile_file, profile_gz.size());
    // Last: the sidecar's arrival marks the dump complete.
    if (Status s = WriteFileAtomic(out.sidecar_path, sidecar, 0600); !s.ok()) {
      // Without its sidecar nothing would ever collect the rest.
      ::unlink(out.profile_path.c_str());
      ::unlink((out.base + kTextSuffix).c_str());
      return s;
    }
    out.bytes += sidecar.size();
  }
  EnforceRetention();
  return out;
}

int DumpWriter::EnforceRetention() {
  std::lock_guard<std::mutex> lock(mu_);
  auto names = ListDir(dir_);
  if (!names.ok()) return 0;
  struct Entry {
    std::string base;
    int64_t mtime_ns;
    uint64_t bytes;
  };
  std::vector<Entry> dumps;
  for (const auto& name : *names) {
    if (!EndsWith(name, kSidecarSuffix) || name.find(".tmp.") != std::string::npos) continue;
    std::string base_name = name.substr(0, name.size() - strlen(kSidecarSuffix));
    if (exempt_ && exempt_(base_name)) continue;
    std::string base = dir_ + "/" + base_name;
    struct stat st;
    if (::stat((base + kSidecarSuffix).c_str(), &st) != 0) continue;
    uint64_t bytes = static_cast<uint64_t>(st.st_size) + FileBytes(base + kProfileSuffix) +
                     FileBytes(base + kTextSuffix);
    dumps.push_back({base, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec, bytes});
  }
  // Oldest first; the name (which starts with the time) breaks ties.
  std::sort(dumps.begin(), dumps.end(), [](const Entry& a, const Entry& b) {
    return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.base < b.base;
  });
  uint64_t total = 0;
  for (const auto& d : dumps) total += d.bytes;
  int removed = 0;
  size_t count = dumps.size();
  for (const auto& d : dumps) {
    bool over_count = max_dumps_ > 0 && count > static_cast<size_t>(max_dumps_);
    bool over_bytes = max_dump_bytes_ > 0 && total > max_dump_bytes_;
    if (!over_count && !over_bytes) break;
    // Sidecar first: a half-removed dump must not look complete.
    ::unlink((d.base + kSidecarSuffix).c_str());
    ::unlink((d.base + kProfileSuffix).c_str());
    ::unlink((d.base + kTextSuffix).c_str());
    log::Info("retention: removed dump " + d.base + " (" + std::to_string(d.bytes) + " bytes; " +
              (over_count ? "more than agent.max_dumps=" + std::to_string(max_dumps_)
                          : "more than agent.max_dump_bytes=" + std::to_string(max_dump_bytes_)) +
              ")");
    count--;
    total -= d.bytes;
    removed++;
  }
  return removed;
}

}  // namespace sleuth::agent
