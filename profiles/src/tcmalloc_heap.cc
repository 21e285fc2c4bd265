#include "sleuth/profiles/tcmalloc_heap.h"

#include <cmath>
#include <map>
#include <vector>

#include "text_util.h"

namespace sleuth::profiles {

using internal::Quote;

namespace {

constexpr std::string_view kHeaderPrefix = "heap profile:";
constexpr std::string_view kMapsSentinel = "MAPPED_LIBRARIES:";

// Allocator entry points: the allocating call site is their caller.
const std::vector<std::string>& AllocatorFrames() {
  static const std::vector<std::string> kFrames = {"malloc",
                                                   "calloc",
                                                   "realloc",
                                                   "free",
                                                   "cfree",
                                                   "memalign",
                                                   "posix_memalign",
                                                   "aligned_alloc",
                                                   "valloc",
                                                   "pvalloc",
                                                   "reallocarray",
                                                   "__libc_malloc",
                                                   "__libc_calloc",
                                                   "__libc_realloc",
                                                   "__libc_memalign",
                                                   "tc_*",
                                                   "tcmalloc::*",
                                                   "operator new*",
                                                   "operator delete*",
                                                   "__gnu_cxx::new_allocator<*",
                                                   "std::__new_allocator<*"};
  return kFrames;
}

// A cursor over one line: "<n>: <n> [<n>: <n>] @ ...".
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  void SkipSpace() { s_ = internal::TrimLeft(s_); }
  bool Consume(char c) {
    SkipSpace();
    if (s_.empty() || s_.front() != c) return false;
    s_.remove_prefix(1);
    return true;
  }
  bool Number(int64_t* out) {
    SkipSpace();
    size_t n = 0;
    while (n < s_.size() && s_[n] >= '0' && s_[n] <= '9') ++n;
    if (!internal::ParseSigned(s_.substr(0, n), out)) return false;
    s_.remove_prefix(n);
    return true;
  }
  // "<objects>: <bytes>"
  bool Pair(int64_t* objects, int64_t* bytes) {
    return Number(objects) && Consume(':') && Number(bytes);
  }
  std::string_view rest() const { return s_; }
  bool Peek(char c) {
    SkipSpace();
    return !s_.empty() && s_.front() == c;
  }

 private:
  std::string_view s_;
};

struct Counts {
  int64_t inuse_objects = 0, inuse_bytes = 0, alloc_objects = 0, alloc_bytes = 0;
};

// Parses the counts part of a header or sample line, up to and including '@'.
bool ParseCounts(Cursor* c, Counts* counts) {
  if (!c->Pair(&counts->inuse_objects, &counts->inuse_bytes)) return false;
  if (c->Consume('[')) {
    if (!c->Pair(&counts->alloc_objects, &counts->alloc_bytes) || !c->Consume(']')) return false;
  } else {
    counts->alloc_objects = counts->inuse_objects;
    counts->alloc_bytes = counts->inuse_bytes;
  }
  return c->Consume('@');
}

Status LineError(size_t number, const std::string& what, std::string_view line) {
  return InvalidArgument("tcmalloc heap sample line " + std::to_string(number) + ": " + what +
                         " in " + Quote(line));
}

}  // namespace

std::pair<int64_t, int64_t> UnsampleHeap(int64_t objects, int64_t bytes, int64_t period_bytes) {
  if (objects == 0 || bytes == 0) return {0, 0};
  if (period_bytes <= 1) return {objects, bytes};
  double average_bytes = static_cast<double>(bytes) / static_cast<double>(objects);
  double scale = 1.0 / (1.0 - std::exp(-average_bytes / static_cast<double>(period_bytes)));
  return {static_cast<int64_t>(static_cast<double>(objects) * scale),
          static_cast<int64_t>(static_cast<double>(bytes) * scale)};
}

Result<RawProfile> ParseTcmallocHeapSample(std::string_view text) {
  RawProfile p;
  p.sample_types = {{"alloc_objects", "count"},
                    {"alloc_space", "bytes"},
                    {"inuse_objects", "count"},
                    {"inuse_space", "bytes"}};
  p.default_sample_type = "inuse_space";
  p.period_type = {"space", "bytes"};
  p.leaf_is_exact_pc = false;
  p.drop_frames = AllocatorFrames();

  bool have_header = false;
  bool sampling_off_warning = false;
  Status error;
  std::map<std::pair<std::vector<uint64_t>, int64_t>, size_t> sample_of_key;
  std::vector<Counts> sampled;  // raw counts per sample of p.samples

  internal::ForEachLine(text, [&](std::string_view raw_line, size_t number) {
    std::string_view line = internal::Trim(raw_line);
    if (line.empty()) return true;
    if (line.substr(0, 5) == "%warn") {
      sampling_off_warning = true;
      return true;
    }
    if (line == kMapsSentinel) return false;  // the rest is the maps text
    if (!have_header) {
      if (line.substr(0, kHeaderPrefix.size()) != kHeaderPrefix) {
        error = LineError(number, "expected the \"heap profile: ...\" header", line);
        return false;
      }
      Cursor c(line.substr(kHeaderPrefix.size()));
      Counts totals;
      if (!ParseCounts(&c, &totals)) {
        error = LineError(number, "malformed totals in the header", line);
        return false;
      }
      std::string_view kind = internal::Trim(c.rest());
      if (kind.substr(0, 8) == "heap_v2/") {
        uint64_t period = 0;
        if (!internal::ParseUnsigned(kind.substr(8), &period) || period > INT64_MAX) {
          error = LineError(number, "expected a sampling period after heap_v2/", line);
          return false;
        }
        p.period = static_cast<int64_t>(period);
      } else if (kind == "heapprofile") {
        p.period = 1;  // HeapProfiler dumps record every allocation
      } else {
        error = LineError(number,
                          "unsupported heap profile kind \"" + std::string(kind) +
                              "\" (expected heap_v2/<period> or heapprofile)",
                          line);
        return false;
      }
      have_header = true;
      return true;
    }

    Cursor c(line);
    Counts counts;
    if (!ParseCounts(&c, &counts)) {
      error =
          LineError(number, "expected \"<objects>: <bytes> [<objects>: <bytes>] @ <pcs>\"", line);
      return false;
    }
    if ((counts.inuse_objects == 0 && counts.inuse_bytes != 0) ||
        (counts.alloc_objects == 0 && counts.alloc_bytes != 0)) {
      error = LineError(number, "bytes without objects", line);
      return false;
    }
    std::vector<uint64_t> pcs;
    std::string_view rest = c.rest();
    for (std::string_view token = internal::NextToken(&rest); !token.empty();
         token = internal::NextToken(&rest)) {
      uint64_t pc = 0;
      if (!internal::ParseHexAddress(token, &pc)) {
        error = LineError(number, "bad address \"" + std::string(token) + "\"", line);
        return false;
      }
      pcs.push_back(pc);
    }
    if (pcs.empty()) {
      error = LineError(number, "no stack addresses after '@' (truncated?)", line);
      return false;
    }
    // Bytes per object, pprof's "bytes" label.
    int64_t object_bytes = counts.inuse_objects != 0   ? counts.inuse_bytes / counts.inuse_objects
                           : counts.alloc_objects != 0 ? counts.alloc_bytes / counts.alloc_objects
                                                       : 0;
    auto [it, inserted] =
        sample_of_key.emplace(std::make_pair(pcs, object_bytes), p.samples.size());
    if (inserted) {
      RawSample s;
      s.pcs = std::move(pcs);
      s.labels.push_back({"bytes", "", object_bytes, "bytes"});
      p.samples.push_back(std::move(s));
      sampled.emplace_back();
    }
    // Summed as sampled; unsampled once per merged sample below, which is
    // the same scale (same object size) without rounding every line down.
    Counts& sum = sampled[it->second];
    if (__builtin_add_overflow(sum.inuse_objects, counts.inuse_objects, &sum.inuse_objects) ||
        __builtin_add_overflow(sum.inuse_bytes, counts.inuse_bytes, &sum.inuse_bytes) ||
        __builtin_add_overflow(sum.alloc_objects, counts.alloc_objects, &sum.alloc_objects) ||
        __builtin_add_overflow(sum.alloc_bytes, counts.alloc_bytes, &sum.alloc_bytes)) {
      error = LineError(number, "counts overflow 64 bits", line);
      return false;
    }
    return true;
  });

  if (!error.ok()) return error;
  if (!have_header) {
    return InvalidArgument(
        "tcmalloc heap sample: no \"heap profile:\" header line (empty or not a heap sample)");
  }
  for (size_t i = 0; i < p.samples.size(); ++i) {
    const Counts& c = sampled[i];
    auto [alloc_objects, alloc_bytes] = UnsampleHeap(c.alloc_objects, c.alloc_bytes, p.period);
    auto [inuse_objects, inuse_bytes] = UnsampleHeap(c.inuse_objects, c.inuse_bytes, p.period);
    p.samples[i].values = {alloc_objects, alloc_bytes, inuse_objects, inuse_bytes};
  }
  if (p.period == 0 || (sampling_off_warning && p.samples.empty())) {
    return Unavailable(
        "tcmalloc heap sampling is off in this process: start it with "
        "TCMALLOC_SAMPLE_PARAMETER=524288 in its environment (tcmalloc reads it once, at start)");
  }
  return p;
}

}  // namespace sleuth::profiles
