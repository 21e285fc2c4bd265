// Finds the host's tcmalloc (gperftools) at runtime without linking it.
// Thread-safety: thread safe (dlsym/dladdr only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

class MallocExtension;  // <gperftools/malloc_extension.h>, used only through its vtable

namespace sleuth::capture::internal {

struct Tcmalloc {
  // Null unless tcmalloc is the process's malloc and answers
  // generic.current_allocated_bytes.
  MallocExtension* extension = nullptr;
  // Why `extension` is null, for a person: empty when it is not.
  std::string absent_reason;
  // The shared object tcmalloc came from, e.g. /usr/lib/.../libtcmalloc.so.4.
  std::string library_path;
  // False for libtcmalloc_minimal, which cannot sample the heap.
  bool can_sample = false;
  // gperftools' FLAGS_tcmalloc_sample_parameter (bytes between samples; 0 =
  // off), an exported int64 that tcmalloc rereads at every sampling point. Null
  // when the symbol is not exported (another gperftools version).
  int64_t* sample_parameter = nullptr;
};

Tcmalloc FindTcmalloc();

// Current sampling period in bytes (0 = off), or -1 when unknown.
int64_t SamplePeriodBytes(const Tcmalloc& tcmalloc);

// The only calls made into MallocExtension, through its vtable. Kept here so
// that no other file touches the class (UBSan's vptr check would need its
// typeinfo, which lives in tcmalloc). `tcmalloc.extension` must be set.
bool AllocatedBytes(const Tcmalloc& tcmalloc, size_t* bytes);
std::string HeapSampleText(const Tcmalloc& tcmalloc);

}  // namespace sleuth::capture::internal
