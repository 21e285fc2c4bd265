// gperftools' libprofiler, loaded privately and only when a CPU profile is
// first asked for, instead of linked.
//
// Why: loading libprofiler.so.0 installs its SIGPROF handler at once (over
// SIG_DFL or SIG_IGN) and starts a profile when CPUPROFILE is set. Linked
// into the preloaded libsleuth.so, that would happen in every host, profiled
// or not. Opened with dlopen(RTLD_NOW | RTLD_LOCAL) its symbols also stay out
// of the host's scope.
#pragma once

#include <gperftools/profiler.h>  // ProfilerOptions and the declarations checked; nothing is linked

#include "sleuth/common/status.h"

namespace sleuth::capture::internal {

// The functions the CPU engine uses. Immutable once returned.
struct LibprofilerApi {
  int (*start_with_options)(const char* path, const ProfilerOptions* options);
  void (*stop)();
  int (*is_enabled_for_all_threads)();
  // libprofiler's SIGPROF handler (ProfileHandler::SignalHandler), or
  // nullptr when this gperftools build does not export it.
  void* signal_handler = nullptr;
  // Load address of the object holding the functions (dladdr's dli_fbase):
  // a handler inside it is libprofiler's when the symbol is not exported.
  void* library_base = nullptr;
};

// The table when libprofiler is already in this process (opened by an
// earlier LoadLibprofiler(), or by the host itself: linked, preloaded, or
// as part of libtcmalloc_and_profiler), without loading anything; nullptr
// otherwise. Thread-safety: thread safe.
const LibprofilerApi* FindLoadedLibprofiler();

// Loads libprofiler.so.0 unless it is already in the process (the load
// installs its SIGPROF handler) and resolves the table. The first failure
// is kept: later calls return it, naming the Debian package to install,
// without trying again. The table is never freed.
// Thread-safety: thread safe. Not async-signal-safe.
Result<const LibprofilerApi*> LoadLibprofiler();

// Whether LoadLibprofiler() can be expected to work, judged without loading
// anything: the failure of an earlier attempt, else kUnavailable (naming
// the package) when the dynamic loader cannot find libprofiler.so.0 (no
// such file in its search path nor in /etc/ld.so.cache), else Ok. Errs
// towards Ok: then the load itself gives the loader's reason.
// Thread-safety: thread safe.
Status LibprofilerLoadable();

// Test hook (tests only): the soname LoadLibprofiler() opens, so a test can
// play a host without gperftools. Only before the first load.
void SetLibprofilerSonameForTesting(const char* soname);

}  // namespace sleuth::capture::internal
