// Pure parsers for the /proc files the sampler reads: text in, values out.
//
// Each takes the file's text and a `source` naming the file in error
// messages (the reader passes the real path; tests may leave the default).
// Errors are kInvalidArgument with a message saying which line or field was
// wrong and what was expected, e.g.
//   /proc/42/stat: field 14 (utime) is "x1", expected a count of clock ticks
// Thread-safety: all functions are pure and thread safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"

namespace sleuth::collectors {

// /proc/<pid>/stat (see proc(5)). Times are in clock ticks
// (sysconf(_SC_CLK_TCK)); starttime counts ticks since boot.
struct ProcStat {
  pid_t pid = 0;
  std::string comm;  // raw, may hold spaces and ')'
  char state = '?';  // R, S, D, Z, T, t, X, I, ...
  pid_t ppid = 0;
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  int64_t num_threads = 0;
  uint64_t starttime_ticks = 0;
  uint64_t vsize_bytes = 0;
  uint64_t rss_pages = 0;  // negative values (never seen in practice) read as 0
};
// Parses the command name between the first '(' and the LAST ')', so a comm
// like "a) b (c" is read whole. Needs fields up to 24 (rss).
Result<ProcStat> ParseProcStat(std::string_view text, std::string_view source = "/proc/<pid>/stat");

// /proc/<pid>/status. Sizes are converted from the file's kB to bytes.
// Memory lines are absent for kernel threads, hence optional.
struct ProcStatus {
  std::string name;  // as the kernel prints it (it escapes '\n' and '\\')
  char state = '?';
  pid_t tgid = 0;
  pid_t pid = 0;
  pid_t ppid = 0;
  uid_t uid_real = 0;
  uid_t uid_effective = 0;
  gid_t gid_real = 0;
  gid_t gid_effective = 0;
  int threads = 0;
  std::optional<uint64_t> vm_peak_bytes;
  std::optional<uint64_t> vm_size_bytes;
  std::optional<uint64_t> vm_hwm_bytes;
  std::optional<uint64_t> vm_rss_bytes;
  std::optional<uint64_t> rss_anon_bytes;
  std::optional<uint64_t> rss_file_bytes;
  std::optional<uint64_t> rss_shmem_bytes;
  std::optional<uint64_t> vm_swap_bytes;
  std::optional<int> cpus_allowed;  // count of CPUs in Cpus_allowed_list (the affinity mask)
};
// Requires Name, State, Tgid, Pid, PPid, Uid, Gid and Threads; a missing one
// means a truncated file. Unknown lines are ignored.
Result<ProcStatus> ParseProcStatus(std::string_view text,
                                   std::string_view source = "/proc/<pid>/status");

// /proc/<pid>/statm, all in pages.
struct ProcStatm {
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
  uint64_t shared_pages = 0;
  uint64_t text_pages = 0;
  uint64_t data_pages = 0;
};
// Requires the 7 numbers the kernel writes.
Result<ProcStatm> ParseProcStatm(std::string_view text,
                                 std::string_view source = "/proc/<pid>/statm");

// /proc/<pid>/smaps_rollup, in bytes. The Pss_* split is newer (Linux 5.x),
// hence optional.
struct SmapsRollup {
  uint64_t rss_bytes = 0;
  uint64_t pss_bytes = 0;
  std::optional<uint64_t> pss_anon_bytes;
  std::optional<uint64_t> pss_file_bytes;
  std::optional<uint64_t> pss_shmem_bytes;
  uint64_t shared_clean_bytes = 0;
  uint64_t shared_dirty_bytes = 0;
  uint64_t private_clean_bytes = 0;
  uint64_t private_dirty_bytes = 0;
  uint64_t anonymous_bytes = 0;
  uint64_t swap_bytes = 0;
  uint64_t swap_pss_bytes = 0;
};
// Requires the "[rollup]" header line and the Rss and Pss lines. The file is
// empty for kernel threads and zombies: that is an error too.
Result<SmapsRollup> ParseSmapsRollup(std::string_view text,
                                     std::string_view source = "/proc/<pid>/smaps_rollup");

// /proc/meminfo, in bytes.
struct MemInfo {
  uint64_t mem_total_bytes = 0;
  std::optional<uint64_t> mem_free_bytes;
  std::optional<uint64_t> mem_available_bytes;
};
// Requires a MemTotal line.
Result<MemInfo> ParseMemInfo(std::string_view text, std::string_view source = "/proc/meminfo");

}  // namespace sleuth::collectors
