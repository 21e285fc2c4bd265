// The CPU and memory a process may use, from its cgroups, cpuset, affinity
// mask and the host, split into three steps so the logic is testable:
//   LocateCgroups  (pure)  membership + mounts -> cgroup directories
//   ReadLimitInputs (I/O)  reads the files under a root prefix
//   ResolveLimits  (pure)  inputs -> Limits, with where each value came from
// Thread-safety: all functions are thread safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sleuth/collectors/cgroup_parsers.h"
#include "sleuth/common/status.h"

namespace sleuth::collectors {

// Effective limits. Sources say where a value came from, e.g.
// "cgroup v2 cpu.max /sys/fs/cgroup/app", "cgroup v1 cfs quota /sys/fs/cgroup/cpu/x",
// "cpuset /sys/fs/cgroup/cpuset/x", "affinity", "host cores";
// "cgroup v2 memory.max /sys/fs/cgroup/app", "cgroup v1 memory.limit_in_bytes /sys/...",
// "host memory". Paths are as the host sees them (without a test's root prefix).
struct Limits {
  double cpu_limit_cores = 1;  // > 0; may be fractional (0.5 = half a core)
  std::string cpu_limit_source;
  uint64_t memory_limit_bytes = 0;  // > 0 once resolved; never above host RAM
  std::string memory_limit_source;
  uint64_t memory_high_bytes = 0;  // cgroup v2 memory.high throttling point; 0 = not set
  std::string memory_high_source;

  bool operator==(const Limits&) const = default;
};

// A cgroup directory of one hierarchy, as the host sees it.
struct CgroupDir {
  CgroupVersion version = CgroupVersion::kV2;
  std::string dir;          // the process's cgroup, e.g. /sys/fs/cgroup/cpu/docker/abc
  std::string mount_point;  // the hierarchy's top as mounted: walks up stop here

  bool operator==(const CgroupDir&) const = default;
};

// Where the controllers that limit a process live. nullopt = not mounted, or
// the process's cgroup is outside what the mount shows.
struct CgroupLocation {
  std::optional<CgroupDir> cpu;
  std::optional<CgroupDir> memory;
  std::optional<CgroupDir> cpuset;
};

// Pairs each controller with a v1 hierarchy that has it mounted, else with
// the v2 hierarchy (hybrid hosts have both). The mount's root is stripped
// from the membership path, so a container that sees "/docker/abc" mounted
// at /sys/fs/cgroup/cpu gets /sys/fs/cgroup/cpu, not .../cpu/docker/abc.
CgroupLocation LocateCgroups(const std::vector<CgroupMembership>& memberships,
                             const std::vector<CgroupMount>& mounts);

// One level of a hierarchy's CPU quota, leaf first.
struct CpuQuotaLevel {
  std::string dir;
  CgroupVersion version = CgroupVersion::kV2;
  std::optional<uint64_t> quota_us;  // nullopt = no limit at this level
  uint64_t period_us = 100000;
};

// One level of a hierarchy's memory limits, leaf first.
struct MemoryLevel {
  std::string dir;
  CgroupVersion version = CgroupVersion::kV2;
  std::optional<uint64_t> max_bytes;   // v2 memory.max or v1 memory.limit_in_bytes
  std::optional<uint64_t> high_bytes;  // v2 memory.high
};

struct CpusetCpus {
  std::string dir;
  int cpus = 0;  // 0 = empty/unset: ignored
};

// Everything ResolveLimits needs, gathered by ReadLimitInputs (or built by
// hand in tests).
struct LimitInputs {
  std::vector<CpuQuotaLevel> cpu_levels;   // the process's cgroup, then each ancestor
  std::vector<MemoryLevel> memory_levels;  // the process's cgroup, then each ancestor
  std::optional<CpusetCpus> cpuset;        // the nearest cpuset that applies
  int affinity_cpus = 0;                   // CPUs in the affinity mask; 0 = unknown
  int host_cpus = 1;                       // online CPUs
  uint64_t host_memory_bytes = 0;          // MemTotal
  // Sources that could not be read or parsed and were skipped, one sentence
  // each (e.g. a malformed cpu.max): limits degrade, the caller logs these.
  std::vector<std::string> warnings;
};

// CPU: the smallest of every cgroup quota/period on the walk to the root (a
// parent's quota also applies), the cpuset's CPU count and the affinity CPU
// count, when smaller than the host's CPUs (else "host cores"); among equal
// values the first of that order wins. Memory: the
// smallest memory.max / memory.limit_in_bytes on the walk, capped at host
// RAM (a limit at or above host RAM reads as "host memory"); memory.high is
// the smallest high on the walk, reported separately. "No limit" values
// fall through to the next source. Pure.
Limits ResolveLimits(const LimitInputs& inputs);

// Reads <root>/proc/<pid>/cgroup, <root>/proc/self/mountinfo (our own mount
// table: its paths are the ones we can open, and the kernel renders another
// process's cgroup path relative to our cgroup namespace), the cgroup files
// along each walk, <root>/proc/<pid>/status (affinity),
// <root>/sys/devices/system/cpu/online and <root>/proc/meminfo. `root` is "/"
// on a real host. Missing limit files mean "no limit at this level".
// Errors: kNotFound if /proc/<pid>/cgroup or status is missing (the process
// is gone); unreadable or malformed cgroup files become `warnings`.
Result<LimitInputs> ReadLimitInputs(const std::string& root, pid_t pid);

// ReadLimitInputs then ResolveLimits.
Result<Limits> ReadLimits(const std::string& root, pid_t pid);

}  // namespace sleuth::collectors
