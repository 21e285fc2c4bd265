#include "sleuth/capture/perf_cpu_profiler.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include "sleuth/common/files.h"
#include "sleuth/profiles/symbolizer.h"

// The hot function: pure computation, so it is the leaf of nearly every
// sample of its thread. Checks its own CPU clock now and then to say when
// it has burned `budget_ns`.
__attribute__((noinline)) static uint64_t SleuthPerfHotLoop(const std::atomic<bool>* stop,
                                                           std::atomic<int>* done,
                                                           int64_t budget_ns) {
  timespec start{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  uint64_t x = 88172645463325252ull;
  bool counted = false;
  while (!stop->load(std::memory_order_relaxed)) {
    for (int i = 0; i < 200000; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      asm volatile("" : "+r"(x));
    }
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    if (!counted &&
        (now.tv_sec - start.tv_sec) * 1'000'000'000 + (now.tv_nsec - start.tv_nsec) >= budget_ns) {
      counted = true;
      done->fetch_add(1);
    }
  }
  return x;
}

namespace sleuth::capture {
namespace {

size_t OpenFdCount() {
  Result<std::vector<std::string>> names = ListDir("/proc/self/fd");
  return names.ok() ? names->size() : 0;
}

double ThreadCpuSeconds(std::thread& thread) {
  clockid_t clock{};
  timespec ts{};
  if (pthread_getcpuclockid(thread.native_handle(), &clock) != 0 || clock_gettime(clock, &ts) != 0) {
    return 0;
  }
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

pid_t Gettid() {
  return static_cast<pid_t>(syscall(SYS_gettid));
}

struct ThreadStats {
  int64_t samples = 0;
  int64_t in_hot_loop = 0;
};

// Samples per thread id, and how many of them have the hot loop as leaf.
std::map<int64_t, ThreadStats> Stats(const profiles::RawProfile& profile) {
  Result<profiles::Symbolizer> symbolizer = profiles::Symbolizer::ForProcess(0);
  std::map<int64_t, ThreadStats> stats;
  for (const profiles::RawSample& sample : profile.samples) {
    int64_t tid = -1;
    for (const profiles::Label& label : sample.labels) {
      if (label.key == "thread_id") tid = label.num;
    }
    ThreadStats& s = stats[tid];
    s.samples += sample.values[0];
    if (symbolizer.ok() && !sample.pcs.empty() &&
        symbolizer->Lookup(sample.pcs[0]).function.find("SleuthPerfHotLoop") != std::string::npos) {
      s.in_hot_loop += sample.values[0];
    }
  }
  return stats;
}

TEST(PerfCpuProfilerTest, MakeEngineGivesThePerfEngine) {
  Result<std::unique_ptr<Engine>> engine = MakeEngine("cpu");
  ASSERT_TRUE(engine.ok());
  EXPECT_NE(dynamic_cast<PerfCpuProfiler*>(engine->get()), nullptr);
}

// Two burners, one blocking every signal; the profile ends (by cancel)
// once each has burned half a CPU-second, however loaded the machine.
TEST(PerfCpuProfilerTest, HotFunctionLeadsAndASignalBlockingThreadIsProfiled) {
  PerfCpuProfiler profiler;
  ASSERT_TRUE(profiler.Available().ok()) << profiler.Available().ToString();
  const size_t fds_before = OpenFdCount();
  std::atomic<bool> stop{false};
  std::atomic<int> burned{0};
  std::atomic<bool> both_burned{false};
  std::atomic<pid_t> plain_tid{0};
  std::atomic<pid_t> blocking_tid{0};
  std::thread plain([&] {
    plain_tid.store(Gettid());
    SleuthPerfHotLoop(&stop, &burned, 500'000'000);
  });
  std::thread blocking([&] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    blocking_tid.store(Gettid());
    SleuthPerfHotLoop(&stop, &burned, 500'000'000);
  });
  std::thread watcher([&] {
    while (burned.load() < 2 && !stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    both_burned.store(true);
  });
  while (plain_tid.load() == 0 || blocking_tid.load() == 0) std::this_thread::yield();

  CaptureRequest request;
  request.duration = std::chrono::seconds(120);
  request.hz = 100;
  request.cancel = &both_burned;
  const double plain_cpu_before = ThreadCpuSeconds(plain);
  const double blocking_cpu_before = ThreadCpuSeconds(blocking);
  Result<Capture> capture = profiler.Collect(request);
  const double plain_cpu = ThreadCpuSeconds(plain) - plain_cpu_before;
  const double blocking_cpu = ThreadCpuSeconds(blocking) - blocking_cpu_before;
  stop.store(true);
  plain.join();
  blocking.join();
  watcher.join();
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  EXPECT_EQ(OpenFdCount(), fds_before) << "an fd was left open";

  const profiles::RawProfile& profile = capture->profile;
  ASSERT_EQ(profile.sample_types.size(), 2u);
  EXPECT_EQ(profile.sample_types[0].type, "samples");
  EXPECT_EQ(profile.sample_types[1].type, "cpu");
  EXPECT_EQ(profile.sample_types[1].unit, "nanoseconds");
  EXPECT_EQ(profile.period_type.type, "cpu");
  EXPECT_EQ(profile.period, 10'000'000);
  EXPECT_TRUE(profile.leaf_is_exact_pc);
  EXPECT_GT(profile.duration_nanos, 0);
  EXPECT_GT(profile.time_nanos, 0);
  for (const profiles::RawSample& sample : profile.samples) {
    ASSERT_EQ(sample.values.size(), 2u);
    EXPECT_EQ(sample.values[1], sample.values[0] * profile.period);
    ASSERT_EQ(sample.labels.size(), 2u);
    EXPECT_EQ(sample.labels[0].key, "thread_id");
    EXPECT_EQ(sample.labels[1].key, "thread_name");
  }

  std::map<int64_t, ThreadStats> stats = Stats(profile);
  EXPECT_EQ(stats.count(Gettid()), 0u) << "the collecting thread sampled itself";
  for (auto [tid, cpu_seconds] : {std::pair{plain_tid.load(), plain_cpu},
                                   std::pair{blocking_tid.load(), blocking_cpu}}) {
    SCOPED_TRACE("thread " + std::to_string(tid));
    const ThreadStats& s = stats[tid];
    // cpu-clock samples each thread's own CPU time precisely (no scheduler
    // tick rounding), so the count follows it; the slack covers the time
    // Collect() spends before enabling and after disabling the events.
    const double expected = cpu_seconds * 100;
    EXPECT_GE(static_cast<double>(s.samples), 0.6 * expected) << cpu_seconds << "s of CPU";
    EXPECT_LE(static_cast<double>(s.samples), 1.2 * expected + 2) << cpu_seconds << "s of CPU";
    EXPECT_GE(s.samples, 25);
    EXPECT_GT(s.in_hot_loop * 10, s.samples * 8) << s.in_hot_loop << " of " << s.samples;
  }
  bool noted = false;
  for (const std::string& note : capture->notes) {
    noted |= note.find("perf_event cpu-clock") != std::string::npos;
  }
  EXPECT_TRUE(noted);
}

TEST(PerfCpuProfilerTest, CancelReturnsAShorterNonEmptyProfile) {
  PerfCpuProfiler profiler;
  ASSERT_TRUE(profiler.Available().ok());
  const size_t fds_before = OpenFdCount();
  std::atomic<bool> stop{false};
  std::atomic<int> burned{0};
  std::atomic<bool> cancel{false};
  std::thread burner([&] { SleuthPerfHotLoop(&stop, &burned, 200'000'000); });
  std::thread canceller([&] {
    while (burned.load() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    cancel.store(true);
  });
  CaptureRequest request;
  request.duration = std::chrono::seconds(600);
  request.cancel = &cancel;
  Result<Capture> capture = profiler.Collect(request);
  canceller.join();
  stop.store(true);
  burner.join();
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  EXPECT_LT(capture->profile.duration_nanos, int64_t{600} * 1'000'000'000);
  EXPECT_FALSE(capture->profile.samples.empty());
  bool noted = false;
  for (const std::string& note : capture->notes) noted |= note.find("cancelled") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(OpenFdCount(), fds_before);
}

TEST(PerfCpuProfilerTest, ExcludedThreadsAreNotSampled) {
  PerfCpuProfiler profiler;
  ASSERT_TRUE(profiler.Available().ok());
  std::atomic<bool> stop{false};
  std::atomic<int> burned{0};
  std::atomic<bool> done{false};
  std::atomic<pid_t> excluded_tid{0};
  std::thread excluded([&] {
    excluded_tid.store(Gettid());
    SleuthPerfHotLoop(&stop, &burned, 200'000'000);
  });
  std::thread sampled([&] { SleuthPerfHotLoop(&stop, &burned, 200'000'000); });
  std::thread watcher([&] {
    while (burned.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    done.store(true);
  });
  while (excluded_tid.load() == 0) std::this_thread::yield();
  CaptureRequest request;
  request.duration = std::chrono::seconds(120);
  request.cancel = &done;
  request.exclude_tids = {excluded_tid.load()};
  Result<Capture> capture = profiler.Collect(request);
  watcher.join();
  stop.store(true);
  excluded.join();
  sampled.join();
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  std::map<int64_t, ThreadStats> stats = Stats(capture->profile);
  EXPECT_EQ(stats.count(excluded_tid.load()), 0u);
  EXPECT_FALSE(stats.empty());
}

TEST(PerfCpuProfilerTest, RejectsBadRequests) {
  PerfCpuProfiler profiler;
  CaptureRequest request;
  request.duration = std::chrono::milliseconds(10);
  request.hz = 0;
  EXPECT_EQ(profiler.Collect(request).status().code(), StatusCode::kInvalidArgument);
  request.hz = PerfCpuProfiler::kMaxHz + 1;
  EXPECT_EQ(profiler.Collect(request).status().code(), StatusCode::kInvalidArgument);
  request.hz = 100;
  request.duration = std::chrono::nanoseconds(0);
  EXPECT_EQ(profiler.Collect(request).status().code(), StatusCode::kInvalidArgument);
}

TEST(PerfCpuProfilerTest, ShortProfileOfAnIdleProcessSucceeds) {
  PerfCpuProfiler profiler;
  ASSERT_TRUE(profiler.Available().ok());
  CaptureRequest request;
  request.duration = std::chrono::milliseconds(50);
  Result<Capture> capture = profiler.Collect(request);
  ASSERT_TRUE(capture.ok()) << capture.status().ToString();
  EXPECT_GT(capture->profile.duration_nanos, 0);
}

}  // namespace
}  // namespace sleuth::capture
