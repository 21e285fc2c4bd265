// HeapProfiler: the sampled in-use heap of a host that runs tcmalloc
// (gperftools), from MallocExtension::GetHeapSample.
//
// libsleuth must not pull tcmalloc into a host that does not use it, so
// nothing here links tcmalloc: MallocExtension::instance() is found with
// dlsym and called through the virtual interface declared in
// <gperftools/malloc_extension.h>. tcmalloc counts as present only when it
// is the process's malloc (malloc and tc_malloc are the same function) and
// answers generic.current_allocated_bytes.
#pragma once

#include <cstdint>
#include <string>

#include "sleuth/capture/engine.h"

namespace sleuth::capture {

// How to get a heap profile: printed wherever tcmalloc is missing.
inline constexpr const char* kTcmallocHowTo =
    "run the host with tcmalloc and heap sampling on, e.g. "
    "LD_PRELOAD=\"/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4 /path/to/libsleuth.so\" "
    "TCMALLOC_SAMPLE_PARAMETER=524288 ./app";

// Thread-safety: thread safe.
class HeapProfiler final : public Engine {
 public:
  std::string_view name() const override { return "heap"; }
  // kUnavailable with kTcmallocHowTo when tcmalloc is not the malloc, is the
  // minimal build (no sampling), or samples nothing (sampling period 0:
  // gperftools 2.10's default when TCMALLOC_SAMPLE_PARAMETER is unset).
  Status Available() const override;
  // Profile: alloc_objects/count, alloc_space/bytes, inuse_objects/count,
  // inuse_space/bytes (as parsed from tcmalloc's heap_v2 text).
  Result<Capture> Collect(const CaptureRequest& request) override;
};

// Turns tcmalloc's heap sampling on at runtime, one sample per
// `sample_bytes` allocated on average, when the host runs full tcmalloc with
// sampling off. gperftools supports changing the period while running; only
// allocations made afterwards are sampled. A period the host already set
// (TCMALLOC_SAMPLE_PARAMETER) is kept: the result says so. kUnavailable
// without tcmalloc; kInvalidArgument unless 1 <= sample_bytes <= 2^58.
[[nodiscard]] Result<std::string> EnableTcmallocSampling(int64_t sample_bytes);

}  // namespace sleuth::capture
