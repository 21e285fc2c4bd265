#include "sleuth/profiles/gperftools_cpu.h"

#include <cstring>
#include <map>
#include <vector>

namespace sleuth::profiles {

namespace {

constexpr size_t kWordBytes = sizeof(uint64_t);
constexpr uint64_t kHeaderWords = 3;  // the second word: how many header words follow

Status Malformed(const std::string& what) {
  return InvalidArgument("gperftools CPU profile: " + what);
}

}  // namespace

Result<GperftoolsCpuProfile> ParseGperftoolsCpuProfile(std::string_view file_bytes) {
  const size_t word_count = file_bytes.size() / kWordBytes;
  auto word = [&](size_t i) {
    uint64_t w;
    std::memcpy(&w, file_bytes.data() + i * kWordBytes, kWordBytes);
    return w;
  };

  if (word_count < 5) {
    return Malformed("only " + std::to_string(file_bytes.size()) +
                     " bytes, shorter than the 5-word header (empty or truncated file)");
  }
  if (word(0) != 0 || word(1) != kHeaderWords) {
    uint32_t half[2];
    std::memcpy(half, file_bytes.data(), sizeof half);
    if (half[0] == 0 && half[1] == kHeaderWords) {
      return Malformed("written by a 32-bit process; only 64-bit profiles are supported");
    }
    return Malformed("bad header: expected the words 0, 3 (not a libprofiler CPU profile?)");
  }
  if (word(2) != 0) {
    return Malformed("unsupported format version " + std::to_string(word(2)) + " (expected 0)");
  }
  const uint64_t period_us = word(3);
  if (period_us == 0 || period_us > 60'000'000) {
    return Malformed("implausible sampling period of " + std::to_string(period_us) +
                     " microseconds in the header");
  }

  GperftoolsCpuProfile out;
  out.period_us = static_cast<int64_t>(period_us);
  const int64_t period_ns = out.period_us * 1000;
  RawProfile& p = out.profile;
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  p.period_type = {"cpu", "nanoseconds"};
  p.period = period_ns;
  p.leaf_is_exact_pc = true;
  p.default_sample_type = "cpu";

  // The same stack can appear in several records (libprofiler evicts from a
  // small hash table as it goes): merge them.
  std::map<std::vector<uint64_t>, size_t> sample_of_stack;
  size_t i = 2 + kHeaderWords;
  bool terminated = false;
  while (i + 2 <= word_count) {
    const uint64_t count = word(i);
    const uint64_t depth = word(i + 1);
    if (depth > word_count - i - 2) {
      return Malformed("record at word " + std::to_string(i) + " claims " + std::to_string(depth) +
                       " pcs but the file ends first (truncated?)");
    }
    std::vector<uint64_t> pcs(depth);
    for (uint64_t d = 0; d < depth; ++d) pcs[d] = word(i + 2 + d);
    i += 2 + depth;
    if (count == 0 && depth == 1 && pcs[0] == 0) {
      terminated = true;
      break;
    }
    if (depth == 0 || count == 0) continue;
    if (count > static_cast<uint64_t>(INT64_MAX / period_ns)) {
      return Malformed("record at word " + std::to_string(i) + " has an impossible count " +
                       std::to_string(count));
    }
    auto [it, inserted] = sample_of_stack.emplace(pcs, p.samples.size());
    if (inserted) {
      RawSample s;
      s.pcs = std::move(pcs);
      s.values = {0, 0};
      p.samples.push_back(std::move(s));
    }
    RawSample& s = p.samples[it->second];
    s.values[0] += static_cast<int64_t>(count);
    s.values[1] += static_cast<int64_t>(count) * period_ns;
  }
  if (!terminated) {
    return Malformed(
        "no end-of-data record {0, 1, 0}: the file is truncated or the profiler "
        "was not stopped (call ProfilerStop or ProfilerFlush before reading it)");
  }
  out.maps_text = std::string(file_bytes.substr(i * kWordBytes));
  return out;
}

}  // namespace sleuth::profiles
