// libunwind, loaded privately at run time instead of linked.
//
// Why: libsleuth.so is preloaded into arbitrary hosts. Linking libunwind.so.8
// would put it in the host's global symbol scope, where its _Unwind_*
// exports take over the host's C++ exceptions from libgcc_s. Opened with
// dlopen(RTLD_NOW | RTLD_LOCAL), its symbols stay visible to us only, and
// every function we use is bound before any signal handler can call it.
#pragma once

// The local-only API: with it the header maps unw_init_local2 and friends to
// _ULx86_64_* and unw_getcontext to _Ux86_64_getcontext (assembly).
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "sleuth/common/status.h"

namespace sleuth::capture::internal {

// The functions the thread dumper uses, resolved from libunwind.so.8.
// Immutable once LoadLibunwind() has returned it; calling through it is as
// async-signal-safe as the libunwind function itself.
struct LibunwindApi {
  // Saves the caller's registers; the context resumes at the return address
  // of this call, in the caller's frame (same as the unw_getcontext macro).
  int (*getcontext)(unw_context_t* context);
  int (*init_local)(unw_cursor_t* cursor, unw_context_t* context);
  int (*init_local2)(unw_cursor_t* cursor, unw_context_t* context, int flags);
  int (*get_reg)(unw_cursor_t* cursor, unw_regnum_t reg, unw_word_t* value);
  int (*step)(unw_cursor_t* cursor);
};

// Opens libunwind.so.8 on the first call and resolves LibunwindApi; later
// calls return the same table, or the same error (naming the Debian package
// to install) when the library or one of its functions is missing. The
// table is never freed: handlers may hold it for the life of the process.
// Thread-safety: thread safe. Not async-signal-safe (dlopen): load before
// installing a handler and give the handler the table.
Result<const LibunwindApi*> LoadLibunwind();

// Test hook (tests only): the soname LoadLibunwind() opens, so a test can
// play a host without libunwind. Only before the first LoadLibunwind().
void SetLibunwindSonameForTesting(const char* soname);

}  // namespace sleuth::capture::internal
