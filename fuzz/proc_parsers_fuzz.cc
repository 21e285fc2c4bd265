// Fuzzes the /proc parsers (collectors/src/proc_parsers.cc) with the same
// text for each: they must refuse what they cannot read, never crash, and
// say why they refused.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sleuth/collectors/proc_parsers.h"

namespace {

template <typename T>
void Check(const sleuth::Result<T>& result) {
  if (!result.ok() && result.status().message().empty()) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace sleuth::collectors;
  Check(ParseProcStat(text));
  Check(ParseProcStatus(text));
  Check(ParseProcStatm(text));
  Check(ParseSmapsRollup(text));
  Check(ParseMemInfo(text));
  return 0;
}
