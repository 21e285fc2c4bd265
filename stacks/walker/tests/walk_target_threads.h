// Test support: the three kinds of thread a ptrace thread dump must get
// right, started in the calling process, each in code of its own section so
// a test can find it in a stack without trusting any symbolizer:
//   - a thread in clock_nanosleep(sleep_ms), which records what the call
//     returned and how long it really slept (a stop must not shorten it);
//   - a thread that blocks every signal and spins in user code;
//   - a thread in poll(-1) on a pipe, woken by the destructor.
// Used by the walker's tests (in a forked child) and by the agent engine's
// tests (in the test process itself).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace sleuth_walk_target {

struct SleepOutcome {
  int rc = -1;  // clock_nanosleep's return value (an errno, 0 when it slept through)
  int64_t requested_ns = 0;
  int64_t elapsed_ns = 0;
};

inline int64_t MonotonicNanos() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

}  // namespace sleuth_walk_target

#define SLEUTH_WALK_TARGET_TEXT __attribute__((noinline, section("sleuth_walk_target_text")))

SLEUTH_WALK_TARGET_TEXT static int SleuthTargetSleepLeaf(int64_t ns) {
  timespec request{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  const int rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &request, nullptr);
  asm volatile("" ::: "memory");
  return rc;
}

SLEUTH_WALK_TARGET_TEXT static void SleuthTargetSleep(int64_t ns,
                                                      sleuth_walk_target::SleepOutcome* out) {
  const int64_t start = sleuth_walk_target::MonotonicNanos();
  out->requested_ns = ns;
  out->rc = SleuthTargetSleepLeaf(ns);
  out->elapsed_ns = sleuth_walk_target::MonotonicNanos() - start;
  asm volatile("" ::: "memory");
}

SLEUTH_WALK_TARGET_TEXT static void SleuthTargetSpin(std::atomic<int>* stop) {
  uint64_t x = 1;
  while (stop->load(std::memory_order_relaxed) == 0) {
    x = x * 6364136223846793005ULL + 1;
    asm volatile("" : "+r"(x));
  }
}

SLEUTH_WALK_TARGET_TEXT static int SleuthTargetPollLeaf(int fd) {
  pollfd waiting{fd, POLLIN, 0};
  const int rc = poll(&waiting, 1, -1);
  asm volatile("" ::: "memory");
  return rc;
}

SLEUTH_WALK_TARGET_TEXT static void SleuthTargetPoll(int fd, int* rc, int* err) {
  *rc = SleuthTargetPollLeaf(fd);
  *err = *rc < 0 ? errno : 0;
  asm volatile("" ::: "memory");
}

extern "C" char __start_sleuth_walk_target_text[];
extern "C" char __stop_sleuth_walk_target_text[];

namespace sleuth_walk_target {

inline bool InTargetText(uint64_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_sleuth_walk_target_text) &&
         pc < reinterpret_cast<uintptr_t>(__stop_sleuth_walk_target_text);
}

// Leaf first; the leaf is an exact pc, the others return addresses.
inline bool StackInTargetText(const std::vector<uint64_t>& pcs) {
  for (size_t i = 0; i < pcs.size(); ++i) {
    if (InTargetText(i == 0 ? pcs[i] : pcs[i] - 1)) return true;
  }
  return false;
}

inline pid_t Gettid() {
  return static_cast<pid_t>(syscall(SYS_gettid));
}

// The first field of /proc/<pid>/task/<tid>/syscall: the number of the
// system call the thread is blocked in, -1 when running, -2 when unknown.
inline long BlockedSyscall(pid_t pid, pid_t tid) {
  char path[96];
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, tid);
  FILE* file = std::fopen(path, "re");
  if (file == nullptr) return -2;
  char buffer[64] = {};
  const size_t n = std::fread(buffer, 1, sizeof buffer - 1, file);
  std::fclose(file);
  if (n == 0) return -2;
  if (std::strncmp(buffer, "running", 7) == 0) return -1;
  return std::strtol(buffer, nullptr, 10);
}

class TargetThreads {
 public:
  explicit TargetThreads(int64_t sleep_ms) : sleep_ns_(sleep_ms * 1000000) {
    if (pipe2(wake_pipe_, O_CLOEXEC) != 0) std::abort();
    pthread_create(&sleeper_, nullptr, &SleeperMain, this);
    pthread_create(&spinner_, nullptr, &SpinnerMain, this);
    pthread_create(&poller_, nullptr, &PollerMain, this);
    while (started_.load() < 3) sched_yield();
    // Ready once the sleeper and the poller are blocked in their calls.
    const pid_t pid = getpid();
    while (BlockedSyscall(pid, sleeper_tid_) != SYS_clock_nanosleep ||
           BlockedSyscall(pid, poller_tid_) != SYS_poll) {
      sched_yield();
    }
  }
  ~TargetThreads() { Stop(); }
  TargetThreads(const TargetThreads&) = delete;
  TargetThreads& operator=(const TargetThreads&) = delete;

  pid_t sleeper_tid() const { return sleeper_tid_; }
  pid_t spinner_tid() const { return spinner_tid_; }
  pid_t poller_tid() const { return poller_tid_; }

  // Ends the spinner, wakes the poller, waits for the sleeper's full sleep.
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    stop_spin_.store(1);
    (void)!write(wake_pipe_[1], "x", 1);
    pthread_join(sleeper_, nullptr);
    pthread_join(spinner_, nullptr);
    pthread_join(poller_, nullptr);
    close(wake_pipe_[0]);
    close(wake_pipe_[1]);
  }
  // After Stop().
  const SleepOutcome& sleep_outcome() const { return sleep_outcome_; }
  int poll_rc() const { return poll_rc_; }
  int poll_errno() const { return poll_errno_; }

 private:
  static void* SleeperMain(void* raw) {
    auto* self = static_cast<TargetThreads*>(raw);
    pthread_setname_np(pthread_self(), "target-sleep");
    self->sleeper_tid_ = Gettid();
    self->started_.fetch_add(1);
    SleuthTargetSleep(self->sleep_ns_, &self->sleep_outcome_);
    return nullptr;
  }
  static void* SpinnerMain(void* raw) {
    auto* self = static_cast<TargetThreads*>(raw);
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    pthread_setname_np(pthread_self(), "target spin");  // a space, to test escaping
    self->spinner_tid_ = Gettid();
    self->started_.fetch_add(1);
    SleuthTargetSpin(&self->stop_spin_);
    return nullptr;
  }
  static void* PollerMain(void* raw) {
    auto* self = static_cast<TargetThreads*>(raw);
    pthread_setname_np(pthread_self(), "target-poll");
    self->poller_tid_ = Gettid();
    self->started_.fetch_add(1);
    SleuthTargetPoll(self->wake_pipe_[0], &self->poll_rc_, &self->poll_errno_);
    return nullptr;
  }

  int64_t sleep_ns_;
  int wake_pipe_[2] = {-1, -1};
  pthread_t sleeper_{}, spinner_{}, poller_{};
  std::atomic<pid_t> sleeper_tid_{0}, spinner_tid_{0}, poller_tid_{0};
  std::atomic<int> started_{0};
  std::atomic<int> stop_spin_{0};
  bool stopped_ = false;
  SleepOutcome sleep_outcome_;
  int poll_rc_ = 0, poll_errno_ = 0;
};

}  // namespace sleuth_walk_target
