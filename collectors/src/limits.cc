#include "sleuth/collectors/limits.h"

#include <span>
#include <string_view>

#include "parse_util.h"
#include "sleuth/collectors/proc_parsers.h"
#include "sleuth/collectors/process_info.h"
#include "sleuth/common/files.h"

namespace sleuth::collectors {

using internal::JoinRoot;

namespace {

// The part of `path` at or below `root` ("/" when equal), or nullopt if
// `path` lies elsewhere (a process outside the cgroup a container mounted).
std::optional<std::string_view> PathBelow(std::string_view path, std::string_view root) {
  if (root == "/") return path;
  if (!path.starts_with(root)) return std::nullopt;
  std::string_view rest = path.substr(root.size());
  if (rest.empty()) return std::string_view("/");
  if (rest.front() != '/') return std::nullopt;  // "/docker/abc" is not under "/dock"
  return rest;
}

std::string JoinCgroupPath(std::string_view mount_point, std::string_view relative) {
  while (mount_point.size() > 1 && mount_point.back() == '/') mount_point.remove_suffix(1);
  std::string dir(mount_point);
  if (relative != "/") {
    if (dir == "/") dir.clear();
    dir += relative;
  }
  return dir;
}

std::optional<CgroupDir> FindDir(const std::vector<CgroupMembership>& memberships,
                                 const std::vector<CgroupMount>& mounts, CgroupVersion version,
                                 std::string_view controller) {
  for (const CgroupMembership& membership : memberships) {
    bool wanted = version == CgroupVersion::kV2
                      ? membership.IsV2()
                      : !membership.IsV2() && membership.HasController(controller);
    if (!wanted) continue;
    for (const CgroupMount& mount : mounts) {
      if (mount.version != version) continue;
      if (version == CgroupVersion::kV1 && !mount.HasController(controller)) continue;
      std::optional<std::string_view> relative = PathBelow(membership.path, mount.root);
      if (!relative) continue;
      return CgroupDir{version, JoinCgroupPath(mount.mount_point, *relative), mount.mount_point};
    }
  }
  return std::nullopt;
}

std::optional<CgroupDir> FindController(const std::vector<CgroupMembership>& memberships,
                                        const std::vector<CgroupMount>& mounts,
                                        std::string_view controller) {
  // A controller is bound to at most one hierarchy; on hybrid hosts it is a
  // v1 one when mounted there, and the v2 tree lacks its files.
  if (auto v1 = FindDir(memberships, mounts, CgroupVersion::kV1, controller)) return v1;
  return FindDir(memberships, mounts, CgroupVersion::kV2, controller);
}

// Calls visit(dir) for `leaf` and each ancestor up to and including the
// mount point.
template <typename Visit>
void WalkUp(const CgroupDir& cgroup, Visit visit) {
  std::string dir = cgroup.dir;
  while (true) {
    visit(dir);
    if (dir.size() <= cgroup.mount_point.size() || !dir.starts_with(cgroup.mount_point)) break;
    size_t slash = dir.rfind('/');
    if (slash == std::string::npos || slash < cgroup.mount_point.size()) {
      dir = cgroup.mount_point;
    } else {
      dir.resize(slash);
    }
  }
}

// Reads one cgroup file, telling "absent" (no limit at this level, or the
// controller is not enabled there) apart from failures, which are recorded
// as warnings.
class CgroupFileReader {
 public:
  CgroupFileReader(const std::string& root, std::vector<std::string>* warnings)
      : root_(root), warnings_(warnings) {}

  // The file's text, or nullopt if absent or unreadable.
  std::optional<std::string> Read(const std::string& dir, std::string_view name) {
    Result<std::string> text = ReadFile(JoinRoot(root_, dir + "/" + std::string(name)));
    if (text.ok()) return std::move(text).value();
    if (text.status().code() != StatusCode::kNotFound)
      Warn(text.status().message() + "; ignoring this limit");
    return std::nullopt;
  }

  // The parsed value, or nullopt (with a warning saying what that costs) if
  // malformed.
  template <typename T>
  std::optional<T> Check(Result<T> parsed, std::string_view consequence = "ignoring this limit") {
    if (parsed.ok()) return std::move(parsed).value();
    Warn(parsed.status().message() + "; " + std::string(consequence));
    return std::nullopt;
  }

  void Warn(std::string message) { warnings_->push_back(std::move(message)); }

 private:
  const std::string& root_;
  std::vector<std::string>* warnings_;
};

void ReadCpuLevels(const CgroupDir& cgroup, CgroupFileReader& reader,
                   std::vector<CpuQuotaLevel>* levels) {
  WalkUp(cgroup, [&](const std::string& dir) {
    CpuQuotaLevel level{dir, cgroup.version, std::nullopt, 100000};
    if (cgroup.version == CgroupVersion::kV2) {
      std::optional<std::string> text = reader.Read(dir, "cpu.max");
      if (!text) return;
      std::optional<CpuMax> cpu_max = reader.Check(ParseCpuMax(*text, dir + "/cpu.max"));
      if (!cpu_max) return;
      level.quota_us = cpu_max->quota_us;
      level.period_us = cpu_max->period_us;
    } else {
      std::optional<std::string> quota_text = reader.Read(dir, "cpu.cfs_quota_us");
      if (!quota_text) return;
      auto quota = reader.Check(ParseCfsQuotaUs(*quota_text, dir + "/cpu.cfs_quota_us"));
      if (!quota) return;
      level.quota_us = *quota;
      if (level.quota_us) {
        std::optional<std::string> period_text = reader.Read(dir, "cpu.cfs_period_us");
        if (!period_text) {
          reader.Warn(dir +
                      "/cpu.cfs_quota_us is set but cpu.cfs_period_us is missing; "
                      "ignoring this limit");
          return;
        }
        auto period = reader.Check(ParseCfsPeriodUs(*period_text, dir + "/cpu.cfs_period_us"));
        if (!period) return;
        level.period_us = *period;
      }
    }
    levels->push_back(std::move(level));
  });
}

void ReadMemoryLevels(const CgroupDir& cgroup, CgroupFileReader& reader,
                      std::vector<MemoryLevel>* levels) {
  WalkUp(cgroup, [&](const std::string& dir) {
    MemoryLevel level{dir, cgroup.version, std::nullopt, std::nullopt};
    bool present = false;
    if (cgroup.version == CgroupVersion::kV2) {
      if (std::optional<std::string> text = reader.Read(dir, "memory.max")) {
        auto max = reader.Check(ParseMemoryMaxOrHigh(*text, dir + "/memory.max"));
        if (max) level.max_bytes = *max;
        present = true;
      }
      if (std::optional<std::string> text = reader.Read(dir, "memory.high")) {
        auto high = reader.Check(ParseMemoryMaxOrHigh(*text, dir + "/memory.high"));
        if (high) level.high_bytes = *high;
        present = true;
      }
    } else if (std::optional<std::string> text = reader.Read(dir, "memory.limit_in_bytes")) {
      auto limit = reader.Check(ParseMemoryLimitInBytes(*text, dir + "/memory.limit_in_bytes"));
      if (limit) level.max_bytes = *limit;
      present = true;
    }
    if (present) levels->push_back(std::move(level));
  });
}

std::optional<CpusetCpus> ReadCpuset(const CgroupDir& cgroup, CgroupFileReader& reader) {
  // The nearest cpuset that exists applies: a v2 child without the cpuset
  // controller enabled runs on its parent's CPUs.
  static constexpr std::string_view kV2Files[] = {"cpuset.cpus.effective"};
  static constexpr std::string_view kV1Files[] = {"cpuset.effective_cpus", "cpuset.cpus"};
  std::optional<CpusetCpus> found;
  WalkUp(cgroup, [&](const std::string& dir) {
    if (found) return;
    for (std::string_view name : cgroup.version == CgroupVersion::kV2
                                     ? std::span<const std::string_view>(kV2Files)
                                     : std::span<const std::string_view>(kV1Files)) {
      std::optional<std::string> text = reader.Read(dir, name);
      if (!text) continue;
      std::optional<int> cpus =
          reader.Check(ParseCpuListCount(*text, dir + "/" + std::string(name)));
      // An empty v2 cpuset.cpus.effective does not happen for a populated
      // cgroup; treat it as "not set" and keep looking up.
      if (cpus && *cpus > 0) {
        found = CpusetCpus{dir, *cpus};
        return;
      }
    }
  });
  return found;
}

std::string VersionName(CgroupVersion version) {
  return version == CgroupVersion::kV2 ? "cgroup v2" : "cgroup v1";
}

}  // namespace

CgroupLocation LocateCgroups(const std::vector<CgroupMembership>& memberships,
                             const std::vector<CgroupMount>& mounts) {
  CgroupLocation location;
  location.cpu = FindController(memberships, mounts, "cpu");
  location.memory = FindController(memberships, mounts, "memory");
  location.cpuset = FindController(memberships, mounts, "cpuset");
  return location;
}

Limits ResolveLimits(const LimitInputs& inputs) {
  Limits limits;

  // CPU: the host's cores unless a narrower source binds; among sources
  // that tie, the first in this order wins (quota, cpuset, affinity).
  limits.cpu_limit_cores = inputs.host_cpus > 0 ? inputs.host_cpus : 1;
  limits.cpu_limit_source = "host cores";
  auto consider_cpu = [&](double cores, std::string_view source, std::string_view dir) {
    if (cores <= 0 || cores >= limits.cpu_limit_cores) return;
    limits.cpu_limit_cores = cores;
    limits.cpu_limit_source.assign(source);
    if (!dir.empty()) {
      limits.cpu_limit_source += ' ';
      limits.cpu_limit_source += dir;
    }
  };
  for (const CpuQuotaLevel& level : inputs.cpu_levels) {
    if (!level.quota_us || level.period_us == 0) continue;
    double cores = static_cast<double>(*level.quota_us) / static_cast<double>(level.period_us);
    consider_cpu(cores,
                 level.version == CgroupVersion::kV2 ? "cgroup v2 cpu.max" : "cgroup v1 cfs quota",
                 level.dir);
  }
  if (inputs.cpuset && inputs.cpuset->cpus > 0)
    consider_cpu(inputs.cpuset->cpus, "cpuset", inputs.cpuset->dir);
  if (inputs.affinity_cpus > 0) consider_cpu(inputs.affinity_cpus, "affinity", "");

  // Memory: the tightest limit on the walk, unless it does not bind below
  // host RAM (v1 prints ~2^63 for "unlimited"; some set limits above RAM).
  const MemoryLevel* tightest = nullptr;
  const MemoryLevel* tightest_high = nullptr;
  for (const MemoryLevel& level : inputs.memory_levels) {
    if (level.max_bytes && (!tightest || *level.max_bytes < *tightest->max_bytes))
      tightest = &level;
    if (level.high_bytes && (!tightest_high || *level.high_bytes < *tightest_high->high_bytes))
      tightest_high = &level;
  }
  bool host_known = inputs.host_memory_bytes > 0;
  if (tightest && (!host_known || *tightest->max_bytes < inputs.host_memory_bytes)) {
    limits.memory_limit_bytes = *tightest->max_bytes;
    limits.memory_limit_source =
        VersionName(tightest->version) +
        (tightest->version == CgroupVersion::kV2 ? " memory.max " : " memory.limit_in_bytes ") +
        tightest->dir;
  } else {
    limits.memory_limit_bytes = inputs.host_memory_bytes;
    limits.memory_limit_source = host_known ? "host memory" : "unknown";
  }
  if (tightest_high) {
    limits.memory_high_bytes = *tightest_high->high_bytes;
    limits.memory_high_source =
        VersionName(tightest_high->version) + " memory.high " + tightest_high->dir;
  }
  return limits;
}

Result<LimitInputs> ReadLimitInputs(const std::string& root, pid_t pid) {
  LimitInputs inputs;
  const std::string proc = "/proc/" + std::to_string(pid);
  CgroupFileReader reader(root, &inputs.warnings);

  const std::string cgroup_path = JoinRoot(root, proc + "/cgroup");
  SLEUTH_ASSIGN_OR_RETURN(std::string cgroup_text, ReadFile(cgroup_path));
  const std::string status_path = JoinRoot(root, proc + "/status");
  SLEUTH_ASSIGN_OR_RETURN(std::string status_text, ReadFile(status_path));

  auto memberships =
      reader.Check(ParseProcCgroup(cgroup_text, cgroup_path), "cgroup limits are not known");
  const std::string mountinfo_path = JoinRoot(root, "/proc/self/mountinfo");
  std::optional<std::vector<CgroupMount>> mounts;
  if (Result<std::string> text = ReadFile(mountinfo_path); text.ok()) {
    mounts = reader.Check(ParseCgroupMounts(*text, mountinfo_path), "cgroup limits are not known");
  } else {
    reader.Warn(text.status().message() + "; cgroup limits are not known");
  }
  if (memberships && mounts) {
    CgroupLocation location = LocateCgroups(*memberships, *mounts);
    if (location.cpu) ReadCpuLevels(*location.cpu, reader, &inputs.cpu_levels);
    if (location.memory) ReadMemoryLevels(*location.memory, reader, &inputs.memory_levels);
    if (location.cpuset) inputs.cpuset = ReadCpuset(*location.cpuset, reader);
  }

  if (auto status = reader.Check(ParseProcStatus(status_text, status_path),
                                 "the affinity mask is not known")) {
    inputs.affinity_cpus = status->cpus_allowed.value_or(0);
  }
  if (Result<int> cpus = ReadHostCpuCores(root); cpus.ok()) {
    inputs.host_cpus = *cpus;
  } else {
    reader.Warn(cpus.status().message() + "; using sysconf's CPU count");
    inputs.host_cpus = HostCpuCores();
  }
  if (Result<uint64_t> bytes = ReadHostMemoryBytes(root); bytes.ok()) {
    inputs.host_memory_bytes = *bytes;
  } else {
    reader.Warn(bytes.status().message() + "; using sysconf's memory size");
    inputs.host_memory_bytes = HostMemoryBytes();
  }
  return inputs;
}

Result<Limits> ReadLimits(const std::string& root, pid_t pid) {
  SLEUTH_ASSIGN_OR_RETURN(LimitInputs inputs, ReadLimitInputs(root, pid));
  return ResolveLimits(inputs);
}

}  // namespace sleuth::collectors
