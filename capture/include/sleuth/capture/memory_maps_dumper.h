// MemoryMapsDumper: the process's mappings from /proc/self/smaps, grouped
// and sized (anonymous, heap, stacks, each file). The evidence a memory
// alarm leaves when the host does not run tcmalloc.
#pragma once

#include <string>

#include "sleuth/capture/engine.h"

namespace sleuth::capture {

// Thread-safety: thread safe.
class MemoryMapsDumper final : public Engine {
 public:
  // `smaps_path` is for tests; the agent uses the default.
  explicit MemoryMapsDumper(std::string smaps_path = "/proc/self/smaps")
      : smaps_path_(std::move(smaps_path)) {}

  std::string_view name() const override { return "memory"; }
  Status Available() const override;
  Result<Capture> Collect(const CaptureRequest& request) override;

 private:
  std::string smaps_path_;
};

}  // namespace sleuth::capture
