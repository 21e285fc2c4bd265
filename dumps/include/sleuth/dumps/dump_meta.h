// What a dump's JSON sidecar (<base>.json) says about it: the one type the
// agent writes and the uploader reads. SidecarJson() and ParseSidecar()
// round-trip every field. Pure; thread safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/status.h"

namespace sleuth::dumps {

struct DumpMeta {
  std::string event_id;  // 32 lowercase hex digits, see NewEventId()
  std::string kind;      // cpu | heap | memory | threads
  std::string reason;    // abs | diff | manual | alert
  std::string metric;    // cpu | memory | threads | heap, or "" for manual dumps
  std::optional<double> value;
  std::optional<double> average;
  struct Thresholds {
    double min = 0, diff = 0, abs = 0, max = 0;
    double cooldown_seconds = 0;
    bool operator==(const Thresholds&) const = default;
  };
  std::optional<Thresholds> thresholds;
  double cpu_limit_cores = 0;
  std::string cpu_limit_source;
  uint64_t memory_limit_bytes = 0;
  std::string memory_limit_source;
  int64_t pid = 0;
  std::string hostname;
  std::string service;
  std::map<std::string, std::string> labels;  // the agent's extra labels
  std::vector<std::string> cmdline;
  std::string executable;
  std::string build_id;
  int64_t start_time_unix_nanos = 0;
  int64_t duration_nanos = 0;
  std::string comment;             // free text (the manual/alert reason)
  std::vector<std::string> notes;  // e.g. "the host does not run tcmalloc: ..."
  // Filled in by the writer: the profile's file name and size.
  std::string profile_file;
  uint64_t profile_bytes = 0;

  bool operator==(const DumpMeta&) const = default;
};

// Sidecars larger than this are refused (a real one is a few KiB).
inline constexpr size_t kMaxSidecarBytes = 1 << 20;

// The sidecar's JSON text. Invalid UTF-8 (a cmdline can hold anything) is
// replaced, never thrown.
std::string SidecarJson(const DumpMeta& meta);

// Parses a sidecar. Errors name the field and what was expected, e.g.
//   field "event_id" must be 32 lowercase hex digits
// Required: event_id, kind, reason, service, pid, start_time_unix_nanos;
// every other field may be missing (older or hand-written sidecars) and then
// keeps its default. Unknown fields are ignored.
[[nodiscard]] Result<DumpMeta> ParseSidecar(std::string_view json_text);

}  // namespace sleuth::dumps
