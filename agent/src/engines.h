// The agent's glue between capture engines and the pprof encoder: one place
// that turns "take a dump of kind K" into gzipped pprof bytes (+ text).
// Internal to the agent.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "sleuth/agent/agent.h"
#include "sleuth/capture/engine.h"
#include "sleuth/common/status.h"
#include "sleuth/config/config.h"
#include "sleuth/profiles/symbolizer.h"

namespace sleuth::agent {

struct CaptureOptions {
  std::chrono::nanoseconds duration;
  int hz = 100;
  std::string scratch_dir;
  const std::atomic<bool>* cancel = nullptr;
  std::vector<pid_t> exclude_tids;  // the agent's own threads
};

struct CapturedDump {
  std::string profile_gz;
  std::optional<std::string> text;  // pstack-style rendering of a thread dump
  std::vector<std::string> notes;
  int64_t duration_nanos = 0;
};

// Thread-safety: thread safe. Capture() of different kinds may run at once;
// the symbolizer they share is guarded.
class Engines {
 public:
  Status Init(const config::Config& config);
  // Whether a dump of `kind` can be taken here; the message says why not.
  Status Available(DumpKind kind) const;
  Status HeapAvailable() const { return Available(DumpKind::kHeap); }
  // In-use heap bytes (tcmalloc, else glibc mallinfo2).
  Result<uint64_t> HeapInUseBytes() const;
  Result<CapturedDump> Capture(DumpKind kind, const CaptureOptions& options);

 private:
  std::unique_ptr<capture::Engine> engines_[4];  // indexed by DumpKind
  std::mutex symbolizer_mu_;
  std::optional<profiles::Symbolizer> symbolizer_;
  bool warned_[4] = {};
  bool threads_by_signal_ = false;  // the fallback thread dumper is in use
};

// GNU build ID of an ELF file as hex, or "" when it has none.
std::string BuildIdOf(const std::string& path);

}  // namespace sleuth::agent
