// The pprof test oracle: an independent decoder for the profiles sleuth
// writes, for unit and integration tests. It parses with libprotobuf and a
// schema of its own (tests/support/profile.proto), inflates gzip with zlib
// directly, and shares no code with the encoder it checks.
//
// Link `sleuth::test_pprof` and include "sleuth/testing/pprof_oracle.h".
//
//   sleuth::testing::DecodedProfile p = sleuth::testing::DecodePprofFile(path);
//   ASSERT_TRUE(p.ok()) << p.ErrorText();        // decodes AND is valid
//   auto top = sleuth::testing::FlatTop(p, "cpu");  // {function, value}, largest first
//   EXPECT_EQ(top.at(0).function, "(anonymous namespace)::BurnCpu(int)");
//   for (const auto* s : sleuth::testing::SamplesWithLabel(p, "thread_name", "worker-3")) ...
//
// Validation (errors, each a sentence naming the offending element), as
// pprof's own CheckValid and decoder do plus a little more:
//  - the bytes parse as a Profile; string_table[0] == "";
//  - every string index (sample/period types, labels, mappings, functions,
//    comments, default_sample_type, drop/keep frames) is within the table;
//  - mapping, location and function ids are nonzero and unique;
//  - every location id a sample references exists, every mapping id a
//    location references exists, every function id a line references exists;
//  - each sample has exactly one value per sample type; samples imply at
//    least one sample type; a label has a key;
//  - default_sample_type, when set, names one of the sample types.
// A profile with errors is still decoded as far as possible, so a test can
// print what it got.
//
// Frames: `stack` holds function names leaf first. A location with no line
// (no function name) appears as its address in hex, "0x7f12ab34cd56"; a
// location with inlined lines contributes one entry per line.
//
// Thread-safety: plain functions over values; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sleuth::testing {

struct DecodedValueType {
  std::string type;
  std::string unit;
};

struct DecodedSample {
  std::vector<int64_t> values;                             // one per DecodedProfile::sample_types
  std::map<std::string, std::vector<std::string>> labels;  // string labels
  std::map<std::string, std::vector<int64_t>> num_labels;  // numeric labels
  std::map<std::string, std::vector<std::string>> num_units;  // units of num_labels, "" if none
  std::vector<std::string> stack;                             // function names, leaf first
  std::vector<uint64_t> addresses;         // location addresses, leaf first (one per location)
  std::vector<std::string> mapping_files;  // per location: mapping filename, "" without mapping

  // The first string / numeric label with this key, or "" / 0.
  std::string Label(const std::string& key) const;
  int64_t NumLabel(const std::string& key) const;
};

struct DecodedMapping {
  uint64_t id = 0;
  uint64_t memory_start = 0;
  uint64_t memory_limit = 0;
  uint64_t file_offset = 0;
  std::string filename;
  std::string build_id;
  bool has_functions = false;
};

struct DecodedFunction {
  uint64_t id = 0;
  std::string name;
  std::string system_name;
  std::string filename;
};

struct DecodedProfile {
  std::vector<DecodedValueType> sample_types;
  DecodedValueType period_type;
  int64_t period = 0;
  int64_t time_nanos = 0;
  int64_t duration_nanos = 0;
  std::string default_sample_type;
  std::string drop_frames;
  std::vector<std::string> comments;
  std::vector<DecodedSample> samples;
  std::vector<DecodedMapping> mappings;
  std::vector<DecodedFunction> functions;
  size_t location_count = 0;
  size_t string_count = 0;

  // Decode and validation errors; empty for a valid profile.
  std::vector<std::string> errors;

  bool ok() const { return errors.empty(); }
  // All errors joined by "; " (for test failure messages).
  std::string ErrorText() const;
  // Index of a sample type by name, or -1.
  int SampleTypeIndex(std::string_view type) const;
  // Sum of one sample type over all samples (0 if the type is unknown).
  int64_t Total(std::string_view type) const;
  // The mapping with this filename, or nullptr.
  const DecodedMapping* FindMapping(std::string_view filename) const;
};

// Decodes serialized (uncompressed) profile.proto bytes.
DecodedProfile DecodePprof(std::string_view bytes);
// Inflates gzip (or zlib) data first; an error if it does not inflate.
DecodedProfile DecodePprofGz(std::string_view gz_bytes);
// Reads a file; gzip is detected by its magic bytes, so .pb and .pb.gz both work.
DecodedProfile DecodePprofFile(const std::string& path);

struct FunctionValue {
  std::string function;
  int64_t value = 0;
};

// Per function, the sum of `sample_type` over the samples whose leaf it is
// (pprof's "flat"), largest first, ties by name. Empty if the type is unknown.
std::vector<FunctionValue> FlatTop(const DecodedProfile& profile, std::string_view sample_type);
// Per function, the sum over the samples whose stack contains it, counted
// once per sample even when recursive (pprof's "cum"), largest first.
std::vector<FunctionValue> CumulativeTop(const DecodedProfile& profile,
                                         std::string_view sample_type);
// The value FlatTop / CumulativeTop give `function`, 0 if absent.
int64_t FlatValue(const DecodedProfile& profile, std::string_view sample_type,
                  std::string_view function);
int64_t CumulativeValue(const DecodedProfile& profile, std::string_view sample_type,
                        std::string_view function);

// Samples having a string label key=value.
std::vector<const DecodedSample*> SamplesWithLabel(const DecodedProfile& profile,
                                                   std::string_view key, std::string_view value);
// Samples having a numeric label key=value.
std::vector<const DecodedSample*> SamplesWithNumLabel(const DecodedProfile& profile,
                                                      std::string_view key, int64_t value);

}  // namespace sleuth::testing
