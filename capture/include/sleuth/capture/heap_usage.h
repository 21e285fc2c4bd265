// In-use heap bytes of this process, for the heap metric.
#pragma once

#include <cstdint>
#include <string_view>

namespace sleuth::capture {

enum class HeapSource {
  kTcmalloc,  // tcmalloc's generic.current_allocated_bytes
  kGlibc,     // glibc mallinfo2(): uordblks + hblkhd
};

std::string_view HeapSourceName(HeapSource source);  // "tcmalloc", "glibc"

struct HeapUsage {
  uint64_t inuse_bytes = 0;
  HeapSource source = HeapSource::kGlibc;
};

// Bytes the program has allocated and not freed, from the active malloc.
// Thread safe; takes the allocator's locks briefly (never call it from a
// signal handler). Under another malloc (jemalloc, a sanitizer) the glibc
// figure describes only what went through glibc.
HeapUsage HeapInUseBytes();

}  // namespace sleuth::capture
