#include "libprofiler_api.h"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "sleuth/common/dl_symbols.h"
#include "sleuth/common/files.h"

namespace sleuth::capture::internal {
namespace {

static_assert(std::is_same_v<decltype(&ProfilerStartWithOptions),
                             decltype(LibprofilerApi::start_with_options)>);
static_assert(std::is_same_v<decltype(&ProfilerStop), decltype(LibprofilerApi::stop)>);
static_assert(std::is_same_v<decltype(&ProfilingIsEnabledForAllThreads),
                             decltype(LibprofilerApi::is_enabled_for_all_threads)>);

constexpr const char* kPackage = "libgoogle-perftools4";
// ProfileHandler::SignalHandler(int, siginfo_t*, void*), exported by
// gperftools 2.x.
constexpr const char* kSignalHandlerSymbol = "_ZN14ProfileHandler13SignalHandlerEiP9siginfo_tPv";

struct LoadState {
  std::mutex mutex;  // guards everything below
  const char* soname = "libprofiler.so.0";
  std::optional<LibprofilerApi> api;
  Status failure;                    // not ok once a load failed
  std::optional<bool> loader_finds;  // LoaderCanFind(soname), asked once
};

// Leaked on purpose: libprofiler's handler and timer may outlive any object.
LoadState& State() {
  static LoadState* state = new LoadState;
  return *state;
}

// Whether the dynamic loader would find `soname`, judged without loading
// it: a file of that name in the search path of the main program
// (LD_LIBRARY_PATH, its RPATH/RUNPATH, the system directories), or an entry
// in the loader's cache. Says yes when it cannot tell.
bool LoaderCanFind(const char* soname) {
  if (std::strchr(soname, '/') != nullptr) return access(soname, R_OK) == 0;
  void* program = dlopen(nullptr, RTLD_NOW);
  Dl_serinfo size{};
  if (program == nullptr || dlinfo(program, RTLD_DI_SERINFOSIZE, &size) != 0) return true;
  std::vector<std::max_align_t> buffer(size.dls_size / sizeof(std::max_align_t) + 1);
  auto* search = reinterpret_cast<Dl_serinfo*>(buffer.data());
  *search = size;
  if (dlinfo(program, RTLD_DI_SERINFO, search) != 0) return true;
  for (unsigned i = 0; i < search->dls_cnt; ++i) {
    const std::string path = std::string(search->dls_serpath[i].dls_name) + "/" + soname;
    if (access(path.c_str(), R_OK) == 0) return true;
  }
  // The cache's string table holds the full path of every library it knows,
  // each NUL-terminated.
  Result<std::string> cache = ReadFile("/etc/ld.so.cache", 16 << 20);
  if (!cache.ok()) return true;
  const std::string entry = "/" + std::string(soname) + '\0';
  return cache->find(entry) != std::string::npos;
}

template <typename Function>
Status Resolve(void* library, const char* where, const char* symbol, Function& out) {
  std::string why;
  if (!LookUpSymbol(library, symbol, out, &why)) {
    return Unavailable(std::string("CPU profiles need ") + symbol + " from " + where +
                       ", which lacks it (" + why + "); install the " + kPackage +
                       " package (gperftools 2.x)");
  }
  return Status::Ok();
}

// Fills state.api from `library` (a dlopen handle, or RTLD_DEFAULT for a
// copy the host brought), or sets state.failure. Caller holds the mutex.
void ResolveInto(LoadState& state, void* library, const char* where) {
  LibprofilerApi api{};
  Status resolved = Resolve(library, where, "ProfilerStartWithOptions", api.start_with_options);
  if (resolved.ok()) resolved = Resolve(library, where, "ProfilerStop", api.stop);
  if (resolved.ok()) {
    resolved =
        Resolve(library, where, "ProfilingIsEnabledForAllThreads", api.is_enabled_for_all_threads);
  }
  if (!resolved.ok()) {
    state.failure = resolved;
    return;
  }
  api.signal_handler = dlsym(library, kSignalHandlerSymbol);
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(api.start_with_options), &info) != 0) {
    api.library_base = info.dli_fbase;
  }
  state.api = api;
}

// Adopts a libprofiler the process already has. Caller holds the mutex.
void FindLoaded(LoadState& state) {
  if (state.api.has_value() || !state.failure.ok()) return;
  if (void* library = dlopen(state.soname, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
      library != nullptr) {
    ResolveInto(state, library, state.soname);
    return;
  }
  // Built into another object the host loaded (libtcmalloc_and_profiler, a
  // static link): a second copy of libprofiler could not get SIGPROF, so use
  // that one.
  if (dlsym(RTLD_DEFAULT, "ProfilerStartWithOptions") != nullptr) {
    ResolveInto(state, RTLD_DEFAULT, "the host's gperftools");
  }
}

}  // namespace

const LibprofilerApi* FindLoadedLibprofiler() {
  LoadState& state = State();
  std::lock_guard lock(state.mutex);
  FindLoaded(state);
  return state.api.has_value() ? &*state.api : nullptr;
}

Result<const LibprofilerApi*> LoadLibprofiler() {
  LoadState& state = State();
  std::lock_guard lock(state.mutex);
  FindLoaded(state);
  if (!state.api.has_value() && state.failure.ok()) {
    // RTLD_NOW: nothing left to bind lazily in its signal handler.
    void* library = dlopen(state.soname, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      state.failure =
          Unavailable(std::string("CPU profiles need gperftools' libprofiler, which cannot be "
                                  "loaded (") +
                      DlErrorText() + "); install the " + kPackage + " package");
    } else {
      ResolveInto(state, library, state.soname);
    }
  }
  if (!state.failure.ok()) return state.failure;
  return &*state.api;
}

Status LibprofilerLoadable() {
  LoadState& state = State();
  std::lock_guard lock(state.mutex);
  if (!state.failure.ok() || state.api.has_value()) return state.failure;
  if (!state.loader_finds.has_value()) state.loader_finds = LoaderCanFind(state.soname);
  if (!*state.loader_finds) {
    return Unavailable(std::string("CPU profiles need gperftools' libprofiler, and the dynamic "
                                   "loader finds no ") +
                       state.soname + "; install the " + kPackage + " package");
  }
  return Status::Ok();
}

void SetLibprofilerSonameForTesting(const char* soname) {
  LoadState& state = State();
  std::lock_guard lock(state.mutex);
  state.soname = soname;
}

}  // namespace sleuth::capture::internal
