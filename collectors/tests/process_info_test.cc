#include "sleuth/collectors/process_info.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cerrno>

#include "child_process.h"
#include "test_util.h"

namespace sleuth::collectors {
namespace {

using ::sleuth::collectors::testing::ChildProcess;
using ::sleuth::collectors::testing::FixturePath;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// A pid that just stopped existing: a reaped child's.
pid_t DeadPid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

TEST(HostTest, CpuCoresMatchSysconf) {
  EXPECT_EQ(HostCpuCores(), ::sysconf(_SC_NPROCESSORS_ONLN));
}

TEST(HostTest, MemoryIsMemTotal) {
  Result<uint64_t> bytes = ReadHostMemoryBytes("/");
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  EXPECT_EQ(HostMemoryBytes(), *bytes);
  // MemTotal is physical RAM less what the kernel reserved at boot.
  uint64_t physical = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                      static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_LE(*bytes, physical);
  EXPECT_GT(*bytes, physical / 2);
}

TEST(HostTest, ReadsUnderARootPrefix) {
  EXPECT_EQ(*ReadHostCpuCores(FixturePath("trees/v2")), 8);
  EXPECT_EQ(*ReadHostMemoryBytes(FixturePath("trees/v2")), uint64_t{16} << 30);
  Result<int> missing = ReadHostCpuCores("/nonexistent-root");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(),
              HasSubstr("/nonexistent-root/sys/devices/system/cpu/online"));
}

TEST(ProcessInfoTest, NameAndThreadsOfAChild) {
  ChildProcess child;
  ChildProcess::Waiter(&child, 2);
  Result<std::vector<pid_t>> tids = ListThreads(child.pid());
  ASSERT_TRUE(tids.ok()) << tids.status().message();
  ASSERT_THAT(*tids, SizeIs(3));
  EXPECT_EQ((*tids)[0], child.pid());  // the main thread's tid is the pid, the smallest
  Result<std::string> main_name = ProcessName(child.pid());
  ASSERT_TRUE(main_name.ok());
  EXPECT_EQ(*main_name, *ThreadName(child.pid(), child.pid()));
  std::vector<std::string> worker_names;
  for (size_t i = 1; i < tids->size(); ++i) {
    Result<std::string> name = ThreadName(child.pid(), (*tids)[i]);
    ASSERT_TRUE(name.ok()) << name.status().message();
    worker_names.push_back(*name);
  }
  std::sort(worker_names.begin(), worker_names.end());
  EXPECT_THAT(worker_names, ElementsAre("worker-0", "worker-1"));
}

TEST(ProcessInfoTest, NameFollowsPrctl) {
  // Tests run on the main thread, whose comm is the process's name.
  char original[16] = {};
  ASSERT_EQ(::prctl(PR_GET_NAME, original), 0);
  ASSERT_EQ(::prctl(PR_SET_NAME, "sleuth probe"), 0);
  Result<std::string> name = ProcessName(::getpid());
  ::prctl(PR_SET_NAME, original);
  ASSERT_TRUE(name.ok()) << name.status().message();
  EXPECT_EQ(*name, "sleuth probe");
}

TEST(ProcessInfoTest, CmdlineAndExecutableOfSelf) {
  Result<std::vector<std::string>> argv = ReadCmdline(::getpid());
  ASSERT_TRUE(argv.ok()) << argv.status().message();
  ASSERT_FALSE(argv->empty());
  EXPECT_EQ((*argv)[0], program_invocation_name);
  Result<std::string> exe = ExecutablePath(::getpid());
  ASSERT_TRUE(exe.ok()) << exe.status().message();
  EXPECT_THAT(*exe, EndsWith("/collectors_test"));
}

TEST(ProcessInfoTest, GoneProcessIsNotFoundAndNamesTheFile) {
  pid_t dead = DeadPid();
  std::string proc = "/proc/" + std::to_string(dead);
  Result<std::string> name = ProcessName(dead);
  ASSERT_FALSE(name.ok());
  EXPECT_EQ(name.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(name.status().message(), HasSubstr(proc + "/comm"));
  EXPECT_EQ(ReadCmdline(dead).status().code(), StatusCode::kNotFound);
  EXPECT_THAT(ExecutablePath(dead).status().message(), HasSubstr(proc + "/exe"));
  EXPECT_EQ(ListThreads(dead).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ThreadName(dead, dead).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace sleuth::collectors
