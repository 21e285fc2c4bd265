#include "sleuth/capture/ptrace_thread_dumper.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "sleuth/common/files.h"
#include "walk_target_threads.h"

namespace sleuth::capture {
namespace {

using sleuth_walk_target::Gettid;
using sleuth_walk_target::StackInTargetText;

const profiles::Label* FindLabel(const profiles::RawSample& sample, const std::string& key) {
  for (const profiles::Label& label : sample.labels) {
    if (label.key == key) return &label;
  }
  return nullptr;
}

struct ThreadView {
  std::string name;
  std::string state;
  std::vector<uint64_t> pcs;
};

std::map<pid_t, ThreadView> ByTid(const profiles::RawProfile& profile) {
  std::map<pid_t, ThreadView> threads;
  for (const profiles::RawSample& sample : profile.samples) {
    const profiles::Label* tid = FindLabel(sample, "thread_id");
    const profiles::Label* name = FindLabel(sample, "thread_name");
    EXPECT_NE(tid, nullptr);
    EXPECT_NE(name, nullptr);
    if (tid == nullptr || name == nullptr) continue;
    EXPECT_EQ(sample.values, std::vector<int64_t>{1});
    const profiles::Label* state = FindLabel(sample, "thread_state");
    EXPECT_TRUE(threads
                    .emplace(static_cast<pid_t>(tid->num),
                             ThreadView{name->str, state ? state->str : "", sample.pcs})
                    .second)
        << "thread " << tid->num << " appears twice";
  }
  return threads;
}

std::string StatusField(pid_t tid, const std::string& field) {
  Result<std::string> text = ReadFile("/proc/self/task/" + std::to_string(tid) + "/status");
  if (!text.ok()) return "";
  const size_t at = text->find("\n" + field + ":");
  if (at == std::string::npos) return "";
  const size_t begin = text->find_first_not_of(" \t", at + field.size() + 2);
  return text->substr(begin, text->find('\n', begin) - begin);
}

std::vector<pid_t> OwnThreads() {
  std::vector<pid_t> tids;
  Result<std::vector<std::string>> names = ListDir("/proc/self/task");
  if (names.ok()) {
    for (const std::string& name : *names) tids.push_back(std::stoi(name));
  }
  return tids;
}

void ExpectNoThreadTraced() {
  for (pid_t tid : OwnThreads()) {
    EXPECT_EQ(StatusField(tid, "TracerPid"), "0") << "thread " << tid;
    EXPECT_NE(StatusField(tid, "State").rfind("t", 0), 0u) << "thread " << tid << " stopped";
  }
}

PtraceThreadDumperOptions TestOptions() {
  PtraceThreadDumperOptions options;
  options.walker_path = SLEUTH_STACKWALK_PATH;
  // Generous: a loaded 2-core machine may take long to start the walker.
  options.walk_timeout = std::chrono::seconds(20);
  options.stop_timeout = std::chrono::seconds(5);
  return options;
}

TEST(YamaDecisionTest, FollowsTheScope) {
  EXPECT_EQ(DecideYama(std::nullopt, false).policy, YamaPolicy::kNoRestriction);
  EXPECT_EQ(DecideYama("0\n", false).policy, YamaPolicy::kNoRestriction);
  EXPECT_EQ(DecideYama("1\n", false).policy, YamaPolicy::kNamePtracer);
  EXPECT_EQ(DecideYama("1", true).policy, YamaPolicy::kNoRestriction);
  EXPECT_EQ(DecideYama("2\n", true).policy, YamaPolicy::kNoRestriction);
  const YamaDecision admin_only = DecideYama("2\n", false);
  EXPECT_EQ(admin_only.policy, YamaPolicy::kRefused);
  EXPECT_NE(admin_only.reason.find("CAP_SYS_PTRACE"), std::string::npos);
  EXPECT_EQ(DecideYama("3\n", true).policy, YamaPolicy::kRefused);
  EXPECT_EQ(DecideYama("7\n", true).policy, YamaPolicy::kRefused);
  EXPECT_EQ(DecideYama("", false).policy, YamaPolicy::kRefused);
  EXPECT_EQ(DecideYama("x", false).policy, YamaPolicy::kRefused);
}

TEST(PtraceThreadDumperTest, FindsTheWalkerBesideItsOwnFile) {
  char self[4096] = {};
  ASSERT_GT(readlink("/proc/self/exe", self, sizeof self - 1), 0);
  std::string dir(self);
  dir.resize(dir.rfind('/') + 1);
  // The engine is linked into this test program, so "its file" is the program.
  EXPECT_EQ(WalkerBesideThisLibrary(), dir + "sleuth-stackwalk");

  PtraceThreadDumper by_default;
  unsetenv("SLEUTH_STACKWALK");
  EXPECT_EQ(by_default.WalkerPath(), dir + "sleuth-stackwalk");
  setenv("SLEUTH_STACKWALK", "/opt/x/sleuth-stackwalk", 1);
  EXPECT_EQ(by_default.WalkerPath(), "/opt/x/sleuth-stackwalk");
  unsetenv("SLEUTH_STACKWALK");
}

TEST(PtraceThreadDumperTest, MissingWalkerIsUnavailableAndSaysWhere) {
  PtraceThreadDumperOptions options;
  options.walker_path = "/nonexistent/sleuth-stackwalk";
  PtraceThreadDumper dumper(options);
  const Status available = dumper.Available();
  EXPECT_EQ(available.code(), StatusCode::kUnavailable);
  EXPECT_NE(available.message().find("/nonexistent/sleuth-stackwalk"), std::string::npos);
  EXPECT_NE(available.message().find("SLEUTH_STACKWALK"), std::string::npos);
  EXPECT_EQ(dumper.Collect({}).status().code(), StatusCode::kUnavailable);
}

TEST(PtraceThreadDumperTest, AProgramThatIsNotTheWalkerGivesAnError) {
  PtraceThreadDumperOptions options = TestOptions();
  options.walker_path = "/bin/true";
  PtraceThreadDumper dumper(options);
  Result<Capture> capture = dumper.Collect({});
  ASSERT_FALSE(capture.ok());
  EXPECT_EQ(capture.status().code(), StatusCode::kUnavailable);
  // It either exits before the go byte or after it, without output.
  EXPECT_NE(capture.status().message().find("stack walker"), std::string::npos)
      << capture.status().ToString();
  ExpectNoThreadTraced();
}

TEST(PtraceThreadDumperTest, TakesEveryStackWithoutDisturbingSleepPollOrBlockedThreads) {
  const auto sleep_ms = 3000;
  sleuth_walk_target::TargetThreads threads(sleep_ms);
  PtraceThreadDumper dumper(TestOptions());
  ASSERT_TRUE(dumper.Available().ok()) << dumper.Available().ToString();
  Result<Capture> capture = dumper.Collect({});
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  // Right after the dump no thread of this process is traced or stopped.
  ExpectNoThreadTraced();

  const profiles::RawProfile& profile = capture->profile;
  ASSERT_EQ(profile.sample_types.size(), 1u);
  EXPECT_EQ(profile.sample_types[0].type, "threads");
  EXPECT_EQ(profile.sample_types[0].unit, "count");
  EXPECT_TRUE(profile.leaf_is_exact_pc);
  EXPECT_GT(profile.time_nanos, 0);
  std::map<pid_t, ThreadView> by_tid = ByTid(profile);
  for (pid_t tid : {threads.sleeper_tid(), threads.spinner_tid(), threads.poller_tid()}) {
    ASSERT_TRUE(by_tid.count(tid)) << "thread " << tid << " missing";
    EXPECT_EQ(by_tid[tid].state, "") << "thread " << tid << " has no stack";
    EXPECT_TRUE(StackInTargetText(by_tid[tid].pcs))
        << "thread " << tid << " (" << by_tid[tid].name << ", " << by_tid[tid].pcs.size()
        << " frames) lacks its function";
  }
  EXPECT_EQ(by_tid[threads.spinner_tid()].name, "target spin");
  EXPECT_EQ(by_tid[threads.poller_tid()].name, "target-poll");
  // The calling thread is a thread like the others.
  ASSERT_TRUE(by_tid.count(Gettid()));
  EXPECT_FALSE(by_tid[Gettid()].pcs.empty());
  for (const std::string& note : capture->notes) {
    EXPECT_EQ(note.find("no stack"), std::string::npos) << note;
    EXPECT_EQ(note.find("EINTR"), std::string::npos) << note;
  }

  threads.Stop();
  const sleuth_walk_target::SleepOutcome& sleep = threads.sleep_outcome();
  EXPECT_EQ(sleep.rc, 0) << "clock_nanosleep returned " << strerror(sleep.rc);
  EXPECT_GE(sleep.elapsed_ns, sleep.requested_ns) << "the stop shortened the sleep";
  EXPECT_EQ(threads.poll_rc(), 1) << "poll: " << strerror(threads.poll_errno());
}

TEST(PtraceThreadDumperTest, LeavesOutExcludedThreads) {
  sleuth_walk_target::TargetThreads threads(100);
  PtraceThreadDumper dumper(TestOptions());
  CaptureRequest request;
  request.exclude_tids = {threads.poller_tid(), threads.spinner_tid()};
  Result<Capture> capture = dumper.Collect(request);
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  std::map<pid_t, ThreadView> by_tid = ByTid(capture->profile);
  EXPECT_FALSE(by_tid.count(threads.poller_tid()));
  EXPECT_FALSE(by_tid.count(threads.spinner_tid()));
  EXPECT_TRUE(by_tid.count(Gettid()));
}

bool WaitFor(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

TEST(PtraceThreadDumperTest, CancelEndsTheWalkerAndReleasesTheHeldThread) {
  sleuth_walk_target::TargetThreads threads(100);
  PtraceThreadDumperOptions options = TestOptions();
  options.extra_walker_args = {"--pause-while-stopped-ms", "600000"};
  PtraceThreadDumper dumper(options);
  std::atomic<bool> cancel{false};
  std::atomic<bool> saw_a_stopped_thread{false};
  std::atomic<pid_t> canceller_tid{0};
  std::thread canceller([&] {
    canceller_tid = Gettid();
    saw_a_stopped_thread = WaitFor([] {
      for (pid_t tid : OwnThreads()) {
        if (StatusField(tid, "TracerPid") != "0" && StatusField(tid, "State").rfind("t", 0) == 0) {
          return true;
        }
      }
      return false;
    });
    cancel.store(true);
  });
  while (canceller_tid.load() == 0) std::this_thread::yield();
  CaptureRequest request;
  request.cancel = &cancel;
  // The walker holds the first thread it stops for as long as the test
  // says; neither the thread that must see the cancel nor the one that
  // sets it may be that thread.
  request.exclude_tids = {Gettid(), canceller_tid.load()};
  Result<Capture> capture = dumper.Collect(request);
  canceller.join();
  EXPECT_TRUE(saw_a_stopped_thread.load());
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  ExpectNoThreadTraced();
  bool cancelled_note = false;
  for (const std::string& note : capture->notes) {
    cancelled_note |= note.find("cancelled") != std::string::npos;
  }
  EXPECT_TRUE(cancelled_note);
  // Every thread is named, even those the walk did not reach; the excluded
  // ones are not.
  std::map<pid_t, ThreadView> by_tid = ByTid(capture->profile);
  EXPECT_TRUE(by_tid.count(threads.spinner_tid()));
  EXPECT_TRUE(by_tid.count(threads.poller_tid()));
  EXPECT_FALSE(by_tid.count(Gettid()));
  EXPECT_FALSE(by_tid.count(canceller_tid.load()));
}

// A host that blocks every signal and reaps with wait(-1) in a loop must
// never see the walker: no SIGCHLD, no child returned, no zombie left.
TEST(PtraceThreadDumperTest, HostWaitingForAnyChildNeverSeesTheWalker) {
  const pid_t host = fork();
  ASSERT_GE(host, 0);
  if (host == 0) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, nullptr);
    std::atomic<bool> stop{false};
    std::atomic<int> reaped_something{0};
    std::atomic<int> waits{0};
    std::thread reaper([&] {
      while (!stop.load()) {
        int status = 0;
        const pid_t got = wait(&status);
        waits.fetch_add(1);
        if (got != -1 || errno != ECHILD) reaped_something.fetch_add(1);
        const pid_t also = waitpid(-1, &status, WNOHANG);
        if (also != -1 || errno != ECHILD) reaped_something.fetch_add(1);
      }
    });
    PtraceThreadDumper dumper(TestOptions());
    int failures = 0;
    for (int round = 0; round < 5; ++round) {
      Result<Capture> capture = dumper.Collect({});
      if (!capture.ok()) ++failures;
    }
    stop.store(true);
    reaper.join();
    sigset_t pending;
    sigpending(&pending);
    const bool sigchld = sigismember(&pending, SIGCHLD) == 1;
    int status = 0;
    const bool no_child_left = waitpid(-1, &status, __WALL | WNOHANG) == -1 && errno == ECHILD;
    _exit((failures == 0 ? 0 : 1) | (reaped_something.load() == 0 ? 0 : 2) | (sigchld ? 4 : 0) |
          (no_child_left ? 0 : 8) | (waits.load() > 0 ? 0 : 16));
  }
  int status = 0;
  ASSERT_EQ(waitpid(host, &status, 0), host);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "1: a dump failed, 2: wait(-1) returned the walker, 4: SIGCHLD was sent, 8: a child "
         "was left, 16: the host never waited";
}

// A host that reaps its orphans (a subreaper, like pid 1 of a container)
// inherits the walker when the launcher exits: the engine reaps it, so no
// zombie is left behind dump after dump.
TEST(PtraceThreadDumperTest, ASubreaperHostIsLeftWithNoZombie) {
  const pid_t host = fork();
  ASSERT_GE(host, 0);
  if (host == 0) {
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) _exit(3);
    PtraceThreadDumper dumper(TestOptions());
    int failures = 0;
    for (int round = 0; round < 3; ++round) {
      if (!dumper.Collect({}).ok()) ++failures;
    }
    int status = 0;
    const bool no_child_left = waitpid(-1, &status, __WALL | WNOHANG) == -1 && errno == ECHILD;
    _exit((failures == 0 ? 0 : 1) | (no_child_left ? 0 : 2));
  }
  int status = 0;
  ASSERT_EQ(waitpid(host, &status, 0), host);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: a dump failed, 2: a zombie was left, 3: no subreaper";
}

TEST(PtraceThreadDumperTest, TheThreadsEngineIsThePtraceOneAndTheSignalOneStaysAvailable) {
  Result<std::unique_ptr<Engine>> engine = MakeEngine("threads");
  ASSERT_TRUE(engine.ok());
  EXPECT_NE(dynamic_cast<PtraceThreadDumper*>(engine->get()), nullptr);
  std::unique_ptr<Engine> signal_engine = MakeSignalThreadDumper();
  ASSERT_NE(signal_engine, nullptr);
  EXPECT_EQ(signal_engine->name(), "threads");
  EXPECT_EQ(dynamic_cast<PtraceThreadDumper*>(signal_engine.get()), nullptr);
}

}  // namespace
}  // namespace sleuth::capture
