#include "engines.h"

#include <unistd.h>

#include "sleuth/capture/heap_profiler.h"
#include "sleuth/capture/heap_usage.h"
#include "sleuth/common/log.h"
#include "sleuth/profiles/gzip.h"
#include "sleuth/profiles/pprof.h"
#include "sleuth/profiles/stacks_text.h"

namespace sleuth::agent {

Status Engines::Init(const config::Config& config) {
  for (DumpKind kind : {DumpKind::kCpu, DumpKind::kHeap, DumpKind::kThreads, DumpKind::kMemory}) {
    auto engine = capture::MakeEngine(DumpKindName(kind));
    if (!engine.ok()) return engine.status();
    engines_[static_cast<int>(kind)] = std::move(*engine);
  }
  // Thread dumps come from the ptrace walker, outside the host's threads;
  // where it cannot run (no sleuth-stackwalk beside the library, a seccomp
  // filter, Yama forbidding it), from the signal-driven walk, which
  // interrupts the host's sleeps and misses threads that block signals:
  // each dump's notes say which took it.
  auto& threads = engines_[static_cast<int>(DumpKind::kThreads)];
  if (Status ptrace = threads->Available(); !ptrace.ok()) {
    log::Info("thread dumps by signal, not ptrace: " + ptrace.message());
    threads = capture::MakeSignalThreadDumper();
    threads_by_signal_ = true;
  }
  // Under tcmalloc with sampling off, turn it on (heap.sample_bytes).
  if (auto sampling =
          capture::EnableTcmallocSampling(static_cast<int64_t>(config.heap.sample_bytes));
      sampling.ok()) {
    log::Info(*sampling);
  }
  // Say once, at start, what this host cannot give us. Only what the user
  // asked for and cannot have is a warning (the host's stderr is not ours):
  // CPU profiles for an enabled CPU rule. Most hosts have no tcmalloc, so
  // "no heap profiles" is an info line (and a note in each memory dump).
  for (DumpKind kind : {DumpKind::kCpu, DumpKind::kHeap}) {
    Status s = Available(kind);
    if (s.ok()) continue;
    bool wanted = kind == DumpKind::kCpu && config.cpu.enable;
    log::Write(wanted ? log::Level::kWarn : log::Level::kInfo,
               std::string(DumpKindName(kind)) + " profiles are off: " + s.message());
  }
  return Status::Ok();
}

Status Engines::Available(DumpKind kind) const {
  const auto& engine = engines_[static_cast<int>(kind)];
  if (!engine) return Unavailable("the agent's engines are not initialised");
  return engine->Available();
}

Result<uint64_t> Engines::HeapInUseBytes() const {
  return capture::HeapInUseBytes().inuse_bytes;
}

Result<CapturedDump> Engines::Capture(DumpKind kind, const CaptureOptions& options) {
  auto& engine = engines_[static_cast<int>(kind)];
  capture::CaptureRequest request{.duration = options.duration,
                                  .hz = options.hz,
                                  .scratch_dir = options.scratch_dir,
                                  .cancel = options.cancel,
                                  .exclude_tids = options.exclude_tids};
  SLEUTH_RETURN_IF_ERROR(engine->Available());
  auto captured = engine->Collect(request);
  if (!captured.ok()) return captured.status();

  CapturedDump out;
  out.notes = std::move(captured->notes);
  if (kind == DumpKind::kThreads && threads_by_signal_)
    out.notes.push_back(
        "taken with a signal to each thread (the ptrace walker could not run here): sleeps the "
        "signal interrupted returned early, and threads blocking it have no stack");
  if (kind == DumpKind::kMemory) {
    if (Status heap = Available(DumpKind::kHeap); !heap.ok())
      out.notes.push_back("no heap profile: " + heap.message() +
                          "; this dump groups the process's mappings from smaps instead");
  }
  out.duration_nanos = captured->profile.duration_nanos;
  std::lock_guard<std::mutex> lock(symbolizer_mu_);
  if (!symbolizer_) {
    auto sym = profiles::Symbolizer::ForProcess(getpid());
    if (!sym.ok()) return sym.status().WithContext("cannot read this process's mappings");
    symbolizer_.emplace(std::move(*sym));
  } else if (Status s = symbolizer_->Refresh(); !s.ok()) {  // libraries may have come and gone
    return s.WithContext("cannot re-read this process's mappings");
  }
  auto encoded = profiles::EncodePprof(captured->profile, *symbolizer_);
  if (!encoded.ok()) return encoded.status();
  auto gz = profiles::GzipCompress(*encoded);
  if (!gz.ok()) return gz.status();
  out.profile_gz = std::move(*gz);
  if (kind == DumpKind::kThreads)
    out.text = profiles::RenderStacksText(captured->profile, *symbolizer_);
  return out;
}

std::string BuildIdOf(const std::string& path) {
  if (path.empty()) return "";
  auto id = profiles::ReadBuildId(path);
  return id.ok() ? *id : "";
}

}  // namespace sleuth::agent
