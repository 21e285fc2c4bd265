// Hosts that do what daemons and stressed services do (close every
// descriptor at start, run out of address space, fill the disk) with the
// agent preloaded: their output and exit status must be what they are
// without it, and the agent must fail its own work plainly instead.
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "harness.h"
#include "receiver_process.h"
#include "sleuth/common/files.h"

namespace sleuth::testing {
namespace {

std::map<std::string, std::string> HostileEnv(const std::string& dump_dir) {
  return AgentWithRulesOff(dump_dir, "100ms", 2);
}

std::string Diagnostics(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + ", signal " + std::to_string(r.term_signal) +
         "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// The daemon closes the agent's descriptors (dump directory, log file,
// uploader's wake-up and sockets) and its own files take the numbers: not
// one byte of the agent's may land in them, and the agent carries on.
TEST(HostileHost, ClosingEveryDescriptorLeavesTheHostsFilesIntact) {
  std::string dir = MakeTempDir("sleuth_closefds");
  std::string bare_files = dir + "/bare", agent_files = dir + "/agent";
  ASSERT_EQ(mkdir(bare_files.c_str(), 0700), 0);
  ASSERT_EQ(mkdir(agent_files.c_str(), 0700), 0);
  RunResult bare = RunProgram({.argv = {TestHost(), "closefds", bare_files}, .env = {}});
  ASSERT_EQ(bare.exit_code, 0) << Diagnostics(bare);

  uploader::testing::ReceiverProcess::Options options;
  options.record_dir = dir + "/received";
  auto receiver = uploader::testing::ReceiverProcess::Start(options);
  ASSERT_TRUE(receiver.ok()) << receiver.status().message();
  auto env = HostileEnv(dir + "/dumps");
  env["SLEUTH_UPLOAD_URL"] = (*receiver)->url();
  env["SLEUTH_UPLOAD_EXIT_GRACE"] = "5s";
  env["SLEUTH_AGENT_LOG_LEVEL"] = "debug";
  env["SLEUTH_AGENT_LOG_FILE"] = dir + "/agent.log";
  env["TEST_HOST_WAIT_DUMPS"] = "1";
  RunResult with = RunProgram({.argv = {TestHost(), "closefds", agent_files}, .env = env});
  EXPECT_EQ(with.exit_code, 0) << Diagnostics(with);
  EXPECT_EQ(with.out, bare.out) << Diagnostics(with);
  auto dumps = FindDumps(dir + "/dumps");
  ASSERT_EQ(dumps.size(), 1u) << "the agent must still write its dump\n" << Diagnostics(with);
  auto log = ReadFile(dir + "/agent.log");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->find("first 0"), std::string::npos) << "the host's bytes reached the agent's log";
  // The dump was shipped after the host took the uploader's numbers.
  bool delivered = false;
  for (int i = 0; i < 200 && !delivered; i++) {
    delivered = !(*receiver)->Requests().empty();
    if (!delivered) usleep(50 * 1000);
  }
  EXPECT_TRUE(delivered) << *log;
}

// The host exhausts RLIMIT_AS and lives on; the agent's threads meet the
// same limit and must neither throw into the host nor abort it.
TEST(HostileHost, AddressSpaceExhaustionDoesNotKillTheHost) {
#ifdef SLEUTH_SANITIZER_RUNTIME
  GTEST_SKIP() << "a sanitizer reserves terabytes of shadow address space: RLIMIT_AS cannot be "
                  "used under it; the default build runs this test";
#endif
  std::string dir = MakeTempDir("sleuth_nomem");
  RunResult bare = RunProgram({.argv = {TestHost(), "nomem"}, .env = {}});
  ASSERT_EQ(bare.exit_code, 0) << Diagnostics(bare);
  auto env = HostileEnv(dir);
  env["SLEUTH_THREADS_ENABLE"] = "true";  // the agent works while memory is short
  env["SLEUTH_THREADS_MIN"] = "0";
  env["SLEUTH_THREADS_ABS"] = "0.5";
  env["SLEUTH_THREADS_COOLDOWN"] = "0s";
  RunResult with = RunProgram({.argv = {TestHost(), "nomem"}, .env = env});
  EXPECT_EQ(with.term_signal, 0) << Diagnostics(with);
  EXPECT_EQ(with.exit_code, 0) << Diagnostics(with);
  EXPECT_EQ(with.err.find("terminate called"), std::string::npos) << Diagnostics(with);
  // How often malloc said no differs from run to run; the host's survival
  // does not.
  EXPECT_EQ(with.out.rfind("nomem: refused 100 times and lived on", 0), 0u) << Diagnostics(with);
}

// The dump directory's filesystem is full: dumps fail with a line in the
// log, the host goes on as without the agent, and no partial file stays.
TEST(HostileHost, AFullDiskFailsTheDumpNotTheHost) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  std::string dir = MakeTempDir("sleuth_full");
  std::string mnt = dir + "/fs";
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k,mode=0700") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  std::string dumps = mnt + "/dumps";
  ASSERT_EQ(mkdir(dumps.c_str(), 0700), 0);
  {
    // Leave a few KiB: room for the directory, not for a dump.
    std::ofstream filler(mnt + "/filler", std::ios::binary);
    std::string block(4096, 'x');
    while (filler.write(block.data(), block.size())) {
    }
  }
  RunResult bare = RunProgram({.argv = {TestHost(), "threads", "20", "300"}, .env = {}});
  auto env = HostileEnv(dumps);
  RunResult with = RunProgram({.argv = {TestHost(), "threads", "20", "300"}, .env = env});
  EXPECT_EQ(with.term_signal, 0) << Diagnostics(with);
  EXPECT_EQ(with.exit_code, bare.exit_code) << Diagnostics(with);
  // (the transcript says whether the request was queued: with the agent it is)
  EXPECT_EQ(with.out, "threads: 20 joined (dump request queued)\n") << Diagnostics(with);
  EXPECT_EQ(bare.out, "threads: 20 joined (dump request not queued)\n") << Diagnostics(bare);
  EXPECT_NE(with.err.find("cannot write a threads dump"), std::string::npos)
      << "the failed dump must be said, once\n" << Diagnostics(with);
  auto names = ListDir(dumps);
  ASSERT_TRUE(names.ok());
  for (const auto& n : *names) ADD_FAILURE() << "left behind in the full directory: " << n;
}

}  // namespace
}  // namespace sleuth::testing
