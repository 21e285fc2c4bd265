#include "sleuth/capture/thread_dumper.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "parked_threads.h"
#include "sleuth/common/files.h"
#include "task_status.h"

// Takes a dump from a function whose address range the test knows (its own
// section), to find it on the dumping thread's own stack.
__attribute__((noinline,
               section("sleuth_dumping_text"))) static sleuth::Result<sleuth::capture::Capture>
SleuthDumpFromKnownFunction(sleuth::capture::ThreadDumper* dumper) {
  sleuth::Result<sleuth::capture::Capture> capture = dumper->Collect({});
  asm volatile("" ::: "memory");  // keeps code after the call, so the return address is inside
  return capture;
}
extern "C" char __start_sleuth_dumping_text[];
extern "C" char __stop_sleuth_dumping_text[];

namespace sleuth::capture {
namespace {

using testing::FindLabel;
using testing::Gettid;
using testing::ParkedThreads;
using testing::StackInParkingFunction;

struct ThreadView {
  std::string name;
  std::string state;  // thread_state label, empty when the thread answered
  std::vector<uint64_t> pcs;
  std::vector<std::string> names;
};

// One entry per sample, by tid; fails the test on a duplicate tid or a
// sample without the required labels.
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
    auto [it, inserted] =
        threads.emplace(static_cast<pid_t>(tid->num),
                        ThreadView{name->str, state ? state->str : "", sample.pcs, sample.names});
    EXPECT_TRUE(inserted) << "thread " << tid->num << " appears twice";
  }
  return threads;
}

Capture MustDump(ThreadDumper& dumper) {
  Result<Capture> capture = dumper.Collect({});
  EXPECT_TRUE(capture.ok()) << capture.status().ToString();
  return capture.ok() ? std::move(capture).value() : Capture{};
}

void ExpectAllParkedAnswered(const std::map<pid_t, ThreadView>& threads,
                             const ParkedThreads& parked) {
  for (size_t i = 0; i < parked.tids().size(); ++i) {
    auto it = threads.find(parked.tids()[i]);
    ASSERT_NE(it, threads.end()) << "parked thread " << parked.tids()[i] << " is missing";
    EXPECT_EQ(it->second.name, parked.NameOf(i));
    EXPECT_EQ(it->second.state, "") << "thread " << parked.tids()[i] << " did not answer";
    EXPECT_TRUE(StackInParkingFunction(it->second.pcs))
        << "thread " << parked.tids()[i] << " stack (" << it->second.pcs.size()
        << " frames) lacks the parking function";
  }
}

TEST(ThreadDumperTest, DumpsAThousandParkedThreadsInsideTheParkingFunction) {
  ParkedThreads parked(1000);
  ThreadDumper dumper;
  ASSERT_TRUE(dumper.Available().ok()) << dumper.Available().ToString();
  Capture capture = MustDump(dumper);
  const profiles::RawProfile& profile = capture.profile;
  ASSERT_EQ(profile.sample_types.size(), 1u);
  EXPECT_EQ(profile.sample_types[0].type, "threads");
  EXPECT_EQ(profile.sample_types[0].unit, "count");
  EXPECT_TRUE(profile.leaf_is_exact_pc);
  EXPECT_GT(profile.time_nanos, 0);

  std::map<pid_t, ThreadView> threads = ByTid(profile);
  ExpectAllParkedAnswered(threads, parked);
  // Every thread of the process is there, the dumping one included.
  EXPECT_EQ(threads.size(), 1000u + 1u);
  ASSERT_TRUE(threads.count(Gettid()));
  EXPECT_FALSE(threads[Gettid()].pcs.empty());
  EXPECT_TRUE(capture.notes.empty()) << capture.notes.front();
}

TEST(ThreadDumperTest, LeafIsTheInterruptedPcAndTheHandlerIsNotOnTheStack) {
  ParkedThreads parked(4);
  ThreadDumper dumper;
  std::map<pid_t, ThreadView> threads = ByTid(MustDump(dumper).profile);
  for (pid_t tid : parked.tids()) {
    const std::vector<uint64_t>& pcs = threads[tid].pcs;
    ASSERT_GE(pcs.size(), 2u);
    // The thread sleeps in the futex syscall called from the parking
    // function, so the parking function is the caller of the leaf frame,
    // with no handler or trampoline frame between them.
    EXPECT_FALSE(testing::InParkingFunction(pcs[0]));
    EXPECT_TRUE(testing::InParkingFunction(pcs[1] - 1) ||
                (pcs.size() > 2 && testing::InParkingFunction(pcs[2] - 1)))
        << "the parking function is not the leaf's caller";
  }
}

// The dumping thread records its own stack from a context saved by
// libunwind's getcontext, called through the pointer resolved by dlsym: the
// leaf must be the dumper's own code (not libunwind's) and the stack must
// reach the function that asked for the dump.
TEST(ThreadDumperTest, DumpingThreadsOwnStackReachesItsCaller) {
  ThreadDumper dumper;
  Result<Capture> capture = SleuthDumpFromKnownFunction(&dumper);
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  std::map<pid_t, ThreadView> threads = ByTid(capture->profile);
  const std::vector<uint64_t>& pcs = threads[Gettid()].pcs;
  ASSERT_GE(pcs.size(), 2u);
  Dl_info leaf{};
  Dl_info dumper_code{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(pcs[0]), &leaf), 0);
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&ThreadDumper::CurrentSignal), &dumper_code), 0);
  EXPECT_EQ(leaf.dli_fbase, dumper_code.dli_fbase) << "leaf in " << leaf.dli_fname;
  bool caller_found = false;
  for (size_t i = 1; i < pcs.size(); ++i) {
    caller_found |= pcs[i] - 1 >= reinterpret_cast<uintptr_t>(__start_sleuth_dumping_text) &&
                    pcs[i] - 1 < reinterpret_cast<uintptr_t>(__stop_sleuth_dumping_text);
  }
  EXPECT_TRUE(caller_found) << "the function that asked for the dump is not on the stack ("
                            << pcs.size() << " frames)";
}

TEST(ThreadDumperTest, RepeatedDumpsStayCorrect) {
  ParkedThreads parked(50);
  ThreadDumper dumper;
  for (int round = 0; round < 100; ++round) {
    SCOPED_TRACE("dump " + std::to_string(round));
    std::map<pid_t, ThreadView> threads = ByTid(MustDump(dumper).profile);
    ExpectAllParkedAnswered(threads, parked);
    EXPECT_EQ(threads.size(), 51u);
    if (::testing::Test::HasFailure()) break;
  }
}

// Reads whether `signal` is pending for thread `tid`.
bool SignalPendingFor(pid_t tid, int signal) {
  Result<std::string> text = ReadFile("/proc/self/task/" + std::to_string(tid) + "/status");
  if (!text.ok()) return false;
  Result<internal::TaskStatus> status = internal::ParseTaskStatus(*text);
  return status.ok() && internal::HasSignal(status->pending_signals, signal);
}

TEST(ThreadDumperTest, ThreadBlockingTheSignalIsReportedAndNeverSignalled) {
  ParkedThreads parked(10);
  ParkedThreads blocked(1, "blocked-", /*block_all_signals=*/true);
  const pid_t blocked_tid = blocked.tids()[0];
  ThreadDumper dumper;

  // The blocked thread is named, with a marker instead of a stack, and
  // everyone else is dumped normally.
  Capture capture = MustDump(dumper);
  std::map<pid_t, ThreadView> threads = ByTid(capture.profile);
  ExpectAllParkedAnswered(threads, parked);
  ASSERT_TRUE(threads.count(blocked_tid));
  EXPECT_EQ(threads[blocked_tid].name, "blocked-0");
  EXPECT_EQ(threads[blocked_tid].state, "signal_blocked");
  EXPECT_TRUE(threads[blocked_tid].pcs.empty());
  ASSERT_EQ(threads[blocked_tid].names.size(), 1u);
  EXPECT_NE(threads[blocked_tid].names[0].find("no stack"), std::string::npos);
  ASSERT_FALSE(capture.notes.empty());
  EXPECT_NE(capture.notes[0].find(std::to_string(blocked_tid)), std::string::npos);
  // Seen blocking before anything was sent, it got no signal: none is left
  // pending for a later execve to inherit with SIG_DFL.
  EXPECT_FALSE(SignalPendingFor(blocked_tid, ThreadDumper::CurrentSignal()));
}

TEST(ThreadDumperTest, ThreadThatStartsBlockingIsReportedAndItsLateAnswerIgnored) {
  ParkedThreads parked(10);
  ParkedThreads turns(1, "turns-");
  const pid_t turns_tid = turns.tids()[0];
  ThreadDumper dumper;
  std::map<pid_t, ThreadView> threads = ByTid(MustDump(dumper).profile);
  EXPECT_TRUE(StackInParkingFunction(threads[turns_tid].pcs));
  const int signal = ThreadDumper::CurrentSignal();

  // Having answered before, it is signalled without a look; now it blocks,
  // so the request stays queued and the dump says why it has no stack.
  turns.SetBlocked(true);
  threads = ByTid(MustDump(dumper).profile);
  EXPECT_EQ(threads[turns_tid].state, "signal_blocked");
  ExpectAllParkedAnswered(threads, parked);
  ASSERT_TRUE(SignalPendingFor(turns_tid, signal));

  // The next dump does not queue a second request (real-time signals pile
  // up) and says so.
  threads = ByTid(MustDump(dumper).profile);
  EXPECT_EQ(threads[turns_tid].state, "signal_still_pending");
  ExpectAllParkedAnswered(threads, parked);

  // Unblocking delivers the stale request: the handler must ignore it (its
  // generation is over) and the thread carries on.
  turns.SetBlocked(false);
  for (int i = 0; i < 1000 && SignalPendingFor(turns_tid, signal); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_FALSE(SignalPendingFor(turns_tid, signal));

  // And the next dump sees it like any other thread.
  threads = ByTid(MustDump(dumper).profile);
  EXPECT_EQ(threads[turns_tid].state, "");
  EXPECT_TRUE(StackInParkingFunction(threads[turns_tid].pcs));
  ExpectAllParkedAnswered(threads, parked);
}

TEST(ThreadDumperTest, ThreadsExitingDuringTheDumpDoNotBreakIt) {
  ParkedThreads parked(20);
  std::atomic<bool> stop{false};
  std::atomic<int> churned{0};
  // Starts and ends short-lived threads as fast as it can.
  std::atomic<bool> named{false};
  std::thread churn([&] {
    pthread_setname_np(pthread_self(), "churn-main");  // its threads inherit the name
    named.store(true);
    while (!stop.load()) {
      std::vector<std::thread> batch;
      for (int i = 0; i < 8; ++i) {
        batch.emplace_back([] { pthread_setname_np(pthread_self(), "churn"); });
      }
      for (std::thread& t : batch) t.join();
      churned.fetch_add(8);
    }
  });
  while (!named.load()) std::this_thread::yield();
  ThreadDumper dumper;
  for (int round = 0; round < 30; ++round) {
    SCOPED_TRACE("dump " + std::to_string(round));
    std::map<pid_t, ThreadView> threads = ByTid(MustDump(dumper).profile);
    ExpectAllParkedAnswered(threads, parked);
    for (const auto& [tid, view] : threads) {
      // A thread that exits between listing and answering is left out; only
      // churn threads may have been caught without a stack.
      if (!view.state.empty()) {
        EXPECT_EQ(view.name.rfind("churn", 0), 0u) << view.name << " " << view.state;
      }
    }
    if (::testing::Test::HasFailure()) break;
  }
  stop.store(true);
  churn.join();
  EXPECT_GT(churned.load(), 0);
}

TEST(ThreadDumperTest, ChoosesARealTimeSignalAndKeepsItsHandlerInstalled) {
  ThreadDumper dumper;
  MustDump(dumper);
  const int signal = ThreadDumper::CurrentSignal();
  EXPECT_GE(signal, SIGRTMIN + 2);
  EXPECT_LE(signal, SIGRTMAX);
  struct sigaction action {};
  ASSERT_EQ(sigaction(signal, nullptr, &action), 0);
  EXPECT_NE(action.sa_flags & SA_SIGINFO, 0);
  EXPECT_NE(action.sa_flags & SA_RESTART, 0);
  EXPECT_NE(reinterpret_cast<void*>(action.sa_sigaction), reinterpret_cast<void*>(SIG_DFL));

  // A signal nobody asked for (not SI_QUEUE from this process) is ignored.
  ASSERT_EQ(raise(signal), 0);
  EXPECT_TRUE(MustDump(dumper).notes.empty());

  // Once installed the handler never moves.
  const int other = signal == SIGRTMAX ? signal - 1 : signal + 1;
  EXPECT_EQ(ThreadDumper::SetSignal(other).code(), StatusCode::kBusy);
  EXPECT_TRUE(ThreadDumper::SetSignal(signal).ok());
  EXPECT_EQ(ThreadDumper::SetSignal(SIGRTMIN).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ThreadDumper::SetSignal(SIGUSR1).code(), StatusCode::kInvalidArgument);
}

void HostHandler(int) {}

// Runs in a fresh process (death test, threadsafe style re-executes the
// binary), so the dumper has not installed anything yet.
TEST(ThreadDumperDeathTest, SkipsRealTimeSignalsTheHostUses) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        struct sigaction host {};
        host.sa_handler = &HostHandler;
        sigaction(SIGRTMAX, &host, nullptr);
        sigaction(SIGRTMAX - 1, &host, nullptr);
        ThreadDumper dumper;
        Result<Capture> capture = dumper.Collect({});
        struct sigaction after {};
        sigaction(SIGRTMAX, nullptr, &after);
        const bool host_kept = after.sa_handler == &HostHandler;
        _exit(capture.ok() && ThreadDumper::CurrentSignal() == SIGRTMAX - 2 && host_kept ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(ThreadDumperDeathTest, UsesTheSignalItIsGiven) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        const bool set = ThreadDumper::SetSignal(SIGRTMIN + 5).ok();
        ThreadDumper dumper;
        const bool dumped = dumper.Collect({}).ok();
        _exit(set && dumped && ThreadDumper::CurrentSignal() == SIGRTMIN + 5 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(ThreadDumperDeathTest, HostTakingTheSignalTurnsDumpsOff) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ThreadDumper dumper;
        if (!dumper.Collect({}).ok()) _exit(2);
        const int signal = ThreadDumper::CurrentSignal();
        struct sigaction host {};
        host.sa_handler = &HostHandler;
        sigaction(signal, &host, nullptr);
        const Status available = dumper.Available();
        const Result<Capture> capture = dumper.Collect({});
        struct sigaction after {};
        sigaction(signal, nullptr, &after);
        const bool refused = available.code() == StatusCode::kUnavailable &&
                             available.message().find("replaced") != std::string::npos &&
                             capture.status().code() == StatusCode::kUnavailable;
        _exit(refused && after.sa_handler == &HostHandler ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(ThreadDumperTest, DumpsInAForkedChild) {
  ParkedThreads parked(8);
  ThreadDumper dumper;
  MustDump(dumper);  // installed in the parent
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only the forking thread exists here; the handler came along.
    Result<Capture> capture = dumper.Collect({});
    const bool one_thread = capture.ok() && capture->profile.samples.size() == 1 &&
                            !capture->profile.samples[0].pcs.empty();
    _exit(one_thread ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  ExpectAllParkedAnswered(ByTid(MustDump(dumper).profile), parked);
}

TEST(ThreadDumperTest, RejectsANonPositiveTimeout) {
  ThreadDumper dumper(ThreadDumperOptions{std::chrono::milliseconds(0)});
  EXPECT_EQ(dumper.Collect({}).status().code(), StatusCode::kInvalidArgument);
}

TEST(ThreadDumperTest, ConcurrentDumpsAreSerializedOrRefused) {
  ParkedThreads parked(20);
  std::atomic<int> ok{0};
  std::atomic<int> busy{0};
  std::vector<std::thread> dumpers;
  for (int i = 0; i < 4; ++i) {
    dumpers.emplace_back([&] {
      ThreadDumper dumper;
      for (int round = 0; round < 20; ++round) {
        Result<Capture> capture = dumper.Collect({});
        if (capture.ok()) {
          ok.fetch_add(1);
          std::map<pid_t, ThreadView> threads = ByTid(capture->profile);
          for (pid_t tid : parked.tids()) {
            EXPECT_TRUE(StackInParkingFunction(threads[tid].pcs));
          }
        } else {
          EXPECT_EQ(capture.status().code(), StatusCode::kBusy);
          busy.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : dumpers) t.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(ok.load() + busy.load(), 80);
}

}  // namespace
}  // namespace sleuth::capture
