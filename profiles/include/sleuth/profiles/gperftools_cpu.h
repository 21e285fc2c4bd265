// gperftools' legacy binary CPU profile (what libprofiler's ProfilerStart /
// ProfilerStop write), parsed into a RawProfile. Pure; thread-safe.
//
// The file is a sequence of native-endian machine words (64-bit here):
//   header:  0, 3, 0, <sampling period in microseconds>, 0
//   records: <count>, <depth>, <pc 1> ... <pc depth>   (leaf first)
//   trailer: 0, 1, 0
// followed by the text of /proc/self/maps at the time of ProfilerStop.
// libprofiler's signal handler stores the interrupted pc (from the signal's
// ucontext) as pc 1 and return addresses after it, so the leaf is an exact
// pc (`leaf_is_exact_pc`), as pprof's own legacy reader assumes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"
#include "sleuth/profiles/profile.h"

namespace sleuth::profiles {

struct GperftoolsCpuProfile {
  // Sample types samples/count and cpu/nanoseconds (cpu = count * period);
  // period_type cpu/nanoseconds; identical stacks merged. time_nanos,
  // duration_nanos and thread labels are not in the file: the caller sets
  // them.
  RawProfile profile;
  int64_t period_us = 0;  // sampling period from the header
  std::string maps_text;  // the /proc/self/maps text after the trailer
};

// Errors say what is wrong and where (word index), e.g. a missing trailer
// means the profiler was not stopped before the file was read.
Result<GperftoolsCpuProfile> ParseGperftoolsCpuProfile(std::string_view file_bytes);

}  // namespace sleuth::profiles
