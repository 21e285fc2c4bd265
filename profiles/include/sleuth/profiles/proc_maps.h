// The text of /proc/<pid>/maps, parsed. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/status.h"

namespace sleuth::profiles {

// One line of /proc/<pid>/maps:
//   start-limit perms file_offset major:minor inode   path
struct ProcMapping {
  uint64_t start = 0;
  uint64_t limit = 0;  // exclusive
  uint64_t file_offset = 0;
  bool readable = false;
  bool writable = false;
  bool executable = false;
  bool shared = false;  // 's' (MAP_SHARED) rather than 'p'
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  // As printed, without the kernel's " (deleted)" suffix. Empty for plain
  // anonymous memory; "[heap]", "[stack]", "[vdso]", "[anon:name]"... for
  // the kernel's named regions.
  std::string path;
  bool deleted = false;  // the file was unlinked (or replaced) after mapping

  // A regular file that the mapping was loaded from (not "[vdso]", not
  // anonymous memory, not a memfd shown as "/memfd:name").
  bool IsFileBacked() const { return inode != 0 && !path.empty() && path[0] == '/'; }
};

// Parses one maps line. Errors say what part of the line was wrong.
Result<ProcMapping> ParseProcMapsLine(std::string_view line);

// Parses the whole text; blank lines are skipped. Errors name the 1-based
// line number and quote the line, e.g.
//   /proc/maps line 3: expected "start-limit" addresses in "zzzz r-xp ..."
Result<std::vector<ProcMapping>> ParseProcMaps(std::string_view text);

}  // namespace sleuth::profiles
