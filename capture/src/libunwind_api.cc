#include "libunwind_api.h"

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <type_traits>

#include "sleuth/common/dl_symbols.h"

// The symbol a libunwind API name stands for, spelled by the header's own
// macros (unw_init_local2 -> "_ULx86_64_init_local2", unw_tdep_getcontext ->
// "_Ux86_64_getcontext"), so the names looked up always match the
// declarations whose types are checked below.
#define SLEUTH_UNW_SYMBOL(api_name) SLEUTH_UNW_SYMBOL_TEXT(api_name)
#define SLEUTH_UNW_SYMBOL_TEXT(symbol) #symbol

namespace sleuth::capture::internal {
namespace {

// unw_getcontext is a function-like macro for unw_tdep_getcontext, which on
// x86_64 is a real (assembly) function we can take the address of.
static_assert(std::is_same_v<decltype(&unw_tdep_getcontext), decltype(LibunwindApi::getcontext)>);
static_assert(std::is_same_v<decltype(&unw_init_local), decltype(LibunwindApi::init_local)>);
static_assert(std::is_same_v<decltype(&unw_init_local2), decltype(LibunwindApi::init_local2)>);
static_assert(std::is_same_v<decltype(&unw_get_reg), decltype(LibunwindApi::get_reg)>);
static_assert(std::is_same_v<decltype(&unw_step), decltype(LibunwindApi::step)>);

constexpr const char* kPackage = "libunwind8";

struct LoadState {
  std::once_flag once;
  const char* soname = "libunwind.so.8";
  LibunwindApi api{};
  Status failure;  // not ok when the load failed
};

// Leaked on purpose: handlers keep calling through `api` until the process
// is gone.
LoadState& State() {
  static LoadState* state = new LoadState;
  return *state;
}

template <typename Function>
Status Resolve(void* library, const char* soname, const char* symbol, Function& out) {
  std::string why;
  if (!LookUpSymbol(library, symbol, out, &why)) {
    return Unavailable(std::string("thread dumps need ") + symbol + " from " + soname +
                       ", which lacks it (" + why + "); install the " + kPackage +
                       " package, version 1.6 or newer");
  }
  return Status::Ok();
}

Status Load(LoadState& state) {
  // RTLD_NOW: every function is bound here, so no lazy binding can run in a
  // signal handler. RTLD_LOCAL: its _Unwind_* stay out of the host's scope.
  void* library = dlopen(state.soname, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    return Unavailable(std::string("thread dumps need libunwind, which cannot be loaded (") +
                       DlErrorText() + "); install the " + kPackage + " package");
  }
  LibunwindApi api{};
  Status resolved =
      Resolve(library, state.soname, SLEUTH_UNW_SYMBOL(unw_tdep_getcontext), api.getcontext);
  if (resolved.ok()) {
    resolved = Resolve(library, state.soname, SLEUTH_UNW_SYMBOL(unw_init_local), api.init_local);
  }
  if (resolved.ok()) {
    resolved = Resolve(library, state.soname, SLEUTH_UNW_SYMBOL(unw_init_local2), api.init_local2);
  }
  if (resolved.ok()) {
    resolved = Resolve(library, state.soname, SLEUTH_UNW_SYMBOL(unw_get_reg), api.get_reg);
  }
  if (resolved.ok()) {
    resolved = Resolve(library, state.soname, SLEUTH_UNW_SYMBOL(unw_step), api.step);
  }
  if (!resolved.ok()) {
    dlclose(library);
    return resolved;
  }
  state.api = api;
  return Status::Ok();
}

}  // namespace

Result<const LibunwindApi*> LoadLibunwind() {
  LoadState& state = State();
  std::call_once(state.once, [&state] { state.failure = Load(state); });
  if (!state.failure.ok()) return state.failure;
  return &state.api;
}

void SetLibunwindSonameForTesting(const char* soname) {
  State().soname = soname;
}

}  // namespace sleuth::capture::internal
