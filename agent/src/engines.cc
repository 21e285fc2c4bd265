#include "engines.h"

#include <unistd.h>

#include "sleuth/capture/heap_inuse.h"
#include "sleuth/common/log.h"
#include "sleuth/profiles/pprof.h"

namespace sleuth::agent {

Status Engines::Init(const config::Config& config) {
  (void)config;
  for (DumpKind kind : {DumpKind::kCpu, DumpKind::kHeap, DumpKind::kThreads, DumpKind::kMemory}) {
    auto engine = capture::MakeEngine(DumpKindName(kind));
    if (!engine.ok()) return engine.status();
    engines_[static_cast<int>(kind)] = std::move(*engine);
  }
  // Say once, at start, what this host cannot give us.
  for (DumpKind kind : {DumpKind::kCpu, DumpKind::kHeap}) {
    Status s = Available(kind);
    if (!s.ok()) log::Warn(std::string(DumpKindName(kind)) + " profiles are off: " + s.message());
  }
  return Status::Ok();
}

Status Engines::Available(DumpKind kind) const {
  const auto& engine = engines_[static_cast<int>(kind)];
  if (!engine) return Unavailable("the agent's engines are not initialised");
  return engine->Available();
}

Result<uint64_t> Engines::HeapInUseBytes() const {
  auto r = capture::HeapInUseBytes();
  if (!r.ok()) return r.status();
  return r->bytes;
}

Result<CapturedDump> Engines::Capture(DumpKind kind, const CaptureOptions& options) {
  auto& engine = engines_[static_cast<int>(kind)];
  capture::CaptureRequest request{.duration = options.duration,
                                  .hz = options.hz,
                                  .scratch_dir = options.scratch_dir,
                                  .cancel = options.cancel};
  SLEUTH_RETURN_IF_ERROR(engine->Available());
  auto captured = engine->Collect(request);
  if (!captured.ok()) return captured.status();

  CapturedDump out;
  out.notes = std::move(captured->notes);
  out.duration_nanos = captured->profile.duration_nanos;
  std::lock_guard<std::mutex> lock(symbolizer_mu_);
  if (!symbolizer_) {
    auto sym = profiles::Symbolizer::ForProcess(getpid());
    if (!sym.ok()) return sym.status().WithContext("cannot read this process's mappings");
    symbolizer_.emplace(std::move(*sym));
  } else {
    symbolizer_->Refresh();  // libraries may have been loaded since
  }
  auto encoded = profiles::EncodePprof(captured->profile, *symbolizer_);
  if (!encoded.ok()) return encoded.status();
  auto gz = profiles::GzipCompress(*encoded);
  if (!gz.ok()) return gz.status();
  out.profile_gz = std::move(*gz);
  if (kind == DumpKind::kThreads) out.text = profiles::RenderStacksText(captured->profile, *symbolizer_);
  return out;
}

std::string BuildIdOf(const std::string& path) {
  if (path.empty()) return "";
  auto id = profiles::ReadBuildId(path);
  return id.ok() ? *id : "";
}

}  // namespace sleuth::agent
