// Pure parsers for cgroup membership, cgroup mounts and the cgroup limit
// files (v1 and v2): text in, values out.
//
// "No limit" is a value, never an error: `max`, -1 and the huge number v1
// prints for an unset memory limit all parse to std::nullopt. Errors are
// kInvalidArgument naming `source` and what was expected.
// Thread-safety: all functions are pure and thread safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/status.h"

namespace sleuth::collectors {

enum class CgroupVersion { kV1, kV2 };

// One line of /proc/<pid>/cgroup: "hierarchy-ID:controller-list:path".
// v2 is "0::/path" (no controllers); v1 is e.g. "4:cpu,cpuacct:/docker/abc"
// and named hierarchies keep their "name=systemd" entry.
struct CgroupMembership {
  int hierarchy_id = 0;
  std::vector<std::string> controllers;
  std::string path;  // relative to the reader's cgroup namespace root

  bool IsV2() const { return hierarchy_id == 0 && controllers.empty(); }
  bool HasController(std::string_view controller) const;
};
// Blank lines are skipped; any other line must have two ':' and a path
// starting with '/'. The path keeps any ':' it contains.
Result<std::vector<CgroupMembership>> ParseProcCgroup(
    std::string_view text, std::string_view source = "/proc/<pid>/cgroup");

// A cgroup file system mount from /proc/<pid>/mountinfo.
struct CgroupMount {
  CgroupVersion version = CgroupVersion::kV2;
  // The cgroup shown at the mount point: "/" normally, a sub-path when a
  // container bind-mounts part of the host's hierarchy.
  std::string root;
  std::string mount_point;
  // e.g. {"rw", "cpu", "cpuacct"}: a v1 mount's controllers are among these.
  std::vector<std::string> super_options;

  bool HasController(std::string_view controller) const;
};
// Returns the "cgroup" and "cgroup2" mounts in file order. Octal escapes in
// paths (\040 for space, \011, \012, \134) are decoded. Every line must have
// the "-" separator and the fields around it, so a truncated file is an
// error.
Result<std::vector<CgroupMount>> ParseCgroupMounts(
    std::string_view mountinfo_text, std::string_view source = "/proc/<pid>/mountinfo");

// Decodes mountinfo's octal escapes ("\040" -> ' '); other text is kept.
std::string UnescapeMountPath(std::string_view path);

// cgroup v2 cpu.max: "<quota_us|max> <period_us>".
struct CpuMax {
  std::optional<uint64_t> quota_us;  // nullopt = "max", no limit
  uint64_t period_us = 100000;
};
Result<CpuMax> ParseCpuMax(std::string_view text, std::string_view source = "cpu.max");

// cgroup v2 memory.max / memory.high: "max" or bytes. nullopt = no limit.
Result<std::optional<uint64_t>> ParseMemoryMaxOrHigh(std::string_view text,
                                                     std::string_view source = "memory.max");

// cgroup v1 cpu.cfs_quota_us in microseconds: -1 = no limit (nullopt); other
// values must be positive.
Result<std::optional<uint64_t>> ParseCfsQuotaUs(std::string_view text,
                                                std::string_view source = "cpu.cfs_quota_us");

// cgroup v1 cpu.cfs_period_us in microseconds; must be positive.
Result<uint64_t> ParseCfsPeriodUs(std::string_view text,
                                  std::string_view source = "cpu.cfs_period_us");

// Values at or above this are v1's "unlimited" (the kernel prints
// PAGE_COUNTER_MAX pages, 9223372036854771712 with 4KiB pages).
inline constexpr uint64_t kCgroupV1UnlimitedBytes = uint64_t{1} << 62;

// cgroup v1 memory.limit_in_bytes in bytes; nullopt = no limit.
Result<std::optional<uint64_t>> ParseMemoryLimitInBytes(
    std::string_view text, std::string_view source = "memory.limit_in_bytes");

// Counts the CPUs in a list such as "0-3,5,7-8" (7). An empty list (an unset
// v2 cpuset) counts 0. Used for cpuset.cpus, cpuset.cpus.effective,
// cpuset.effective_cpus, Cpus_allowed_list and /sys/devices/system/cpu/online.
Result<int> ParseCpuListCount(std::string_view text, std::string_view source = "cpu list");

}  // namespace sleuth::collectors
