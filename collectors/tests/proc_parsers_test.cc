#include "sleuth/collectors/proc_parsers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace sleuth::collectors {
namespace {

using ::sleuth::collectors::testing::Fixture;
using ::testing::HasSubstr;

// ---- /proc/<pid>/stat ----

TEST(ParseProcStatTest, CommWithSpacesAndParenthesesIsReadFromTheLastParen) {
  // Captured from a `sleep` copied to a file named "a) b (c".
  Result<ProcStat> stat = ParseProcStat(Fixture("stat/real_weird_comm.txt"));
  ASSERT_TRUE(stat.ok()) << stat.status().message();
  EXPECT_EQ(stat->pid, 5655);
  EXPECT_EQ(stat->comm, "a) b (c");
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->ppid, 1);
  EXPECT_EQ(stat->utime_ticks, 0u);
  EXPECT_EQ(stat->stime_ticks, 0u);
  EXPECT_EQ(stat->num_threads, 1);
  EXPECT_EQ(stat->starttime_ticks, 53741u);
  EXPECT_EQ(stat->vsize_bytes, 2990080u);
  EXPECT_EQ(stat->rss_pages, 406u);
}

TEST(ParseProcStatTest, BusyMultiThreadedProcess) {
  // Captured from python3 while three threads spun.
  Result<ProcStat> stat = ParseProcStat(Fixture("stat/real_busy_threads.txt"));
  ASSERT_TRUE(stat.ok()) << stat.status().message();
  EXPECT_EQ(stat->comm, "python3");
  EXPECT_EQ(stat->state, 'R');
  EXPECT_EQ(stat->utime_ticks, 125u);
  EXPECT_EQ(stat->stime_ticks, 8u);
  EXPECT_EQ(stat->num_threads, 4);
  EXPECT_EQ(stat->starttime_ticks, 54391u);
  EXPECT_EQ(stat->rss_pages, 3335u);
}

TEST(ParseProcStatTest, KernelThread) {
  Result<ProcStat> stat = ParseProcStat(Fixture("stat/real_kthread.txt"));
  ASSERT_TRUE(stat.ok()) << stat.status().message();
  EXPECT_EQ(stat->pid, 2);
  EXPECT_EQ(stat->comm, "kthreadd");
  EXPECT_EQ(stat->rss_pages, 0u);
  EXPECT_EQ(stat->vsize_bytes, 0u);
}

TEST(ParseProcStatTest, TruncatedFileNamesTheFileAndTheProblem) {
  Result<ProcStat> stat = ParseProcStat(Fixture("stat/truncated.txt"), "/proc/5734/stat");
  ASSERT_FALSE(stat.ok());
  EXPECT_EQ(stat.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(stat.status().message(), HasSubstr("/proc/5734/stat"));
  EXPECT_THAT(stat.status().message(), HasSubstr("expected at least 24"));
  EXPECT_THAT(stat.status().message(), HasSubstr("truncated"));
}

TEST(ParseProcStatTest, MissingCommandNameIsAnError) {
  Result<ProcStat> stat = ParseProcStat(Fixture("stat/no_paren.txt"));
  ASSERT_FALSE(stat.ok());
  EXPECT_THAT(stat.status().message(), HasSubstr("(command name)"));
}

TEST(ParseProcStatTest, NonNumericUtimeNamesTheField) {
  Result<ProcStat> stat = ParseProcStat(Fixture("stat/bad_utime.txt"));
  ASSERT_FALSE(stat.ok());
  EXPECT_THAT(stat.status().message(), HasSubstr("field 14 (utime)"));
  EXPECT_THAT(stat.status().message(), HasSubstr("\"x1\""));
}

TEST(ParseProcStatTest, EmptyFile) {
  Result<ProcStat> stat = ParseProcStat(Fixture("stat/empty.txt"));
  ASSERT_FALSE(stat.ok());
  EXPECT_THAT(stat.status().message(), HasSubstr("empty"));
}

TEST(ParseProcStatTest, BadPidAndState) {
  EXPECT_THAT(ParseProcStat("x (a) S 1").status().message(), HasSubstr("field 1 (pid)"));
  std::string text = Fixture("stat/real_kthread.txt");
  text.replace(text.find(") S "), 4, ") SS ");
  EXPECT_THAT(ParseProcStat(text).status().message(), HasSubstr("field 3 (state)"));
}

// ---- /proc/<pid>/status ----

TEST(ParseProcStatusTest, RealProcess) {
  Result<ProcStatus> status = ParseProcStatus(Fixture("status/real_weird_comm.txt"));
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(status->name, "a) b (c");
  EXPECT_EQ(status->state, 'S');
  EXPECT_EQ(status->tgid, 5655);
  EXPECT_EQ(status->pid, 5655);
  EXPECT_EQ(status->ppid, 1);
  EXPECT_EQ(status->uid_real, 0u);
  EXPECT_EQ(status->uid_effective, 0u);
  EXPECT_EQ(status->gid_real, 0u);
  EXPECT_EQ(status->threads, 1);
  EXPECT_EQ(status->vm_peak_bytes, 2920u * 1024);
  EXPECT_EQ(status->vm_size_bytes, 2920u * 1024);
  EXPECT_EQ(status->vm_hwm_bytes, 1800u * 1024);
  EXPECT_EQ(status->vm_rss_bytes, 1800u * 1024);
  EXPECT_EQ(status->rss_anon_bytes, 112u * 1024);
  EXPECT_EQ(status->rss_file_bytes, 1688u * 1024);
  EXPECT_EQ(status->rss_shmem_bytes, 0u);
  EXPECT_EQ(status->vm_swap_bytes, 0u);
  EXPECT_EQ(status->cpus_allowed, 2);
}

TEST(ParseProcStatusTest, ThreadsOfABusyProcess) {
  Result<ProcStatus> status = ParseProcStatus(Fixture("status/real_busy_threads.txt"));
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(status->state, 'R');
  EXPECT_EQ(status->threads, 4);
}

TEST(ParseProcStatusTest, KernelThreadHasNoMemoryLines) {
  Result<ProcStatus> status = ParseProcStatus(Fixture("status/real_kthread.txt"));
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(status->name, "kthreadd");
  EXPECT_FALSE(status->vm_rss_bytes.has_value());
  EXPECT_FALSE(status->vm_hwm_bytes.has_value());
}

TEST(ParseProcStatusTest, DistinctRealAndEffectiveIds) {
  Result<ProcStatus> status = ParseProcStatus(
      "Name:\tx\nState:\tS (sleeping)\nTgid:\t7\nPid:\t7\nPPid:\t1\n"
      "Uid:\t1000\t0\t0\t0\nGid:\t100\t5\t5\t5\nThreads:\t1\n");
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(status->uid_real, 1000u);
  EXPECT_EQ(status->uid_effective, 0u);
  EXPECT_EQ(status->gid_real, 100u);
  EXPECT_EQ(status->gid_effective, 5u);
}

TEST(ParseProcStatusTest, LineCutInTheMiddleIsAnError) {
  Result<ProcStatus> status = ParseProcStatus(Fixture("status/truncated.txt"), "/proc/9/status");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.status().message(), HasSubstr("/proc/9/status"));
  EXPECT_THAT(status.status().message(), HasSubstr("\"VmRS\" has no ':'"));
}

TEST(ParseProcStatusTest, MissingThreadsLine) {
  Result<ProcStatus> status = ParseProcStatus(Fixture("status/missing_threads.txt"));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.status().message(), HasSubstr("no Threads: line"));
}

TEST(ParseProcStatusTest, WrongUnitNamesTheKey) {
  Result<ProcStatus> status = ParseProcStatus(Fixture("status/bad_vmrss.txt"));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.status().message(), HasSubstr("VmRSS is \"12 MB\""));
  EXPECT_THAT(status.status().message(), HasSubstr("kB"));
}

// ---- /proc/<pid>/statm ----

TEST(ParseProcStatmTest, Real) {
  Result<ProcStatm> statm = ParseProcStatm(Fixture("statm/real.txt"));
  ASSERT_TRUE(statm.ok()) << statm.status().message();
  EXPECT_EQ(statm->size_pages, 730u);
  EXPECT_EQ(statm->resident_pages, 450u);
  EXPECT_EQ(statm->shared_pages, 422u);
  EXPECT_EQ(statm->text_pages, 5u);
  EXPECT_EQ(statm->data_pages, 89u);
}

TEST(ParseProcStatmTest, TruncatedAndMalformed) {
  Result<ProcStatm> truncated = ParseProcStatm(Fixture("statm/truncated.txt"), "/proc/3/statm");
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("/proc/3/statm: found 3 fields"));
  Result<ProcStatm> bad = ParseProcStatm(Fixture("statm/bad.txt"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("field 3 is \"abc\""));
  EXPECT_FALSE(ParseProcStatm("1 2 3 4 5 6 7 8").ok());
}

// ---- /proc/<pid>/smaps_rollup ----

TEST(ParseSmapsRollupTest, Real) {
  Result<SmapsRollup> rollup = ParseSmapsRollup(Fixture("smaps_rollup/real.txt"));
  ASSERT_TRUE(rollup.ok()) << rollup.status().message();
  EXPECT_EQ(rollup->rss_bytes, 1800u * 1024);
  EXPECT_EQ(rollup->pss_bytes, 339u * 1024);
  EXPECT_EQ(rollup->pss_anon_bytes, 112u * 1024);
  EXPECT_EQ(rollup->pss_file_bytes, 227u * 1024);
  EXPECT_EQ(rollup->shared_clean_bytes, 1652u * 1024);
  EXPECT_EQ(rollup->private_dirty_bytes, 148u * 1024);
  EXPECT_EQ(rollup->anonymous_bytes, 112u * 1024);
  EXPECT_EQ(rollup->swap_bytes, 0u);
}

TEST(ParseSmapsRollupTest, OlderKernelWithoutPssSplit) {
  Result<SmapsRollup> rollup = ParseSmapsRollup(Fixture("smaps_rollup/old_kernel.txt"));
  ASSERT_TRUE(rollup.ok()) << rollup.status().message();
  EXPECT_EQ(rollup->rss_bytes, 10240u * 1024);
  EXPECT_EQ(rollup->pss_bytes, 6144u * 1024);
  EXPECT_FALSE(rollup->pss_anon_bytes.has_value());
  EXPECT_EQ(rollup->swap_bytes, 512u * 1024);
  EXPECT_EQ(rollup->swap_pss_bytes, 256u * 1024);
}

TEST(ParseSmapsRollupTest, Errors) {
  Result<SmapsRollup> truncated = ParseSmapsRollup(Fixture("smaps_rollup/truncated.txt"));
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("Pss is \"3\""));
  Result<SmapsRollup> empty = ParseSmapsRollup(Fixture("smaps_rollup/empty.txt"));
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("empty"));
  Result<SmapsRollup> no_header = ParseSmapsRollup(Fixture("smaps_rollup/no_header.txt"));
  ASSERT_FALSE(no_header.ok());
  EXPECT_THAT(no_header.status().message(), HasSubstr("[rollup]"));
  Result<SmapsRollup> no_pss = ParseSmapsRollup("0-1 ---p 0 00:00 0 [rollup]\nRss: 4 kB\n");
  ASSERT_FALSE(no_pss.ok());
  EXPECT_THAT(no_pss.status().message(), HasSubstr("no Pss: line"));
}

// ---- /proc/meminfo ----

TEST(ParseMemInfoTest, Real) {
  Result<MemInfo> info = ParseMemInfo(Fixture("meminfo/real.txt"));
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->mem_total_bytes, 24683620ull * 1024);
  EXPECT_TRUE(info->mem_available_bytes.has_value());
  EXPECT_TRUE(info->mem_free_bytes.has_value());
}

TEST(ParseMemInfoTest, Errors) {
  Result<MemInfo> truncated = ParseMemInfo(Fixture("meminfo/truncated.txt"), "/proc/meminfo");
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("/proc/meminfo: no MemTotal: line"));
  Result<MemInfo> bad = ParseMemInfo(Fixture("meminfo/bad.txt"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("MemTotal is \"lots kB\""));
  EXPECT_FALSE(ParseMemInfo("MemTotal: 0 kB\n").ok());
}

}  // namespace
}  // namespace sleuth::collectors
