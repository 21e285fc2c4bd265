// CpuProfiler: a CPU profile sampled by gperftools' libprofiler (ITIMER_PROF
// + SIGPROF, process-wide), converted from its legacy binary format.
//
// Host safety: the engine only reads the SIGPROF disposition and the
// ITIMER_PROF timer to decide; it refuses (Available() says why) when the
// host owns profiling: a SIGPROF handler other than libprofiler's, an armed
// ITIMER_PROF, CPUPROFILE set (the host profiles itself with gperftools), or
// a profile already running. The profiler is stopped on every path.
//
// Loading: libprofiler is not linked. Loading it installs its SIGPROF
// handler, so it is opened (dlopen RTLD_LOCAL, libprofiler.so.0 from
// libgoogle-perftools4) only by the first Collect() that passes the checks
// above; Available() never loads it (it only asks whether the dynamic
// loader can find it), and a host that never asks for a CPU profile never
// gets its handler. Until then SIGPROF must be SIG_DFL. When the host
// already has libprofiler, that copy is used.
//
// Frequency: libprofiler reads CPUPROFILE_FREQUENCY once, when it is loaded,
// and has no API to change it. The engine starts the profile, then re-arms
// ITIMER_PROF at the requested rate (libprofiler's handler does not care
// about the rate; ProfilerStop disarms the timer as usual) and writes that
// period into the profile it parses. Limits: 1..4000 Hz (libprofiler's own
// bound); the kernel checks ITIMER_PROF on its scheduler tick, so rates above
// CONFIG_HZ (often 250) yield fewer samples than asked.
//
// Threads: libprofiler's samples carry no thread id and the file format has
// no room for one, so samples cannot be attributed to threads. The engine
// counts SIGPROF ticks per thread (through libprofiler's async-signal-safe
// filter hook) and reports the busiest threads as profile comments and
// notes instead.
#pragma once

#include <atomic>
#include <cstdint>

#include "sleuth/capture/engine.h"

namespace sleuth::capture {

// Thread-safety: Available() is thread safe; Collect() fails with kBusy
// while another CPU profile (of any engine, or of the host) is running.
class CpuProfiler final : public Engine {
 public:
  static constexpr int kMaxHz = 4000;
  // Per-thread tick counters kept during a profile; ticks of further threads
  // are counted together.
  static constexpr size_t kMaxThreadCounters = 1024;

  CpuProfiler() = default;

  std::string_view name() const override { return "cpu"; }
  Status Available() const override;
  // Profile: sample types samples/count and cpu/nanoseconds, period_type
  // cpu/nanoseconds, duration_nanos the time actually profiled (shorter when
  // cancelled).
  Result<Capture> Collect(const CaptureRequest& request) override;

  // Called by libprofiler in the SIGPROF handler. async-signal-safe.
  static int CountTick(void* self);

 private:
  struct ThreadTicks {
    std::atomic<int32_t> tid{0};
    std::atomic<uint32_t> ticks{0};
  };
  ThreadTicks thread_ticks_[kMaxThreadCounters];
  std::atomic<uint32_t> other_ticks_{0};
};

}  // namespace sleuth::capture
