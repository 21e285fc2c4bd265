#include "sleuth/capture/heap_usage.h"

#include <malloc.h>

#include "tcmalloc_access.h"

namespace sleuth::capture {

std::string_view HeapSourceName(HeapSource source) {
  switch (source) {
    case HeapSource::kTcmalloc:
      return "tcmalloc";
    case HeapSource::kGlibc:
      return "glibc";
  }
  return "unknown";
}

HeapUsage HeapInUseBytes() {
  internal::Tcmalloc tcmalloc = internal::FindTcmalloc();
  size_t allocated_bytes = 0;
  if (tcmalloc.extension != nullptr && internal::AllocatedBytes(tcmalloc, &allocated_bytes)) {
    return {allocated_bytes, HeapSource::kTcmalloc};
  }
  // uordblks: bytes in use in the arenas; hblkhd: bytes in mmap'd chunks.
  const struct mallinfo2 info = mallinfo2();
  return {static_cast<uint64_t>(info.uordblks) + info.hblkhd, HeapSource::kGlibc};
}

}  // namespace sleuth::capture
