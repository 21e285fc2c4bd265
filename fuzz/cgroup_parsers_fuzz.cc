// Fuzzes the cgroup parsers (collectors/src/cgroup_parsers.cc): /proc/<pid>/
// cgroup, mountinfo, and the v1/v2 limit files, each with the same text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sleuth/collectors/cgroup_parsers.h"

namespace {

template <typename T>
void Check(const sleuth::Result<T>& result) {
  if (!result.ok() && result.status().message().empty()) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace sleuth::collectors;
  Check(ParseProcCgroup(text));
  Check(ParseCgroupMounts(text));
  (void)UnescapeMountPath(text);
  Check(ParseCpuMax(text));
  Check(ParseMemoryMaxOrHigh(text));
  Check(ParseCfsQuotaUs(text));
  Check(ParseCfsPeriodUs(text));
  Check(ParseMemoryLimitInBytes(text));
  auto cpus = ParseCpuListCount(text);
  Check(cpus);
  if (cpus.ok() && *cpus < 0) abort();
  return 0;
}
