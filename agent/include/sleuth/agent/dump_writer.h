// Writes dumps into the dump directory: the gzipped pprof, its JSON sidecar
// and (for thread dumps) a text rendering, each to a temporary name then
// renamed, mode 0600, in a directory created 0700. The sidecar is renamed
// last, so `<base>.json` existing means the dump is complete: that is the
// contract with the uploader, which treats the directory as its queue.
// Also enforces retention (agent.max_dumps / agent.max_dump_bytes).
// Thread-safety: thread safe (one mutex; writes are rare).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sleuth/common/status.h"

namespace sleuth::agent {

// What the sidecar says about one dump.
struct DumpMeta {
  std::string event_id;  // 32 lowercase hex chars, see NewEventId()
  std::string kind;      // cpu | heap | memory | threads
  std::string reason;    // abs | diff | manual | alert
  std::string metric;    // cpu | memory | threads | heap, or "" for manual dumps
  std::optional<double> value;
  std::optional<double> average;
  struct Thresholds {
    double min = 0, diff = 0, abs = 0, max = 0;
    double cooldown_seconds = 0;
  };
  std::optional<Thresholds> thresholds;
  double cpu_limit_cores = 0;
  std::string cpu_limit_source;
  uint64_t memory_limit_bytes = 0;
  std::string memory_limit_source;
  pid_t pid = 0;
  std::string hostname;
  std::string service;
  std::map<std::string, std::string> labels;
  std::vector<std::string> cmdline;
  std::string executable;
  std::string build_id;
  int64_t start_time_unix_nanos = 0;
  int64_t duration_nanos = 0;
  std::string comment;             // free text (the manual/alert reason)
  std::vector<std::string> notes;  // e.g. "the host does not run tcmalloc: ..."
};

// A new random event id: 128 bits from getrandom(2) as 32 hex chars.
std::string NewEventId();

// The sidecar's JSON text (pure).
std::string SidecarJson(const DumpMeta& meta, const std::string& profile_file,
                        uint64_t profile_bytes);

// `<service>.<pid>.<kind>.<time>.<event_id>` with characters of the service
// name other than [A-Za-z0-9_-] replaced by '_', and the time formatted by
// uploader::FormatDumpTime (the uploader parses these names) (pure).
std::string DumpBaseName(const DumpMeta& meta);

struct WrittenDump {
  std::string base;  // path without extension
  std::string profile_path;
  std::string sidecar_path;
  uint64_t bytes = 0;  // all files of the dump
};

class DumpWriter {
 public:
  DumpWriter(std::string dir, int max_dumps, uint64_t max_dump_bytes);

  // Creates the directory (0700) and removes temporary files left by a
  // process that died mid-write (`*.tmp.<pid>` whose pid no longer exists).
  Status Prepare();

  // Writes one dump, then applies retention.
  Result<WrittenDump> Write(const DumpMeta& meta, const std::string& profile_gz,
                            const std::optional<std::string>& text);

  // Removes the oldest complete dumps until at most max_dumps remain and
  // they total at most max_dump_bytes; logs each removal. Returns how many
  // dumps it removed.
  int EnforceRetention();

  const std::string& dir() const { return dir_; }

  // Dumps for which `exempt(base_name)` is true (e.g. still waiting for
  // upload) are never removed by retention. Called under the writer's lock.
  void SetRetentionExemption(std::function<bool(const std::string& base_name)> exempt) {
    std::lock_guard<std::mutex> lock(mu_);
    exempt_ = std::move(exempt);
  }

 private:
  std::function<bool(const std::string&)> exempt_;
  std::string dir_;
  int max_dumps_;
  uint64_t max_dump_bytes_;
  std::mutex mu_;
};

}  // namespace sleuth::agent
