// tcmalloc's (gperftools) heap sample text, parsed into a RawProfile. Pure;
// thread-safe.
//
// MallocExtension::GetHeapSample writes the legacy heap profile:
//   heap profile: <inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @ heap_v2/<period>
//   <inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @ 0x... 0x...
//   ...
//   MAPPED_LIBRARIES:
//   <the text of /proc/self/maps>
// one line per sampled live allocation (a line's alloc numbers equal its
// inuse numbers in a sample of live objects; the bracket is optional here).
// Stacks are return addresses, innermost first, starting inside the
// allocator.
//
// gperftools 2.10 samples only when the process started with
// TCMALLOC_SAMPLE_PARAMETER set (read once, at tcmalloc's start; the
// default 0 means "off", and the text then carries %warn lines and
// "heap_v2/0"). 524288 (512 KiB) is the customary period.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

#include "sleuth/common/status.h"
#include "sleuth/profiles/profile.h"

namespace sleuth::profiles {

// Produces Go's four heap sample types, in pprof's order:
//   alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes
// default_sample_type inuse_space, period_type space/bytes, period = the
// sampling period, leaf_is_exact_pc false, drop_frames = the allocator's
// entry points (malloc, operator new, tc_*...), and a numeric label "bytes"
// (the allocation size, bytes per object) on each sample. Lines with the
// same stack and allocation size are merged after unsampling.
//
// Values are unsampled as pprof does for heap_v2: tcmalloc samples an
// allocation of s bytes with probability 1 - exp(-s / period), so each line
// is scaled by 1 / (1 - exp(-(bytes / objects) / period)) to estimate the
// true totals (UnsampleHeap below).
//
// Fails with kUnavailable when sampling was off in the process (period 0),
// with a message saying how to turn it on, and with kInvalidArgument on
// malformed text (naming the line).
Result<RawProfile> ParseTcmallocHeapSample(std::string_view text);

// {objects, bytes} of one sample line scaled to estimated totals for a
// sampling `period_bytes`. Returned unchanged when period_bytes <= 1 (every
// allocation recorded); {0, 0} when objects or bytes is 0.
std::pair<int64_t, int64_t> UnsampleHeap(int64_t objects, int64_t bytes, int64_t period_bytes);

}  // namespace sleuth::profiles
