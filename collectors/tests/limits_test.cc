#include "sleuth/collectors/limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace sleuth::collectors {
namespace {

using ::sleuth::collectors::testing::Fixture;
using ::sleuth::collectors::testing::FixturePath;
using ::sleuth::collectors::testing::TreeCopy;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr pid_t kTreePid = 4242;

CgroupLocation Locate(const std::string& cgroup_fixture, const std::string& mountinfo_fixture) {
  auto memberships = ParseProcCgroup(Fixture(cgroup_fixture));
  auto mounts = ParseCgroupMounts(Fixture(mountinfo_fixture));
  EXPECT_TRUE(memberships.ok() && mounts.ok());
  return LocateCgroups(*memberships, *mounts);
}

// ---- LocateCgroups ----

TEST(LocateCgroupsTest, HybridHostUsesV1Controllers) {
  CgroupLocation location = Locate("cgroup/real_hybrid.txt", "mountinfo/real_hybrid.txt");
  ASSERT_TRUE(location.cpu.has_value());
  EXPECT_EQ(*location.cpu,
            (CgroupDir{CgroupVersion::kV1, "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu"}));
  ASSERT_TRUE(location.memory.has_value());
  EXPECT_EQ(*location.memory,
            (CgroupDir{CgroupVersion::kV1,
                       "/sys/fs/cgroup/memory/process_api/6e128f916979ad2975ac0f74ec12362c",
                       "/sys/fs/cgroup/memory"}));
  ASSERT_TRUE(location.cpuset.has_value());
  EXPECT_EQ(location.cpuset->dir, "/sys/fs/cgroup/cpuset");
}

TEST(LocateCgroupsTest, PureV2) {
  CgroupLocation location = Locate("cgroup/v2.txt", "mountinfo/v2.txt");
  CgroupDir expected{CgroupVersion::kV2, "/sys/fs/cgroup/system.slice/app.service",
                     "/sys/fs/cgroup"};
  EXPECT_EQ(location.cpu, expected);
  EXPECT_EQ(location.memory, expected);
  EXPECT_EQ(location.cpuset, expected);
}

TEST(LocateCgroupsTest, ContainerMountRootIsStrippedFromThePath) {
  // /proc/<pid>/cgroup says /docker/<id>, and that is what is mounted at
  // /sys/fs/cgroup/<controller>: the process's cgroup is the mount point.
  CgroupLocation location = Locate("cgroup/v1_docker.txt", "mountinfo/v1_docker.txt");
  EXPECT_EQ(location.cpu, (CgroupDir{CgroupVersion::kV1, "/sys/fs/cgroup/cpu,cpuacct",
                                     "/sys/fs/cgroup/cpu,cpuacct"}));
  EXPECT_EQ(location.memory,
            (CgroupDir{CgroupVersion::kV1, "/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory"}));
}

TEST(LocateCgroupsTest, CgroupNamespaceRootIsTheMountPoint) {
  CgroupLocation location = Locate("cgroup/container_root.txt", "mountinfo/v2_container.txt");
  EXPECT_EQ(location.cpu, (CgroupDir{CgroupVersion::kV2, "/sys/fs/cgroup", "/sys/fs/cgroup"}));
}

TEST(LocateCgroupsTest, PathOutsideTheMountRootIsNotLocated) {
  std::vector<CgroupMembership> memberships = {{5, {"cpu"}, "/other/x"}};
  std::vector<CgroupMount> mounts = {
      {CgroupVersion::kV1, "/docker/abc", "/sys/fs/cgroup/cpu", {"rw", "cpu"}}};
  EXPECT_FALSE(LocateCgroups(memberships, mounts).cpu.has_value());
  // A sibling whose name merely starts with the root is outside it too.
  memberships[0].path = "/docker/abcdef";
  EXPECT_FALSE(LocateCgroups(memberships, mounts).cpu.has_value());
  memberships[0].path = "/docker/abc/sub";
  EXPECT_EQ(LocateCgroups(memberships, mounts).cpu->dir, "/sys/fs/cgroup/cpu/sub");
}

TEST(LocateCgroupsTest, NothingMounted) {
  CgroupLocation location = LocateCgroups(*ParseProcCgroup(Fixture("cgroup/v2.txt")), {});
  EXPECT_FALSE(location.cpu || location.memory || location.cpuset);
}

// ---- ResolveLimits (pure) ----

LimitInputs Host(int cpus, uint64_t memory_bytes) {
  LimitInputs inputs;
  inputs.host_cpus = cpus;
  inputs.affinity_cpus = cpus;
  inputs.host_memory_bytes = memory_bytes;
  return inputs;
}

TEST(ResolveLimitsTest, UnlimitedFallsBackToHost) {
  LimitInputs inputs = Host(2, 8 * kGiB);
  inputs.cpu_levels = {{"/sys/fs/cgroup/cpu", CgroupVersion::kV1, std::nullopt, 100000}};
  inputs.memory_levels = {
      {"/sys/fs/cgroup/memory", CgroupVersion::kV1, std::nullopt, std::nullopt}};
  Limits limits = ResolveLimits(inputs);
  EXPECT_EQ(limits.cpu_limit_cores, 2);
  EXPECT_EQ(limits.cpu_limit_source, "host cores");
  EXPECT_EQ(limits.memory_limit_bytes, 8 * kGiB);
  EXPECT_EQ(limits.memory_limit_source, "host memory");
  EXPECT_EQ(limits.memory_high_bytes, 0u);
  EXPECT_EQ(limits.memory_high_source, "");
}

TEST(ResolveLimitsTest, V2QuotaSmallerThanOneCore) {
  LimitInputs inputs = Host(4, 8 * kGiB);
  inputs.cpu_levels = {{"/sys/fs/cgroup/x", CgroupVersion::kV2, 50000, 100000}};
  Limits limits = ResolveLimits(inputs);
  EXPECT_DOUBLE_EQ(limits.cpu_limit_cores, 0.5);
  EXPECT_EQ(limits.cpu_limit_source, "cgroup v2 cpu.max /sys/fs/cgroup/x");
}

TEST(ResolveLimitsTest, V1QuotaAndMemoryLimit) {
  LimitInputs inputs = Host(8, 16 * kGiB);
  inputs.cpu_levels = {{"/sys/fs/cgroup/cpu/a", CgroupVersion::kV1, 250000, 100000}};
  inputs.memory_levels = {
      {"/sys/fs/cgroup/memory/a", CgroupVersion::kV1, 512 * kMiB, std::nullopt}};
  Limits limits = ResolveLimits(inputs);
  EXPECT_DOUBLE_EQ(limits.cpu_limit_cores, 2.5);
  EXPECT_EQ(limits.cpu_limit_source, "cgroup v1 cfs quota /sys/fs/cgroup/cpu/a");
  EXPECT_EQ(limits.memory_limit_bytes, 512 * kMiB);
  EXPECT_EQ(limits.memory_limit_source, "cgroup v1 memory.limit_in_bytes /sys/fs/cgroup/memory/a");
}

TEST(ResolveLimitsTest, TighterParentWins) {
  LimitInputs inputs = Host(8, 16 * kGiB);
  inputs.cpu_levels = {
      {"/cg/pod/ctr", CgroupVersion::kV2, 300000, 100000},
      {"/cg/pod", CgroupVersion::kV2, 100000, 50000},  // 2 cores with a different period
      {"/cg", CgroupVersion::kV2, std::nullopt, 100000},
  };
  inputs.memory_levels = {
      {"/cg/pod/ctr", CgroupVersion::kV2, 2 * kGiB, 1 * kGiB},
      {"/cg/pod", CgroupVersion::kV2, 1 * kGiB, 768 * kMiB},
      {"/cg", CgroupVersion::kV2, std::nullopt, std::nullopt},
  };
  Limits limits = ResolveLimits(inputs);
  EXPECT_DOUBLE_EQ(limits.cpu_limit_cores, 2.0);
  EXPECT_EQ(limits.cpu_limit_source, "cgroup v2 cpu.max /cg/pod");
  EXPECT_EQ(limits.memory_limit_bytes, 1 * kGiB);
  EXPECT_EQ(limits.memory_limit_source, "cgroup v2 memory.max /cg/pod");
  EXPECT_EQ(limits.memory_high_bytes, 768 * kMiB);
  EXPECT_EQ(limits.memory_high_source, "cgroup v2 memory.high /cg/pod");
}

TEST(ResolveLimitsTest, TighterChildWins) {
  LimitInputs inputs = Host(8, 16 * kGiB);
  inputs.cpu_levels = {{"/cg/a/b", CgroupVersion::kV2, 100000, 100000},
                       {"/cg/a", CgroupVersion::kV2, 400000, 100000}};
  EXPECT_EQ(ResolveLimits(inputs).cpu_limit_source, "cgroup v2 cpu.max /cg/a/b");
}

TEST(ResolveLimitsTest, CpusetWhenNoQuota) {
  LimitInputs inputs = Host(8, 16 * kGiB);
  inputs.cpuset = CpusetCpus{"/sys/fs/cgroup/cpuset/x", 3};
  Limits limits = ResolveLimits(inputs);
  EXPECT_EQ(limits.cpu_limit_cores, 3);
  EXPECT_EQ(limits.cpu_limit_source, "cpuset /sys/fs/cgroup/cpuset/x");
}

TEST(ResolveLimitsTest, QuotaAboveCpusetIsCappedByCpuset) {
  LimitInputs inputs = Host(8, 16 * kGiB);
  inputs.cpu_levels = {{"/cg/x", CgroupVersion::kV2, 400000, 100000}};
  inputs.cpuset = CpusetCpus{"/cg/x", 2};
  EXPECT_EQ(ResolveLimits(inputs).cpu_limit_cores, 2);
  EXPECT_EQ(ResolveLimits(inputs).cpu_limit_source, "cpuset /cg/x");
  // On a tie the quota is named: it is what the operator set.
  inputs.cpuset->cpus = 4;
  EXPECT_EQ(ResolveLimits(inputs).cpu_limit_source, "cgroup v2 cpu.max /cg/x");
}

TEST(ResolveLimitsTest, AffinityWhenNarrowerThanHost) {
  LimitInputs inputs = Host(8, 16 * kGiB);
  inputs.affinity_cpus = 1;
  Limits limits = ResolveLimits(inputs);
  EXPECT_EQ(limits.cpu_limit_cores, 1);
  EXPECT_EQ(limits.cpu_limit_source, "affinity");
}

TEST(ResolveLimitsTest, EmptyCpusetAndUnknownAffinityAreIgnored) {
  LimitInputs inputs = Host(4, 16 * kGiB);
  inputs.cpuset = CpusetCpus{"/cg", 0};
  inputs.affinity_cpus = 0;
  EXPECT_EQ(ResolveLimits(inputs).cpu_limit_source, "host cores");
}

TEST(ResolveLimitsTest, MemoryLimitAboveHostRamReadsAsHostMemory) {
  LimitInputs inputs = Host(2, 4 * kGiB);
  inputs.memory_levels = {{"/cg", CgroupVersion::kV1, 64 * kGiB, std::nullopt}};
  Limits limits = ResolveLimits(inputs);
  EXPECT_EQ(limits.memory_limit_bytes, 4 * kGiB);
  EXPECT_EQ(limits.memory_limit_source, "host memory");
}

TEST(ResolveLimitsTest, HighWithoutMax) {
  LimitInputs inputs = Host(2, 4 * kGiB);
  inputs.memory_levels = {{"/cg", CgroupVersion::kV2, std::nullopt, 1 * kGiB}};
  Limits limits = ResolveLimits(inputs);
  EXPECT_EQ(limits.memory_limit_source, "host memory");
  EXPECT_EQ(limits.memory_high_bytes, 1 * kGiB);
}

TEST(ResolveLimitsTest, ZeroHostCpusStillGivesAPositiveLimit) {
  LimitInputs inputs = Host(0, 4 * kGiB);
  EXPECT_EQ(ResolveLimits(inputs).cpu_limit_cores, 1);
}

// ---- ReadLimitInputs over fake trees ----

TEST(ReadLimitsTest, HybridTreeOfThisMachineIsUnlimited) {
  Result<LimitInputs> inputs = ReadLimitInputs(FixturePath("trees/hybrid"), kTreePid);
  ASSERT_TRUE(inputs.ok()) << inputs.status().message();
  EXPECT_THAT(inputs->warnings, IsEmpty());
  ASSERT_EQ(inputs->cpu_levels.size(), 1u);
  EXPECT_EQ(inputs->cpu_levels[0].dir, "/sys/fs/cgroup/cpu");
  EXPECT_FALSE(inputs->cpu_levels[0].quota_us.has_value());
  ASSERT_EQ(inputs->memory_levels.size(), 3u);  // the leaf, process_api, the root
  EXPECT_EQ(inputs->memory_levels[1].dir, "/sys/fs/cgroup/memory/process_api");
  EXPECT_EQ(inputs->memory_levels[2].dir, "/sys/fs/cgroup/memory");
  EXPECT_EQ(inputs->host_cpus, 2);
  EXPECT_EQ(inputs->affinity_cpus, 2);
  Limits limits = ResolveLimits(*inputs);
  EXPECT_EQ(limits.cpu_limit_cores, 2);
  EXPECT_EQ(limits.cpu_limit_source, "host cores");
  EXPECT_EQ(limits.memory_limit_bytes, 24683620ull * 1024);
  EXPECT_EQ(limits.memory_limit_source, "host memory");
}

TEST(ReadLimitsTest, V1ContainerTree) {
  Result<Limits> limits = ReadLimits(FixturePath("trees/v1"), kTreePid);
  ASSERT_TRUE(limits.ok()) << limits.status().message();
  EXPECT_DOUBLE_EQ(limits->cpu_limit_cores, 0.5);
  EXPECT_EQ(limits->cpu_limit_source, "cgroup v1 cfs quota /sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(limits->memory_limit_bytes, 256 * kMiB);
  EXPECT_EQ(limits->memory_limit_source, "cgroup v1 memory.limit_in_bytes /sys/fs/cgroup/memory");
}

TEST(ReadLimitsTest, V2Tree) {
  Result<LimitInputs> inputs = ReadLimitInputs(FixturePath("trees/v2"), kTreePid);
  ASSERT_TRUE(inputs.ok()) << inputs.status().message();
  EXPECT_THAT(inputs->warnings, IsEmpty());
  ASSERT_TRUE(inputs->cpuset.has_value());
  EXPECT_EQ(inputs->cpuset->cpus, 4);
  Limits limits = ResolveLimits(*inputs);
  EXPECT_DOUBLE_EQ(limits.cpu_limit_cores, 1.5);
  EXPECT_EQ(limits.cpu_limit_source, "cgroup v2 cpu.max /sys/fs/cgroup/system.slice/app.service");
  EXPECT_EQ(limits.memory_limit_bytes, 512 * kMiB);
  EXPECT_EQ(limits.memory_limit_source,
            "cgroup v2 memory.max /sys/fs/cgroup/system.slice/app.service");
  EXPECT_EQ(limits.memory_high_bytes, 384 * kMiB);
}

TEST(ReadLimitsTest, V2NestedTreeTakesTheTighterParent) {
  Result<Limits> limits = ReadLimits(FixturePath("trees/v2_nested"), kTreePid);
  ASSERT_TRUE(limits.ok()) << limits.status().message();
  EXPECT_DOUBLE_EQ(limits->cpu_limit_cores, 0.5);
  EXPECT_EQ(limits->cpu_limit_source, "cgroup v2 cpu.max /sys/fs/cgroup/kubepods.slice/pod1");
  EXPECT_EQ(limits->memory_limit_bytes, 256 * kMiB);
  EXPECT_EQ(limits->memory_limit_source, "cgroup v2 memory.max /sys/fs/cgroup/kubepods.slice/pod1");
}

TEST(ReadLimitsTest, V2ContainerWithCgroupNamespace) {
  Result<Limits> limits = ReadLimits(FixturePath("trees/v2_container"), kTreePid);
  ASSERT_TRUE(limits.ok()) << limits.status().message();
  EXPECT_DOUBLE_EQ(limits->cpu_limit_cores, 0.25);
  EXPECT_EQ(limits->cpu_limit_source, "cgroup v2 cpu.max /sys/fs/cgroup");
  EXPECT_EQ(limits->memory_limit_bytes, 64 * kGiB);
  EXPECT_EQ(limits->memory_limit_source, "host memory");
}

TEST(ReadLimitsTest, MalformedLimitFileIsAWarningAndFallsBack) {
  TreeCopy tree("v2");
  tree.Write("/sys/fs/cgroup/system.slice/app.service/cpu.max", "oops\n");
  Result<LimitInputs> inputs = ReadLimitInputs(tree.root(), kTreePid);
  ASSERT_TRUE(inputs.ok()) << inputs.status().message();
  ASSERT_EQ(inputs->warnings.size(), 1u);
  EXPECT_THAT(inputs->warnings[0],
              HasSubstr("/sys/fs/cgroup/system.slice/app.service/cpu.max: quota \"oops\""));
  EXPECT_THAT(inputs->warnings[0], HasSubstr("ignoring this limit"));
  // The leaf's quota is skipped: the cpuset (4 of 8 CPUs) is next.
  Limits limits = ResolveLimits(*inputs);
  EXPECT_EQ(limits.cpu_limit_cores, 4);
  EXPECT_EQ(limits.cpu_limit_source, "cpuset /sys/fs/cgroup/system.slice/app.service");
}

TEST(ReadLimitsTest, MissingMountinfoMeansNoCgroupLimits) {
  TreeCopy tree("v1");
  tree.Remove("/proc/self/mountinfo");
  Result<LimitInputs> inputs = ReadLimitInputs(tree.root(), kTreePid);
  ASSERT_TRUE(inputs.ok()) << inputs.status().message();
  ASSERT_EQ(inputs->warnings.size(), 1u);
  EXPECT_THAT(inputs->warnings[0], HasSubstr("mountinfo"));
  Limits limits = ResolveLimits(*inputs);
  EXPECT_EQ(limits.cpu_limit_source, "affinity");  // Cpus_allowed_list 0-3 of 8 CPUs
  EXPECT_EQ(limits.memory_limit_source, "host memory");
}

TEST(ReadLimitsTest, GoneProcessIsNotFound) {
  Result<LimitInputs> inputs = ReadLimitInputs(FixturePath("trees/v2"), 999999);
  ASSERT_FALSE(inputs.ok());
  EXPECT_EQ(inputs.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(inputs.status().message(), HasSubstr("/proc/999999/cgroup"));
}

}  // namespace
}  // namespace sleuth::collectors
