// Retention: keeps the dump directory within agent.max_dumps and
// agent.max_dump_bytes. The bytes counted are every byte the directory
// holds (dumps, leftovers, the uploader's state and failed/ copies), so the
// cap bounds the disk sleuth uses, not just what it meant to keep. What is
// removed is whole complete dumps, oldest first (sidecar mtime, then name),
// sidecar first so a half-removed dump never looks complete. Thread safe
// against other processes doing the same (a vanished file is skipped).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "sleuth/dumps/dump_dir.h"

namespace sleuth::dumps {

struct RetentionLimits {
  int max_dumps = 0;            // 0: no limit
  uint64_t max_dump_bytes = 0;  // 0: no limit
};

struct RetentionOutcome {
  int removed = 0;          // dumps removed
  uint64_t dumps = 0;       // complete dumps left
  uint64_t total_bytes = 0; // bytes the directory holds afterwards
};

// Dumps for which `exempt(base)` is true (e.g. still waiting for upload)
// count toward the limits but are never removed. Logs each removal.
RetentionOutcome EnforceRetention(const DumpDir& dir, const RetentionLimits& limits,
                                  const std::function<bool(const std::string& base)>& exempt);

}  // namespace sleuth::dumps
