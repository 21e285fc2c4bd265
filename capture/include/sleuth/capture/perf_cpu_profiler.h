// PerfCpuProfiler: a CPU profile of this process sampled by the kernel with
// one perf_event cpu-clock event per thread (stacks::PerfSampler) and
// unwound with DWARF CFI (stacks::DwarfUnwinder), on the thread that calls
// Collect().
//
// Host safety: no signal is sent to the host and nothing is installed in
// it: no SIGPROF handler, no ITIMER_PROF (which survives execve and kills
// programs the host execs), no interrupted system calls. Threads that block
// signals are sampled like any other. The events' fds are O_CLOEXEC, so a
// host's execve during a profile ends the events. Every fd and ring is
// closed before Collect() returns, on every path.
//
// What is sampled: the user-mode CPU time of every thread of the process
// except the caller's and CaptureRequest::exclude_tids; threads started
// during the profile are followed from within ~100 ms of their start. CPU
// time spent in the kernel is not sampled (perf_event_paranoid 2 allows
// user mode only). Limits: 1..1000 Hz; at most 512 threads; per-user perf
// ring-buffer memory (kernel.perf_event_mlock_kb, RLIMIT_MEMLOCK) may skip
// threads of a large host when not root; the notes say how many.
//
// Profile: sample types samples/count and cpu/nanoseconds, period_type
// cpu/nanoseconds, period 1e9/hz; one sample per distinct (stack, thread)
// with labels thread_id and thread_name; leaf_is_exact_pc.
#pragma once

#include <cstddef>

#include "sleuth/capture/engine.h"

namespace sleuth::capture {

// Thread-safety: Available() is thread safe; Collect() fails with kBusy
// while another perf CPU profile runs in this process.
class PerfCpuProfiler final : public Engine {
 public:
  static constexpr int kMaxHz = 1000;
  static constexpr size_t kMaxFrames = 128;

  std::string_view name() const override { return "cpu"; }
  // Ok if this process may open perf events and libdw loads.
  Status Available() const override;
  Result<Capture> Collect(const CaptureRequest& request) override;
};

}  // namespace sleuth::capture
