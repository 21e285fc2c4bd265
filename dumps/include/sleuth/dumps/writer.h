// Writing one dump into a DumpDir: the profile, the text (thread dumps),
// then the sidecar, each through DumpDir::WriteAtomic (fsynced). The sidecar
// goes last: a dump is complete once <base>.json exists, and nothing reads
// a dump before that. Thread safe (names are unique per event id).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"
#include "sleuth/dumps/dump_dir.h"
#include "sleuth/dumps/dump_meta.h"

namespace sleuth::dumps {

struct WrittenDump {
  std::string base;          // file name without extension
  std::string profile_path;  // for messages
  std::string sidecar_path;
  uint64_t bytes = 0;  // all files of the dump
};

// `meta.profile_file` and `meta.profile_bytes` are filled in here. On any
// failure (disk full included) what was written of the dump is removed and
// the directory is as before.
[[nodiscard]] Result<WrittenDump> WriteDump(const DumpDir& dir, const DumpMeta& meta,
                                            std::string_view profile_gz,
                                            std::optional<std::string_view> text);

// Whether the dump `base` is complete (its sidecar exists).
bool IsComplete(const DumpDir& dir, std::string_view base);

}  // namespace sleuth::dumps
