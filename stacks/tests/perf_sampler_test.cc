#include "sleuth/stacks/perf_sampler.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "call_chain.h"
#include "sleuth/common/files.h"
#include "sleuth/profiles/symbolizer.h"
#include "sleuth/stacks/dwarf_unwinder.h"

extern char** environ;

namespace sleuth::stacks {
namespace {

constexpr auto kGenerousBound = std::chrono::seconds(60);

pid_t Gettid() {
  return static_cast<pid_t>(syscall(SYS_gettid));
}

size_t OpenFdCount() {
  Result<std::vector<std::string>> names = ListDir("/proc/self/fd");
  return names.ok() ? names->size() : 0;
}

struct UnwoundSample {
  pid_t tid = 0;
  std::vector<uint64_t> pcs;
};

// Unwinds every sample in the callback, as the engine does.
class Collector {
 public:
  explicit Collector(DwarfUnwinder& unwinder) : unwinder_(unwinder) {}
  void operator()(const PerfSample& sample) {
    uint64_t pcs[128];
    UnwindResult result = unwinder_.Unwind(sample.tid, sample.regs, &sample.stack, pcs, 128);
    samples.push_back({sample.tid, std::vector<uint64_t>(pcs, pcs + result.frames)});
  }
  std::vector<UnwoundSample> samples;

 private:
  DwarfUnwinder& unwinder_;
};

std::vector<std::string> Names(profiles::Symbolizer& symbolizer, const std::vector<uint64_t>& pcs) {
  std::vector<std::string> names;
  for (size_t i = 0; i < pcs.size(); ++i) {
    names.push_back(symbolizer.Lookup(i == 0 ? pcs[i] : pcs[i] - 1).function);
  }
  return names;
}

bool Has(const std::string& name, const char* part) {
  return name.find(part) != std::string::npos;
}

// Leaf, Middle and Outer as the first three frames, in that order.
bool IsFullChain(const std::vector<std::string>& names) {
  return names.size() >= 3 && Has(names[0], "SleuthChainLeaf") &&
         Has(names[1], "SleuthChainMiddle") && Has(names[2], "SleuthChainOuter");
}

std::string Describe(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : " <- ") + (name.empty() ? "?" : name);
  return text;
}

// The call-chain program, spawned with its stdout on a pipe.
class ChainProgram {
 public:
  ChainProgram() {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    const char* argv[] = {STACKS_CALL_CHAIN_PROGRAM, "120", nullptr};
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, const_cast<char**>(argv), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_fds[1]);
    // Waits for the "ready" line (the program prints it once both threads run).
    FILE* out = fdopen(pipe_fds[0], "r");
    if (out == nullptr) {
      close(pipe_fds[0]);
      return;
    }
    long plain = 0, blocking = 0;
    if (pid_ > 0 && std::fscanf(out, "ready %ld %ld", &plain, &blocking) == 2) {
      plain_tid_ = static_cast<pid_t>(plain);
      blocking_tid_ = static_cast<pid_t>(blocking);
    }
    std::fclose(out);
  }
  ~ChainProgram() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  pid_t plain_tid() const { return plain_tid_; }
  pid_t blocking_tid() const { return blocking_tid_; }

 private:
  pid_t pid_ = -1;
  pid_t plain_tid_ = 0;
  pid_t blocking_tid_ = 0;
};

TEST(PerfSamplerTest, ProfilesBothThreadsOfAnotherProcessThroughTheWholeChain) {
  ASSERT_TRUE(CheckPerfEventsAvailable().ok()) << CheckPerfEventsAvailable().ToString();
  ChainProgram program;
  ASSERT_GT(program.pid(), 0);
  ASSERT_NE(program.blocking_tid(), 0) << "the program did not start";

  Result<std::unique_ptr<DwarfUnwinder>> unwinder = DwarfUnwinder::ForProcess(program.pid());
  ASSERT_TRUE(unwinder.ok()) << unwinder.status().ToString();
  PerfSamplerOptions options;
  options.hz = 200;
  Result<std::unique_ptr<PerfSampler>> sampler = PerfSampler::ForProcess(program.pid(), options);
  ASSERT_TRUE(sampler.ok()) << sampler.status().ToString();

  // Runs until both threads have 30 samples (however slow the machine).
  std::atomic<bool> enough{false};
  std::map<pid_t, int> per_thread;
  Collector collector(**unwinder);
  Result<PerfSamplerResult> result =
      (*sampler)->Run(kGenerousBound, &enough, [&](const PerfSample& sample) {
        collector(sample);
        if (++per_thread[sample.tid] >= 30 && per_thread[program.plain_tid()] >= 30 &&
            per_thread[program.blocking_tid()] >= 30) {
          enough.store(true);
        }
      });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(result->cancelled) << "not enough samples of both threads within the bound";
  EXPECT_EQ(result->threads_skipped, 0u);
  EXPECT_GE(result->threads_sampled, 3u);  // main, plain, blocking

  Result<profiles::Symbolizer> symbolizer = profiles::Symbolizer::ForProcess(program.pid());
  ASSERT_TRUE(symbolizer.ok()) << symbolizer.status().ToString();
  for (pid_t tid : {program.plain_tid(), program.blocking_tid()}) {
    int in_leaf = 0;
    int full_chain = 0;
    std::string example;
    for (const UnwoundSample& sample : collector.samples) {
      if (sample.tid != tid) continue;
      std::vector<std::string> names = Names(*symbolizer, sample.pcs);
      if (names.empty() || !Has(names[0], "SleuthChainLeaf")) continue;
      ++in_leaf;
      if (IsFullChain(names)) {
        ++full_chain;
      } else if (example.empty()) {
        example = Describe(names);
      }
    }
    SCOPED_TRACE("thread " + std::to_string(tid));
    EXPECT_GE(in_leaf, 20);
    // The leaf burns nearly all the time; every one of its samples should
    // unwind through Middle and Outer (a few may be taken mid-prologue).
    EXPECT_GE(full_chain * 10, in_leaf * 9) << full_chain << " of " << in_leaf
                                            << " leaf samples unwound fully; e.g. " << example;
  }
}

// A thread of this process burning in the chain until stopped.
class BurningThread {
 public:
  BurningThread() {
    thread_ = std::thread([this] {
      tid_.store(Gettid());
      SleuthChainRun(&stop_);
    });
    while (tid_.load() == 0) std::this_thread::yield();
  }
  ~BurningThread() {
    stop_.store(true);
    thread_.join();
  }
  pid_t tid() const { return tid_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<pid_t> tid_{0};
  std::thread thread_;
};

TEST(PerfSamplerTest, FollowsThreadsStartedWhileRunning) {
  ASSERT_TRUE(CheckPerfEventsAvailable().ok());
  BurningThread early;
  Result<std::unique_ptr<PerfSampler>> sampler = PerfSampler::ForProcess(getpid(), {});
  ASSERT_TRUE(sampler.ok()) << sampler.status().ToString();

  // The late thread starts once the first sample of the early one is in.
  std::atomic<bool> started{false};
  std::atomic<pid_t> late_tid{0};
  std::atomic<bool> late_seen{false};
  std::unique_ptr<BurningThread> late;
  std::thread launcher([&] {
    while (!started.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    late = std::make_unique<BurningThread>();
    late_tid.store(late->tid());
  });
  bool early_seen = false;
  Result<PerfSamplerResult> result =
      (*sampler)->Run(kGenerousBound, &late_seen, [&](const PerfSample& sample) {
        if (sample.tid == early.tid()) {
          early_seen = true;
          started.store(true);
        }
        if (late_tid.load() != 0 && sample.tid == late_tid.load()) late_seen.store(true);
      });
  started.store(true);  // in case no sample came at all
  launcher.join();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(early_seen);
  EXPECT_TRUE(late_seen.load()) << "no sample of the thread started during the profile";
  EXPECT_GE(result->threads_sampled, 2u);
  late.reset();
}

TEST(PerfSamplerTest, CancelStopsItAndEverythingIsClosed) {
  ASSERT_TRUE(CheckPerfEventsAvailable().ok());
  const size_t fds_before = OpenFdCount();
  BurningThread burner;
  {
    Result<std::unique_ptr<PerfSampler>> sampler = PerfSampler::ForProcess(getpid(), {});
    ASSERT_TRUE(sampler.ok()) << sampler.status().ToString();
    EXPECT_GT(OpenFdCount(), fds_before);
    std::atomic<bool> cancel{false};
    Result<PerfSamplerResult> result =
        (*sampler)->Run(std::chrono::hours(1), &cancel, [&](const PerfSample&) { cancel.store(true); });
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_TRUE(result->cancelled);
    EXPECT_GE(result->samples, 1u);
    EXPECT_LT(result->profiled, std::chrono::hours(1));
    EXPECT_GT(result->profiled.count(), 0);
    // Events and rings are released when Run returns.
    EXPECT_EQ(OpenFdCount(), fds_before);
    // Once only.
    EXPECT_EQ((*sampler)->Run(std::chrono::seconds(1), nullptr, [](const PerfSample&) {})
                  .status()
                  .code(),
              StatusCode::kBusy);
  }
  EXPECT_EQ(OpenFdCount(), fds_before);
}

TEST(PerfSamplerTest, ExcludedThreadsAndTheReaderAreNotSampled) {
  ASSERT_TRUE(CheckPerfEventsAvailable().ok());
  BurningThread excluded;
  BurningThread sampled;
  PerfSamplerOptions options;
  options.exclude_tids = {excluded.tid()};
  Result<std::unique_ptr<PerfSampler>> sampler = PerfSampler::ForProcess(getpid(), options);
  ASSERT_TRUE(sampler.ok()) << sampler.status().ToString();
  std::set<pid_t> seen;
  std::atomic<bool> enough{false};
  int sampled_count = 0;
  Result<PerfSamplerResult> result =
      (*sampler)->Run(kGenerousBound, &enough, [&](const PerfSample& sample) {
        seen.insert(sample.tid);
        if (sample.tid == sampled.tid() && ++sampled_count >= 20) enough.store(true);
      });
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(seen.count(sampled.tid()), 1u);
  EXPECT_EQ(seen.count(excluded.tid()), 0u);
  EXPECT_EQ(seen.count(Gettid()), 0u);
}

TEST(PerfSamplerTest, StackCopyStartsAtTheStackPointer) {
  ASSERT_TRUE(CheckPerfEventsAvailable().ok());
  BurningThread burner;
  PerfSamplerOptions options;
  options.stack_bytes = 4096;
  Result<std::unique_ptr<PerfSampler>> sampler = PerfSampler::ForProcess(getpid(), options);
  ASSERT_TRUE(sampler.ok());
  std::atomic<bool> enough{false};
  bool checked = false;
  Result<PerfSamplerResult> result =
      (*sampler)->Run(kGenerousBound, &enough, [&](const PerfSample& sample) {
        if (sample.tid != burner.tid()) return;
        EXPECT_EQ(sample.stack.start, sample.regs.rsp);
        EXPECT_GT(sample.stack.bytes.size(), 0u);
        EXPECT_LE(sample.stack.bytes.size(), 4096u);
        EXPECT_NE(sample.regs.rip, 0u);
        checked = true;
        enough.store(true);
      });
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(checked);
}

TEST(PerfSamplerTest, RejectsBadOptions) {
  PerfSamplerOptions options;
  options.hz = 0;
  EXPECT_EQ(PerfSampler::ForProcess(getpid(), options).status().code(),
            StatusCode::kInvalidArgument);
  options.hz = 100;
  options.stack_bytes = 1001;
  EXPECT_EQ(PerfSampler::ForProcess(getpid(), options).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PerfSampler::ForProcess(0, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PerfSampler::ForProcess(1 << 23, {}).status().code(), StatusCode::kGone);
}

}  // namespace
}  // namespace sleuth::stacks
