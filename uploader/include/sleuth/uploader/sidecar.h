// The JSON sidecar the agent writes beside every dump (<base>.json): what the
// uploader needs from it to label an upload. Pure; thread safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"

namespace sleuth::uploader {

struct DumpMeta {
  std::string event_id;  // 32 lowercase hex digits, unique per dump
  std::string kind;      // cpu | heap | memory | threads
  std::string reason;    // abs | diff | manual | alert
  std::string metric;
  std::string service;
  std::string hostname;
  int64_t pid = 0;
  std::map<std::string, std::string> labels;  // the agent's extra labels
  int64_t start_time_unix_nanos = 0;
  int64_t duration_nanos = 0;
  std::string profile_file;  // basename of the .pb.gz, if given
};

// Sidecars larger than this are refused (a real one is a few KiB).
inline constexpr size_t kMaxSidecarBytes = 1 << 20;

// Parses a sidecar. Errors name the field and what was expected, e.g.
//   field "event_id" must be 32 lowercase hex digits
// Fields the uploader does not use are ignored; the sidecar travels whole
// in the http protocol's metadata part.
[[nodiscard]] Result<DumpMeta> ParseSidecar(std::string_view json_text);

}  // namespace sleuth::uploader
