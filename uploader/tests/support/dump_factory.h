// Tiny, valid dumps for the uploader's tests and benchmark: a gzipped pprof
// profile built with ProtoWriter, written by the agent's own writer
// (dumps::WriteDump), so the tests see exactly the files and sidecar the
// agent produces. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"
#include "sleuth/dumps/dump_meta.h"

namespace sleuth::uploader::testing {

struct DumpSpec {
  std::string service = "testsvc";
  int64_t pid = 4242;
  std::string kind = "cpu";  // cpu | heap | memory | threads
  std::string reason = "abs";
  int64_t time_unix_nanos = 1'764'497'702'123'000'000;  // 2025-11-30T10:15:02.123Z
  std::map<std::string, std::string> labels = {{"env", "test"}};
  std::string hostname = "testhost";
  // Extra functions in the profile, to make it bigger (about 40 bytes each
  // before compression; the names are random so gzip cannot shrink them).
  size_t extra_functions = 0;
  bool with_text = false;  // also write <base>.txt (a thread dump's text)
  std::string event_id;    // empty: a fresh random one
};

struct WrittenDump {
  std::string base;
  std::string event_id;
  uint64_t bytes = 0;  // all files
};

// 32 random lowercase hex digits.
std::string NewEventId();

// An uncompressed profile.proto message with sample types fitting `kind`,
// one sample per function ("main", "work", then the extra ones).
std::string MakeProfile(std::string_view kind, size_t extra_functions);

std::string Gzip(std::string_view data);
[[nodiscard]] Result<std::string> Gunzip(std::string_view data);

// The metadata the agent would record for this dump.
dumps::DumpMeta MetaOf(const DumpSpec& spec, const std::string& event_id);

// Writes the dump into `dir` with dumps::WriteDump (created 0700 if
// missing; refused like any dump directory if unsafe).
[[nodiscard]] Result<WrittenDump> WriteDump(const std::string& dir, const DumpSpec& spec);

// The base name the agent would give this dump.
std::string DumpBaseName(const DumpSpec& spec, const std::string& event_id);

}  // namespace sleuth::uploader::testing
