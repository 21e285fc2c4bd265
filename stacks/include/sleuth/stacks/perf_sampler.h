// PerfSampler: samples the user-space registers and the top of the user
// stack of every thread of one process, with one perf_event_open(2)
// software cpu-clock event per thread (PERF_SAMPLE_REGS_USER +
// PERF_SAMPLE_STACK_USER, user mode only), read from one mmapped ring
// buffer per thread. No signal is sent to the target and no timer is
// installed in it: the kernel takes the samples, so threads that block
// signals are sampled like any other, and an execve of the target ends its
// events instead of inheriting a timer.
//
// The target may be this process or another one (same user, or
// CAP_PERFMON/root); nothing here runs in the target's threads. With
// kernel.perf_event_paranoid <= 2 a user may sample the user mode of their
// own processes; at 3 (some distributions' default) or under a seccomp
// filter that blocks perf_event_open, ForProcess() fails with kUnavailable
// and says so.
//
// Threads started while Run() runs are found by rescanning
// /proc/<pid>/task (every `rescan_interval`) and get their own event; their
// first ~100 ms are not sampled. Threads that cannot get an event or a ring
// buffer (the per-user perf mlock budget, kernel.perf_event_mlock_kb plus
// RLIMIT_MEMLOCK, runs out with many threads when not root; a smaller
// buffer is tried first) are skipped and counted in the result.
//
// Samples are taken only while a thread runs in user mode (exclude_kernel,
// needed at paranoid 2): CPU time spent inside system calls is not sampled.
//
// Thread-safety: thread-compatible; Run() is called once, by one thread,
// and the callback runs on that thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sleuth/common/status.h"
#include "sleuth/stacks/dwarf_unwinder.h"

namespace sleuth::stacks {

struct PerfSamplerOptions {
  // Samples per second of each thread's CPU time (the cpu-clock period is
  // 1e9 / hz nanoseconds).
  int hz = 100;
  // Bytes of user stack copied with each sample, from rsp up; a multiple of
  // 8. Frames above it are read from the live target (see DwarfUnwinder).
  size_t stack_bytes = 16 * 1024;
  // Threads never sampled (e.g. the agent's own). When the target is this
  // process, the thread calling Run() is excluded as well.
  std::vector<pid_t> exclude_tids;
  // At most this many threads get an event; the others are skipped and
  // counted (each costs an fd and a locked ring buffer).
  size_t max_threads = 512;
  std::chrono::milliseconds rescan_interval{100};
};

// One sample, handed to the callback. `stack.bytes` points into the ring
// buffer and is valid only during the callback.
struct PerfSample {
  pid_t tid = 0;
  uint64_t time_nanos = 0;  // CLOCK_MONOTONIC
  Registers regs;
  StackCopy stack;
};

struct PerfSamplerResult {
  // From enabling the events to disabling them: shorter than asked when
  // cancelled.
  std::chrono::nanoseconds profiled{0};
  bool cancelled = false;
  uint64_t samples = 0;        // handed to the callback
  uint64_t lost_samples = 0;   // dropped by the kernel: a ring was full (PERF_RECORD_LOST)
  uint64_t unusable_samples = 0;  // without user registers, or malformed
  size_t threads_sampled = 0;  // threads that had an event
  size_t threads_with_smaller_buffer = 0;  // got a ring smaller than wanted
  size_t threads_skipped = 0;  // could not be sampled at all
  // Why threads were skipped, one sentence per distinct reason.
  std::vector<std::string> skipped_because;
};

class PerfSampler {
 public:
  using SampleCallback = std::function<void(const PerfSample&)>;

  // Opens a disabled event and its ring for every current thread of `pid`.
  // kUnavailable naming kernel.perf_event_paranoid when the kernel refuses
  // perf events; kGone when the process is gone; kInvalidArgument for bad
  // options.
  [[nodiscard]] static Result<std::unique_ptr<PerfSampler>> ForProcess(pid_t pid,
                                                                       PerfSamplerOptions options);
  ~PerfSampler();

  // Enables every event, then reads the rings every ~10 ms, calling
  // `on_sample` for each sample, until `duration` has passed or *cancel
  // turns true (checked at least every 10 ms; may be null). Events are
  // disabled and the rings drained before it returns. Once per sampler.
  [[nodiscard]] Result<PerfSamplerResult> Run(std::chrono::nanoseconds duration,
                                              const std::atomic<bool>* cancel,
                                              const SampleCallback& on_sample);

  PerfSampler(const PerfSampler&) = delete;
  PerfSampler& operator=(const PerfSampler&) = delete;

  struct State;

 private:
  explicit PerfSampler(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Ok if this process may open a user-mode cpu-clock event on its calling
// thread (opened as a counter and closed again); else kUnavailable saying
// why (kernel.perf_event_paranoid, seccomp, no perf events in the kernel).
[[nodiscard]] Status CheckPerfEventsAvailable();

}  // namespace sleuth::stacks
