// The capture engine interface: one small class per capture mechanism
// (signal-driven thread walk, perf_event CPU samples, tcmalloc heap sample,
// smaps breakdown), all with the same shape so the agent treats them alike.
//
// Engines run inside someone else's process (LD_PRELOAD). Each one checks
// in Available() that its mechanism is safe to use in this host right now,
// and Collect() never leaves anything running, installed or half-held
// behind, on any path.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/status.h"
#include "sleuth/profiles/profile.h"

namespace sleuth::capture {

struct CaptureRequest {
  // How long to sample; used by engines that sample over time (cpu).
  std::chrono::nanoseconds duration{std::chrono::seconds(5)};
  // Sampling frequency in Hz; used by the cpu engine.
  int hz = 100;
  // Where temporary files may go; empty means $TMPDIR, else /tmp.
  std::string scratch_dir;
  // Polled while a capture waits; when it turns true the capture stops
  // early and returns what it has. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Threads the cpu engine does not sample (the agent's own), in addition
  // to the thread calling Collect(). (`= {}`: callers that name the other
  // fields in a designated initializer get no missing-initializer warning.)
  std::vector<pid_t> exclude_tids = {};
};

struct Capture {
  profiles::RawProfile profile;
  // Facts a person reading the dump should know, one sentence each, e.g.
  // "2 threads did not answer within 200ms".
  std::vector<std::string> notes;
};

// Thread-safety: Available() may be called from any thread; Collect() calls
// on one engine are serialized by the caller (an engine refuses a second
// concurrent Collect with kBusy where the mechanism is process-wide).
class Engine {
 public:
  virtual ~Engine();
  // The dump kind this engine produces: "threads", "cpu", "heap", "memory".
  virtual std::string_view name() const = 0;
  // Ok if Collect() can run in this process now; otherwise kUnavailable (or
  // kBusy) with a message that says why and how to fix it.
  [[nodiscard]] virtual Status Available() const = 0;
  [[nodiscard]] virtual Result<Capture> Collect(const CaptureRequest& request) = 0;
};

// The engine for a dump kind, or kInvalidArgument naming the valid kinds.
// "threads" is the ptrace thread dumper (PtraceThreadDumper).
[[nodiscard]] Result<std::unique_ptr<Engine>> MakeEngine(std::string_view kind);

// The signal-driven thread dumper (ThreadDumper, name "threads"): the
// fallback when the ptrace one is unavailable in this process.
std::unique_ptr<Engine> MakeSignalThreadDumper();

}  // namespace sleuth::capture
