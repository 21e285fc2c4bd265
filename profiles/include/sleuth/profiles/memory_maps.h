// The "memory" dump for hosts without tcmalloc: /proc/<pid>/smaps grouped
// into what a person asks first about a memory alarm (how much is heap,
// thread stacks, other anonymous memory, each mapped file), as a profile any
// pprof viewer shows. Pure; thread-safe.
#pragma once

#include <string_view>

#include "sleuth/common/status.h"
#include "sleuth/profiles/profile.h"

namespace sleuth::profiles {

// One sample per group, values in bytes (smaps reports kB; multiplied by
// 1024), sample types in this order:
//   rss/bytes        resident memory (smaps Rss)        <- default_sample_type
//   pss/bytes        proportional share of it (Pss: shared pages divided
//                    among the processes mapping them)
//   anonymous/bytes  resident anonymous pages (Anonymous: heap, stacks,
//                    private copies of written file pages)
//   swap/bytes       swapped out (Swap)
//   size/bytes       virtual size of the mappings (Size)
// Groups and their synthetic frames (`names`, leaf first):
//   "[heap]"                       the brk heap
//   "[stack]"                      the main thread's stack ("[stack:<tid>]" too)
//   "anonymous"                    unnamed anonymous mappings (malloc arenas,
//                                  thread stacks, mmap'd buffers)
//   "[anon:<name>]", "anonymous"   anonymous regions named with PR_SET_VMA
//   "file:<path>", "files"         each mapped file, all its mappings summed
//   "[vdso]", "[vvar]", ...        other kernel-named regions, as named
// Each sample carries a numeric label "mappings" (how many smaps entries the
// group sums). Samples are ordered by rss, largest first. No period.
// Errors name the line: a field line before any mapping header, a header
// that does not parse, a size field without a number.
Result<RawProfile> MemoryMapsProfile(std::string_view smaps_text);

}  // namespace sleuth::profiles
