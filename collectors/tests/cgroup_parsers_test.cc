#include "sleuth/collectors/cgroup_parsers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace sleuth::collectors {
namespace {

using ::sleuth::collectors::testing::Fixture;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- /proc/<pid>/cgroup ----

TEST(ParseProcCgroupTest, RealHybridHost) {
  // This machine: v1 controllers each in their own hierarchy, plus "0::/".
  auto memberships = ParseProcCgroup(Fixture("cgroup/real_hybrid.txt"));
  ASSERT_TRUE(memberships.ok()) << memberships.status().message();
  ASSERT_EQ(memberships->size(), 10u);
  const CgroupMembership& systemd = (*memberships)[0];
  EXPECT_EQ(systemd.hierarchy_id, 9);
  EXPECT_THAT(systemd.controllers, ElementsAre("name=systemd"));
  EXPECT_EQ(systemd.path, "/");
  const CgroupMembership& memory = (*memberships)[5];
  EXPECT_EQ(memory.hierarchy_id, 4);
  EXPECT_TRUE(memory.HasController("memory"));
  EXPECT_EQ(memory.path, "/process_api/6e128f916979ad2975ac0f74ec12362c");
  const CgroupMembership& unified = (*memberships)[9];
  EXPECT_TRUE(unified.IsV2());
  EXPECT_EQ(unified.path, "/");
}

TEST(ParseProcCgroupTest, V1CoMountedControllers) {
  auto memberships = ParseProcCgroup(Fixture("cgroup/v1_docker.txt"));
  ASSERT_TRUE(memberships.ok()) << memberships.status().message();
  const CgroupMembership& cpu = (*memberships)[7];
  EXPECT_THAT(cpu.controllers, ElementsAre("cpu", "cpuacct"));
  EXPECT_TRUE(cpu.HasController("cpuacct"));
  EXPECT_FALSE(cpu.HasController("cpuset"));
  EXPECT_FALSE(cpu.IsV2());
  EXPECT_EQ(cpu.path, "/docker/3f2a9c1b7e");
}

TEST(ParseProcCgroupTest, PureV2AndContainerRoot) {
  auto v2 = ParseProcCgroup(Fixture("cgroup/v2.txt"));
  ASSERT_TRUE(v2.ok());
  ASSERT_EQ(v2->size(), 1u);
  EXPECT_TRUE((*v2)[0].IsV2());
  EXPECT_EQ((*v2)[0].path, "/system.slice/app.service");
  auto container = ParseProcCgroup(Fixture("cgroup/container_root.txt"));
  ASSERT_TRUE(container.ok());
  EXPECT_EQ((*container)[0].path, "/");
}

TEST(ParseProcCgroupTest, PathKeepsColons) {
  auto memberships = ParseProcCgroup(Fixture("cgroup/colon_in_path.txt"));
  ASSERT_TRUE(memberships.ok());
  EXPECT_EQ((*memberships)[0].path, "/machine.slice/libpod-a:b.scope");
}

TEST(ParseProcCgroupTest, Errors) {
  auto malformed = ParseProcCgroup(Fixture("cgroup/malformed.txt"), "/proc/7/cgroup");
  ASSERT_FALSE(malformed.ok());
  EXPECT_THAT(malformed.status().message(), HasSubstr("/proc/7/cgroup: line 1"));
  EXPECT_THAT(malformed.status().message(), HasSubstr("hierarchy-ID:controller-list:cgroup-path"));
  auto truncated = ParseProcCgroup(Fixture("cgroup/truncated.txt"));
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("line 3 \"4:memory\""));
  auto bad_path = ParseProcCgroup(Fixture("cgroup/bad_path.txt"));
  ASSERT_FALSE(bad_path.ok());
  EXPECT_THAT(bad_path.status().message(), HasSubstr("does not start with '/'"));
  EXPECT_FALSE(ParseProcCgroup("x:cpu:/\n").ok());
}

// ---- mountinfo ----

TEST(ParseCgroupMountsTest, RealHybridHost) {
  auto mounts = ParseCgroupMounts(Fixture("mountinfo/real_hybrid.txt"));
  ASSERT_TRUE(mounts.ok()) << mounts.status().message();
  // cpu, cpuacct, cpuset, memory, devices, freezer, blkio, pids, systemd, unified
  ASSERT_EQ(mounts->size(), 10u);
  const CgroupMount& cpu = (*mounts)[0];
  EXPECT_EQ(cpu.version, CgroupVersion::kV1);
  EXPECT_EQ(cpu.root, "/");
  EXPECT_EQ(cpu.mount_point, "/sys/fs/cgroup/cpu");
  EXPECT_TRUE(cpu.HasController("cpu"));
  EXPECT_FALSE(cpu.HasController("cpuacct"));
  const CgroupMount& unified = (*mounts)[9];
  EXPECT_EQ(unified.version, CgroupVersion::kV2);
  EXPECT_EQ(unified.mount_point, "/sys/fs/cgroup/unified");
}

TEST(ParseCgroupMountsTest, PureV2) {
  auto mounts = ParseCgroupMounts(Fixture("mountinfo/v2.txt"));
  ASSERT_TRUE(mounts.ok()) << mounts.status().message();
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ((*mounts)[0].version, CgroupVersion::kV2);
  EXPECT_EQ((*mounts)[0].mount_point, "/sys/fs/cgroup");
  EXPECT_THAT((*mounts)[0].super_options, ElementsAre("rw", "nsdelegate", "memory_recursiveprot"));
}

TEST(ParseCgroupMountsTest, ContainerMountRootsAndOptionalFields) {
  // Docker without a cgroup namespace: each mount shows /docker/<id>, and
  // lines carry "master:N" optional fields before the separator.
  auto mounts = ParseCgroupMounts(Fixture("mountinfo/v1_docker.txt"));
  ASSERT_TRUE(mounts.ok()) << mounts.status().message();
  ASSERT_EQ(mounts->size(), 5u);
  const CgroupMount& cpu = (*mounts)[1];
  EXPECT_EQ(cpu.root, "/docker/3f2a9c1b7e");
  EXPECT_EQ(cpu.mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_TRUE(cpu.HasController("cpu"));
  EXPECT_TRUE(cpu.HasController("cpuacct"));
  EXPECT_TRUE((*mounts)[0].HasController("name=systemd"));
}

TEST(ParseCgroupMountsTest, EscapedPaths) {
  auto mounts = ParseCgroupMounts(Fixture("mountinfo/escaped.txt"));
  ASSERT_TRUE(mounts.ok()) << mounts.status().message();
  ASSERT_EQ(mounts->size(), 2u);
  EXPECT_EQ((*mounts)[1].root, "/my group");
  EXPECT_EQ((*mounts)[1].mount_point, "/mnt/cgroup v1\\x");
}

TEST(ParseCgroupMountsTest, Errors) {
  auto truncated = ParseCgroupMounts(Fixture("mountinfo/truncated.txt"), "/proc/self/mountinfo");
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("/proc/self/mountinfo: line 3"));
  EXPECT_THAT(truncated.status().message(), HasSubstr("truncated"));
  auto no_separator = ParseCgroupMounts(Fixture("mountinfo/no_separator.txt"));
  ASSERT_FALSE(no_separator.ok());
  EXPECT_THAT(no_separator.status().message(), HasSubstr("lacks \" - <fstype>"));
  EXPECT_FALSE(ParseCgroupMounts("1 2 3:4 /\n").ok());
}

TEST(UnescapeMountPathTest, DecodesOnlyOctalEscapes) {
  EXPECT_EQ(UnescapeMountPath("/a\\040b\\011c\\012d\\134e"), "/a b\tc\nd\\e");
  EXPECT_EQ(UnescapeMountPath("/plain"), "/plain");
  EXPECT_EQ(UnescapeMountPath("/bad\\09x"), "/bad\\09x");
  EXPECT_EQ(UnescapeMountPath("/end\\04"), "/end\\04");
}

// ---- cgroup v2 cpu.max, memory.max, memory.high ----

TEST(ParseCpuMaxTest, UnlimitedAndHalfCore) {
  auto unlimited = ParseCpuMax(Fixture("cgroupfs/cpu_max_unlimited.txt"));
  ASSERT_TRUE(unlimited.ok()) << unlimited.status().message();
  EXPECT_FALSE(unlimited->quota_us.has_value());
  EXPECT_EQ(unlimited->period_us, 100000u);
  auto half = ParseCpuMax(Fixture("cgroupfs/cpu_max_half.txt"));
  ASSERT_TRUE(half.ok()) << half.status().message();
  EXPECT_EQ(half->quota_us, 50000u);
  EXPECT_EQ(half->period_us, 100000u);
}

TEST(ParseCpuMaxTest, Errors) {
  auto truncated =
      ParseCpuMax(Fixture("cgroupfs/cpu_max_truncated.txt"), "/sys/fs/cgroup/x/cpu.max");
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("/sys/fs/cgroup/x/cpu.max"));
  EXPECT_THAT(truncated.status().message(), HasSubstr("no period"));
  auto bad = ParseCpuMax(Fixture("cgroupfs/cpu_max_bad.txt"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("quota \"fifty\""));
  auto zero = ParseCpuMax(Fixture("cgroupfs/cpu_max_zero_period.txt"));
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("period \"0\""));
  EXPECT_FALSE(ParseCpuMax("").ok());
  EXPECT_FALSE(ParseCpuMax("1000 100000 7").ok());
}

TEST(ParseMemoryMaxOrHighTest, Values) {
  auto unlimited = ParseMemoryMaxOrHigh(Fixture("cgroupfs/memory_max_unlimited.txt"));
  ASSERT_TRUE(unlimited.ok());
  EXPECT_FALSE(unlimited->has_value());
  auto limited = ParseMemoryMaxOrHigh(Fixture("cgroupfs/memory_max_512mib.txt"));
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(*limited, 536870912u);
  auto high = ParseMemoryMaxOrHigh(Fixture("cgroupfs/memory_high_384mib.txt"), "memory.high");
  ASSERT_TRUE(high.ok());
  EXPECT_EQ(*high, 402653184u);
  auto bad = ParseMemoryMaxOrHigh(Fixture("cgroupfs/memory_max_bad.txt"), "/x/memory.max");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("/x/memory.max: \"512M\" is neither"));
  EXPECT_FALSE(ParseMemoryMaxOrHigh("").ok());
}

// ---- cgroup v1 cfs quota/period, memory.limit_in_bytes ----

TEST(ParseCfsTest, RealUnlimitedQuotaAndPeriod) {
  auto quota = ParseCfsQuotaUs(Fixture("cgroupfs/real_v1_cfs_quota_us.txt"));
  ASSERT_TRUE(quota.ok()) << quota.status().message();
  EXPECT_FALSE(quota->has_value());
  auto period = ParseCfsPeriodUs(Fixture("cgroupfs/real_v1_cfs_period_us.txt"));
  ASSERT_TRUE(period.ok());
  EXPECT_EQ(*period, 100000u);
}

TEST(ParseCfsTest, HalfCoreQuota) {
  auto quota = ParseCfsQuotaUs(Fixture("cgroupfs/cfs_quota_half.txt"));
  ASSERT_TRUE(quota.ok());
  EXPECT_EQ(*quota, 50000u);
}

TEST(ParseCfsTest, Errors) {
  auto negative = ParseCfsQuotaUs(Fixture("cgroupfs/cfs_quota_bad.txt"), "/c/cpu.cfs_quota_us");
  ASSERT_FALSE(negative.ok());
  EXPECT_THAT(negative.status().message(), HasSubstr("/c/cpu.cfs_quota_us: \"-5\" is not -1"));
  auto empty = ParseCfsQuotaUs(Fixture("cgroupfs/cfs_quota_empty.txt"));
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("\"\" is not a number"));
  EXPECT_FALSE(ParseCfsQuotaUs("0").ok());
  auto zero = ParseCfsPeriodUs(Fixture("cgroupfs/cfs_period_zero.txt"));
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("positive"));
}

TEST(ParseMemoryLimitInBytesTest, HugeValuesMeanNoLimit) {
  auto real = ParseMemoryLimitInBytes(Fixture("cgroupfs/real_v1_memory_limit_in_bytes.txt"));
  ASSERT_TRUE(real.ok()) << real.status().message();
  EXPECT_FALSE(real->has_value());  // 9223372036854771712
  auto big_pages = ParseMemoryLimitInBytes(Fixture("cgroupfs/memory_limit_in_bytes_64k_pages.txt"));
  ASSERT_TRUE(big_pages.ok());
  EXPECT_FALSE(big_pages->has_value());
  auto minus_one = ParseMemoryLimitInBytes("-1\n");
  ASSERT_TRUE(minus_one.ok());
  EXPECT_FALSE(minus_one->has_value());
}

TEST(ParseMemoryLimitInBytesTest, LimitAndError) {
  auto limit = ParseMemoryLimitInBytes(Fixture("cgroupfs/memory_limit_in_bytes_256mib.txt"));
  ASSERT_TRUE(limit.ok());
  EXPECT_EQ(*limit, 268435456u);
  auto bad = ParseMemoryLimitInBytes(Fixture("cgroupfs/memory_limit_in_bytes_bad.txt"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("\"1G\" is not a number of bytes"));
}

// ---- CPU lists ----

TEST(ParseCpuListCountTest, RealAndMixedLists) {
  EXPECT_EQ(*ParseCpuListCount(Fixture("cpulist/real_online.txt")), 2);
  EXPECT_EQ(*ParseCpuListCount(Fixture("cpulist/real_cpuset_cpus.txt")), 2);
  EXPECT_EQ(*ParseCpuListCount(Fixture("cpulist/real_cpuset_effective_cpus.txt")), 2);
  EXPECT_EQ(*ParseCpuListCount(Fixture("cpulist/mixed.txt")), 7);  // 0-3,5,7-8
  EXPECT_EQ(*ParseCpuListCount(Fixture("cpulist/empty.txt")), 0);
  EXPECT_EQ(*ParseCpuListCount("5"), 1);
}

TEST(ParseCpuListCountTest, Errors) {
  auto reversed = ParseCpuListCount(Fixture("cpulist/reversed.txt"), "cpuset.cpus");
  ASSERT_FALSE(reversed.ok());
  EXPECT_THAT(reversed.status().message(), HasSubstr("cpuset.cpus: item \"3-1\""));
  auto garbage = ParseCpuListCount(Fixture("cpulist/garbage.txt"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.status().message(), HasSubstr("item \"x\""));
  EXPECT_FALSE(ParseCpuListCount("0-").ok());
  EXPECT_FALSE(ParseCpuListCount("0,,1").ok());
  EXPECT_FALSE(ParseCpuListCount("0-99999999999").ok());
}

}  // namespace
}  // namespace sleuth::collectors
