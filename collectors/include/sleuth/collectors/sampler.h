// Samples one process's CPU, memory, threads and limits, without ever
// sleeping: CPU% is the change in the process's CPU time between two calls
// of Sample() over the monotonic time between them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sleuth/collectors/limits.h"
#include "sleuth/common/clock.h"
#include "sleuth/common/status.h"

namespace sleuth::collectors {

struct SamplerOptions {
  // Prefix for every file read ("/" on a real host; tests point it at a fake
  // tree holding proc/<pid>/..., proc/self/mountinfo, sys/fs/cgroup/...).
  std::string root = "/";
  // RSS from /proc/<pid>/smaps_rollup (Rss) instead of statm. smaps_rollup
  // walks every mapping under the target's mmap lock, so it costs more on
  // processes with many mappings.
  bool use_smaps_rollup = false;
  // How often limits are re-read (on the first Sample() at least this long
  // after the last read; zero = every Sample()). Limits change rarely (e.g.
  // `docker update`) but do change. Measured on the loaded 2-core dev VM: a
  // sample without limits reads 2 files in ~70 us; re-reading limits reads
  // ~12 (mountinfo the largest) in ~0.7 ms. Every tick would make sampling
  // ~10x dearer; every 10 s adds about as much as sampling at 1 s costs
  // (together ~0.015% of a core) and sees a change within 10 s.
  std::chrono::nanoseconds limits_refresh_interval = std::chrono::seconds(10);
  // sysconf(_SC_CLK_TCK) and sysconf(_SC_PAGESIZE) when 0; tests set them to
  // match a fake tree.
  long clock_ticks_per_second = 0;
  long page_size_bytes = 0;
};

struct Reading {
  pid_t pid = 0;
  std::chrono::nanoseconds monotonic{0};  // Clock::Monotonic() at this sample
  // 100 = every core the process may use (cpu_limit_cores) fully busy. So one
  // busy thread on an unlimited 2-core host reads 50, and on a 0.5-core
  // quota reads 200 until throttled to 100. nullopt on the first tick and when
  // no time passed since the previous one.
  std::optional<double> cpu_percent;
  uint64_t cpu_time_ns_total = 0;  // utime + stime of the whole process (not of reaped children)
  uint64_t rss_bytes = 0;
  double memory_percent = 0;  // rss_bytes / memory_limit_bytes * 100
  int threads = 0;
  Limits limits;
};

// Thread-safety: thread-compatible; call Sample() from one thread at a time.
// Not async-signal-safe (it allocates while limits are refreshed).
class Sampler {
 public:
  // `clock` must outlive the sampler. No I/O happens here.
  Sampler(pid_t pid, const Clock& clock, SamplerOptions options = {});

  // Reads the process once. Errors:
  //   kGone: the process exited ("process 1234 is gone"), is a zombie, or its
  //          pid now belongs to another process (start time changed). Once
  //          gone, every later call says so too.
  //   kPermission / kIo / kInvalidArgument: a file could not be read or
  //          parsed; the message names the file.
  // Unreadable or malformed cgroup files do not fail a sample: the limit
  // falls back to the next source and a warning is logged once.
  Result<Reading> Sample();

  pid_t pid() const { return pid_; }

 private:
  Status ReadRss(uint64_t* rss_bytes);
  Status RefreshLimits(std::chrono::nanoseconds now);
  Status GoneStatus(std::string_view why) const;

  pid_t pid_;
  const Clock& clock_;
  SamplerOptions options_;
  long ticks_per_second_;
  long page_size_bytes_;

  std::string stat_path_;
  std::string rss_path_;
  std::string buffer_;  // reused for every read

  std::optional<uint64_t> starttime_ticks_;  // identity of the process we watch
  bool gone_ = false;
  std::string gone_reason_;

  std::optional<std::chrono::nanoseconds> previous_monotonic_;
  uint64_t previous_cpu_time_ns_ = 0;

  Limits limits_;
  std::optional<std::chrono::nanoseconds> limits_read_at_;
  std::vector<std::string> logged_warnings_;
};

}  // namespace sleuth::collectors
