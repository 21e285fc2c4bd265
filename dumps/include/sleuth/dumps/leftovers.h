// Leftovers of a process killed mid-write: scratch files (`*.tmp.*`,
// libprofiler's `sleuth-cpu.<pid>.<n>.prof`), and a dump's `.pb.gz` or
// `.txt` without its sidecar. They are removed once their writer is gone:
// the pid in the name is not alive, or is now another process (its start
// time differs from the one the name records, or it started after the file
// was last written). A payload without a sidecar is also removed once it is
// older than kOrphanAge, whoever is alive: a live writer finishes a dump in
// seconds. A payload whose inode changed (ctime) in the last 2 seconds is
// spared: the uploader may just have moved it back from failed/, with its
// sidecar to follow. Thread safe.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>

#include "sleuth/dumps/dump_dir.h"
#include "sleuth/dumps/layout.h"

namespace sleuth::dumps {

inline constexpr std::chrono::minutes kOrphanAge{10};

// Whether the process that wrote a file (`st`, lstat of it) may still be
// writing it.
bool WriterAlive(const ScratchWriter& writer, const struct stat& st);

// Removes the leftovers in `dir` (not in its subdirectories; the uploader
// tidies its own state). Logs each removal; returns how many files went.
int RemoveLeftovers(const DumpDir& dir, int64_t now_unix_nanos);
int RemoveLeftovers(const DumpDir& dir);  // now = the wall clock

}  // namespace sleuth::dumps
