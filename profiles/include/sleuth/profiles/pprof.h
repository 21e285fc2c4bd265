// The pprof encoder: RawProfile + Symbolizer -> a serialized
// perftools.profiles.Profile (profile.proto), written with ProtoWriter so no
// protobuf library is linked into the host. Gzip it (gzip.h) to get the
// .pb.gz that `go tool pprof` and Pyroscope read.
//
// What the output holds:
//  - string_table with "" first; sample_type, period_type, period, time,
//    duration, comments and default_sample_type copied from the RawProfile;
//  - one Location per distinct pc (per distinct name for synthetic frames),
//    with the pc itself as address and one Line naming its Function when the
//    symbolizer knows it (unknown pcs keep only their address, which pprof
//    prints);
//  - one Function per distinct name (name demangled, system_name as in the
//    symbol table; no source file: sleuth reads no DWARF);
//  - one Mapping per executable mapping referenced by a location, plus the
//    main executable's first (pprof treats mapping 1 as the main binary),
//    with start, limit, file offset, path and GNU build ID, and
//    has_functions set when every location in it got a name, so a backend
//    only re-symbolizes what the agent could not.
//  - Return addresses (every frame but an exact leaf) are symbolized at
//    pc - 1 so a call at the end of a function is attributed to the caller.
//
// Pure apart from the Symbolizer's file cache. Thread-safety: as the
// Symbolizer passed in (one thread at a time per Symbolizer).
#pragma once

#include <string>

#include "sleuth/common/status.h"
#include "sleuth/profiles/gzip.h"
#include "sleuth/profiles/profile.h"
#include "sleuth/profiles/symbolizer.h"

namespace sleuth::profiles {

// Fails with kInvalidArgument when the RawProfile is inconsistent: a sample
// whose value count differs from the sample type count, or a
// default_sample_type that is not one of the sample types.
Result<std::string> EncodePprof(const RawProfile& raw, Symbolizer& sym);

}  // namespace sleuth::profiles
