// The in-memory form of a captured profile, before symbolization and pprof
// encoding. Capture engines (capture/) fill a RawProfile with raw program
// counters; the encoder (pprof.h) turns it, with a Symbolizer, into a
// profile.proto message. Plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sleuth::profiles {

struct ValueType {
  std::string type;  // e.g. "samples", "cpu", "inuse_space"
  std::string unit;  // e.g. "count", "nanoseconds", "bytes"
};

struct Label {
  std::string key;
  std::string str;       // string value, or empty for a numeric label
  int64_t num = 0;       // numeric value when str is empty
  std::string num_unit;  // optional unit of num
};

struct RawSample {
  // Program counters, leaf first. pcs[0] is the exact interrupted pc when
  // `RawProfile::leaf_is_exact_pc`; every other entry is a return address,
  // which the symbolizer looks up at pc-1 so a call at the end of a function
  // is attributed to the caller and not to the next function.
  std::vector<uint64_t> pcs;
  // Frames that are already names (no address), leaf first; used instead of
  // pcs when pcs is empty, e.g. for the smaps memory breakdown.
  std::vector<std::string> names;
  std::vector<int64_t> values;  // one per RawProfile::sample_types
  std::vector<Label> labels;
};

struct RawProfile {
  std::vector<ValueType> sample_types;
  std::vector<RawSample> samples;
  ValueType period_type;
  int64_t period = 0;
  int64_t time_nanos = 0;      // wall-clock start, Unix epoch
  int64_t duration_nanos = 0;  // 0 for a point-in-time profile
  bool leaf_is_exact_pc = true;
  std::string default_sample_type;  // optional: which sample type a viewer shows first
  std::vector<std::string> comments;
  // Function names dropped, with everything they called, when the profile is
  // encoded (pprof's drop_frames, applied by sleuth itself so every viewer
  // sees the same stacks). The root-most matching frame of a sample is
  // dropped together with the frames leafward of it. An entry matches a
  // demangled name exactly, or as a prefix when it ends in '*'
  // ("operator new*"). The heap parser fills it with the allocator's entry
  // points so that the allocating call site is the leaf.
  std::vector<std::string> drop_frames;
};

}  // namespace sleuth::profiles
