// A pstack-style text rendering of a thread dump, for people who read the
// dump in a terminal. Thread-safety: as the Symbolizer passed in.
#pragma once

#include <string>

#include "sleuth/profiles/profile.h"
#include "sleuth/profiles/symbolizer.h"

namespace sleuth::profiles {

// One block per sample (one sample per thread, with a numeric label
// "thread_id" and a string label "thread_name"), blocks separated by a
// blank line:
//   Thread 4242 (worker-1):
//   #0  0x00007f3a1c2d4e1f in __futex_abstimed_wait_common () from
//   /usr/lib/x86_64-linux-gnu/libc.so.6 #1  0x000055d0c1a2b3c4 in Worker::Run() from
//   /opt/app/bin/server #2  0x00007f3a1c2d8044 in ?? () from /usr/lib/x86_64-linux-gnu/libc.so.6
// C names get gdb's " ()"; demangled C++ names already end in their
// parameter list. Unknown functions print as "??", pcs outside any executable mapping
// without "from"; samples that carry names instead of pcs print the names.
// A missing label prints as "?".
std::string RenderStacksText(const RawProfile& threads_profile, Symbolizer& sym);

// An empty thread dump taken at `time_nanos`: sample type and period
// threads/count, exact leaf pcs. Every thread dumper (the ptrace walker's
// reader, the signal-driven fallback) starts from it and adds one sample of
// value 1 per thread with the labels above.
RawProfile NewThreadsProfile(int64_t time_nanos);

}  // namespace sleuth::profiles
