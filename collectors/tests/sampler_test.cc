// The Sampler over fake /proc + /sys trees, with a FakeClock: exact values.
#include "sleuth/collectors/sampler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace sleuth::collectors {
namespace {

using ::sleuth::collectors::testing::TreeCopy;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr pid_t kPid = 4242;
constexpr long kTicksPerSecond = 100;
constexpr long kPageSize = 4096;
constexpr uint64_t kTreeRssPages = 3335;  // statm's resident field in every tree
constexpr uint64_t kMiB = 1 << 20;

struct StatFields {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  int threads = 4;
  uint64_t starttime_ticks = 5000;
  char state = 'S';
};

// A /proc/<pid>/stat line in the kernel's layout (fields 1-52).
std::string StatLine(const StatFields& f) {
  return std::to_string(kPid) + " (app) " + f.state + " 1 4242 4242 0 -1 4194304 2850 0 11 0 " +
         std::to_string(f.utime_ticks) + " " + std::to_string(f.stime_ticks) + " 0 0 20 0 " +
         std::to_string(f.threads) + " 0 " + std::to_string(f.starttime_ticks) +
         " 243523584 3335 18446744073709551615 94796624134144 94796624134485 140724730259856 0 0 "
         "0 0 16781312 2 0 0 0 17 1 0 0 0 0 0 94796624145840 94796624146456 94797311516672 "
         "140724730263099 140724730263538 140724730263538 140724730265551 0\n";
}

class SamplerTreeTest : public ::testing::Test {
 protected:
  SamplerOptions Options(const TreeCopy& tree) {
    SamplerOptions options;
    options.root = tree.root();
    options.clock_ticks_per_second = kTicksPerSecond;
    options.page_size_bytes = kPageSize;
    options.limits_refresh_interval = seconds(0);
    return options;
  }
  void WriteStat(const TreeCopy& tree, const StatFields& fields) {
    tree.Write("/proc/4242/stat", StatLine(fields));
  }

  FakeClock clock_;
};

TEST_F(SamplerTreeTest, FirstTickHasNoCpuThenExactPercentOverTheQuota) {
  TreeCopy tree("v2");  // 1.5 cores from cpu.max, 512MiB memory.max
  Sampler sampler(kPid, clock_, Options(tree));
  clock_.Set(seconds(100));
  WriteStat(tree, {.utime_ticks = 100, .stime_ticks = 50});

  Result<Reading> first = sampler.Sample();
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->pid, kPid);
  EXPECT_EQ(first->monotonic, seconds(100));
  EXPECT_FALSE(first->cpu_percent.has_value());
  EXPECT_EQ(first->cpu_time_ns_total, 1'500'000'000u);
  EXPECT_EQ(first->threads, 4);
  EXPECT_EQ(first->rss_bytes, kTreeRssPages * kPageSize);
  EXPECT_DOUBLE_EQ(first->limits.cpu_limit_cores, 1.5);
  EXPECT_EQ(first->limits.memory_limit_bytes, 512 * kMiB);
  EXPECT_DOUBLE_EQ(first->memory_percent,
                   100.0 * static_cast<double>(kTreeRssPages * kPageSize) / (512.0 * kMiB));

  // 90 ticks = 0.9 s of CPU in 2 s of wall time, over 1.5 cores: 30%.
  clock_.Advance(seconds(2));
  WriteStat(tree, {.utime_ticks = 160, .stime_ticks = 80, .threads = 7});
  Result<Reading> second = sampler.Sample();
  ASSERT_TRUE(second.ok()) << second.status().message();
  ASSERT_TRUE(second->cpu_percent.has_value());
  EXPECT_DOUBLE_EQ(*second->cpu_percent, 30.0);
  EXPECT_EQ(second->cpu_time_ns_total, 2'400'000'000u);
  EXPECT_EQ(second->threads, 7);
}

TEST_F(SamplerTreeTest, OneBusyCoreOnAnUnlimitedTwoCoreHostReads50) {
  TreeCopy tree("hybrid");  // this machine's layout: no quota, 2 CPUs
  Sampler sampler(kPid, clock_, Options(tree));
  WriteStat(tree, {.utime_ticks = 1000});
  ASSERT_TRUE(sampler.Sample().ok());
  clock_.Advance(seconds(1));
  WriteStat(tree, {.utime_ticks = 1100});
  Result<Reading> reading = sampler.Sample();
  ASSERT_TRUE(reading.ok()) << reading.status().message();
  EXPECT_EQ(reading->limits.cpu_limit_source, "host cores");
  EXPECT_DOUBLE_EQ(*reading->cpu_percent, 50.0);
}

TEST_F(SamplerTreeTest, QuarterCoreQuotaFullyUsedReads100) {
  TreeCopy tree("v2_container");
  Sampler sampler(kPid, clock_, Options(tree));
  ASSERT_TRUE(sampler.Sample().ok());
  clock_.Advance(milliseconds(400));
  WriteStat(tree, {.utime_ticks = 6, .stime_ticks = 4});  // 100 ms of CPU
  Result<Reading> reading = sampler.Sample();
  ASSERT_TRUE(reading.ok()) << reading.status().message();
  EXPECT_DOUBLE_EQ(reading->limits.cpu_limit_cores, 0.25);
  EXPECT_DOUBLE_EQ(*reading->cpu_percent, 100.0);
}

TEST_F(SamplerTreeTest, ZeroElapsedTimeGivesNoReadingAndKeepsTheBaseline) {
  TreeCopy tree("hybrid");
  Sampler sampler(kPid, clock_, Options(tree));
  ASSERT_TRUE(sampler.Sample().ok());
  WriteStat(tree, {.utime_ticks = 50});
  Result<Reading> same_instant = sampler.Sample();
  ASSERT_TRUE(same_instant.ok()) << same_instant.status().message();
  EXPECT_FALSE(same_instant->cpu_percent.has_value());
  // The next rate spans from the first tick: 100 ticks over 1 s on 2 cores.
  clock_.Advance(seconds(1));
  WriteStat(tree, {.utime_ticks = 100});
  EXPECT_DOUBLE_EQ(*sampler.Sample()->cpu_percent, 50.0);
}

TEST_F(SamplerTreeTest, CpuTimeGoingBackwardsReadsZeroNotHuge) {
  TreeCopy tree("hybrid");
  Sampler sampler(kPid, clock_, Options(tree));
  WriteStat(tree, {.utime_ticks = 500});
  ASSERT_TRUE(sampler.Sample().ok());
  clock_.Advance(seconds(1));
  WriteStat(tree, {.utime_ticks = 400});
  EXPECT_DOUBLE_EQ(*sampler.Sample()->cpu_percent, 0.0);
}

TEST_F(SamplerTreeTest, ProcessThatDisappearsIsGone) {
  TreeCopy tree("v2");
  Sampler sampler(kPid, clock_, Options(tree));
  ASSERT_TRUE(sampler.Sample().ok());
  std::filesystem::remove_all(tree.Path("/proc/4242"));
  Result<Reading> reading = sampler.Sample();
  ASSERT_FALSE(reading.ok());
  EXPECT_EQ(reading.status().code(), StatusCode::kGone);
  EXPECT_EQ(reading.status().message(), "process 4242 is gone (it exited)");
}

TEST_F(SamplerTreeTest, ReusedPidIsGoneAndStaysGone) {
  TreeCopy tree("v2");
  Sampler sampler(kPid, clock_, Options(tree));
  ASSERT_TRUE(sampler.Sample().ok());
  WriteStat(tree, {.starttime_ticks = 9000});
  Result<Reading> reused = sampler.Sample();
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.status().code(), StatusCode::kGone);
  EXPECT_THAT(reused.status().message(), HasSubstr("process 4242 is gone"));
  EXPECT_THAT(reused.status().message(), HasSubstr("start time changed from 5000 to 9000"));
  // Even if the old identity came back, the sampler does not follow it.
  WriteStat(tree, {});
  EXPECT_EQ(sampler.Sample().status().code(), StatusCode::kGone);
}

TEST_F(SamplerTreeTest, ZombieIsGone) {
  TreeCopy tree("v2");
  Sampler sampler(kPid, clock_, Options(tree));
  WriteStat(tree, {.state = 'Z'});
  Result<Reading> reading = sampler.Sample();
  ASSERT_FALSE(reading.ok());
  EXPECT_EQ(reading.status().code(), StatusCode::kGone);
  EXPECT_THAT(reading.status().message(), HasSubstr("zombie"));
}

TEST_F(SamplerTreeTest, UnknownPidIsGone) {
  TreeCopy tree("v2");
  Sampler sampler(999999, clock_, Options(tree));
  Result<Reading> reading = sampler.Sample();
  ASSERT_FALSE(reading.ok());
  EXPECT_EQ(reading.status().code(), StatusCode::kGone);
  EXPECT_EQ(reading.status().message(), "process 999999 is gone (no such process)");
}

TEST_F(SamplerTreeTest, MalformedStatNamesTheFile) {
  TreeCopy tree("v2");
  Sampler sampler(kPid, clock_, Options(tree));
  tree.Write("/proc/4242/stat", "4242 (app) S 1 2 3\n");
  Result<Reading> reading = sampler.Sample();
  ASSERT_FALSE(reading.ok());
  EXPECT_EQ(reading.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(reading.status().message(), HasSubstr(tree.root() + "/proc/4242/stat"));
  EXPECT_THAT(reading.status().message(), HasSubstr("truncated"));
}

TEST_F(SamplerTreeTest, RssFromSmapsRollup) {
  TreeCopy tree("v2");
  SamplerOptions options = Options(tree);
  options.use_smaps_rollup = true;
  Sampler sampler(kPid, clock_, options);
  Result<Reading> reading = sampler.Sample();
  ASSERT_TRUE(reading.ok()) << reading.status().message();
  EXPECT_EQ(reading->rss_bytes, 1800u * 1024);  // the captured smaps_rollup's Rss
}

TEST_F(SamplerTreeTest, LimitsAreRereadAfterTheRefreshInterval) {
  TreeCopy tree("v2");
  SamplerOptions options = Options(tree);
  options.limits_refresh_interval = seconds(10);
  Sampler sampler(kPid, clock_, options);
  ASSERT_DOUBLE_EQ(sampler.Sample()->limits.cpu_limit_cores, 1.5);
  tree.Write("/sys/fs/cgroup/system.slice/app.service/cpu.max", "50000 100000\n");
  clock_.Advance(seconds(5));
  EXPECT_DOUBLE_EQ(sampler.Sample()->limits.cpu_limit_cores, 1.5);
  clock_.Advance(seconds(5));
  EXPECT_DOUBLE_EQ(sampler.Sample()->limits.cpu_limit_cores, 0.5);
}

TEST_F(SamplerTreeTest, MalformedLimitFileDoesNotFailTheSample) {
  TreeCopy tree("v2");
  tree.Write("/sys/fs/cgroup/system.slice/app.service/memory.max", "lots\n");
  Sampler sampler(kPid, clock_, Options(tree));
  Result<Reading> reading = sampler.Sample();
  ASSERT_TRUE(reading.ok()) << reading.status().message();
  EXPECT_EQ(reading->limits.memory_limit_source, "host memory");
  EXPECT_EQ(reading->limits.memory_high_bytes, 384 * kMiB);
}

}  // namespace
}  // namespace sleuth::collectors
