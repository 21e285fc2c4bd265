// Looking up functions in a privately dlopen'ed library, shared by the
// loaders of libunwind and libprofiler (capture/) and libdw (stacks/).
// Not async-signal-safe.
#pragma once

#include <dlfcn.h>

#include <string>

namespace sleuth {

// dlerror()'s text, or a placeholder when it has none.
inline std::string DlErrorText() {
  const char* text = dlerror();
  return text != nullptr ? text : "no reason given";
}

// Sets `out` to `symbol` in `library`; on failure returns false and puts the
// loader's reason in *why.
template <typename Function>
bool LookUpSymbol(void* library, const char* symbol, Function& out, std::string* why) {
  dlerror();  // clear a stale error
  void* address = dlsym(library, symbol);
  if (address == nullptr) {
    *why = DlErrorText();
    return false;
  }
  out = reinterpret_cast<Function>(address);
  return true;
}

}  // namespace sleuth
