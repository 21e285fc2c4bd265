#include "tcmalloc_access.h"

#include <dlfcn.h>
#include <gperftools/malloc_extension.h>

#include <atomic>
#include <cstddef>

namespace sleuth::capture::internal {
namespace {

// Mangled names: the C++ API of gperftools 2.x.
constexpr const char* kInstanceSymbol = "_ZN15MallocExtension8instanceEv";
constexpr const char* kSampleParameterSymbol =
    "_ZN61FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead"
    "31FLAGS_tcmalloc_sample_parameterE";

// Virtual calls on an object of a class whose typeinfo is not linked in:
// UBSan's vptr check cannot verify them and would need that typeinfo.
__attribute__((no_sanitize("vptr"))) bool CallGetNumericProperty(MallocExtension* extension,
                                                                 const char* name, size_t* value) {
  return extension->GetNumericProperty(name, value);
}

__attribute__((no_sanitize("vptr"))) void CallGetHeapSample(MallocExtension* extension,
                                                            std::string* text) {
  extension->GetHeapSample(text);
}

}  // namespace

Tcmalloc FindTcmalloc() {
  Tcmalloc found;
  void* tc_malloc = dlsym(RTLD_DEFAULT, "tc_malloc");
  void* instance_fn = dlsym(RTLD_DEFAULT, kInstanceSymbol);
  if (tc_malloc == nullptr || instance_fn == nullptr) {
    found.absent_reason = "the host does not run tcmalloc";
    return found;
  }
  Dl_info info{};
  if (dladdr(tc_malloc, &info) != 0 && info.dli_fname != nullptr) {
    found.library_path = info.dli_fname;
  }
  if (dlsym(RTLD_DEFAULT, "malloc") != tc_malloc) {
    found.absent_reason = "tcmalloc (" + found.library_path +
                          ") is loaded but is not the process's malloc (load it first, with "
                          "LD_PRELOAD or by linking it)";
    return found;
  }
  auto* instance = reinterpret_cast<MallocExtension* (*)()>(instance_fn);
  MallocExtension* extension = instance();
  size_t allocated_bytes = 0;
  if (extension == nullptr ||
      !CallGetNumericProperty(extension, "generic.current_allocated_bytes", &allocated_bytes)) {
    found.absent_reason =
        "tcmalloc (" + found.library_path + ") does not answer generic.current_allocated_bytes";
    return found;
  }
  found.extension = extension;
  // The minimal build has no heap profiler; HeapProfilerStart is only in the
  // full one (libtcmalloc, libtcmalloc_and_profiler).
  found.can_sample = dlsym(RTLD_DEFAULT, "HeapProfilerStart") != nullptr;
  found.sample_parameter = static_cast<int64_t*>(dlsym(RTLD_DEFAULT, kSampleParameterSymbol));
  return found;
}

int64_t SamplePeriodBytes(const Tcmalloc& tcmalloc) {
  if (tcmalloc.sample_parameter == nullptr) return -1;
  // tcmalloc reads it unsynchronized; an aligned 8-byte load is atomic here.
  return std::atomic_ref<int64_t>(*tcmalloc.sample_parameter).load(std::memory_order_relaxed);
}

}  // namespace sleuth::capture::internal

namespace sleuth::capture::internal {

bool AllocatedBytes(const Tcmalloc& tcmalloc, size_t* bytes) {
  return CallGetNumericProperty(tcmalloc.extension, "generic.current_allocated_bytes", bytes);
}

std::string HeapSampleText(const Tcmalloc& tcmalloc) {
  std::string text;
  CallGetHeapSample(tcmalloc.extension, &text);
  return text;
}

}  // namespace sleuth::capture::internal
