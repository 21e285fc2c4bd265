#include "sleuth/common/self_path.h"

#include <dlfcn.h>

#include <charconv>
#include <cstdint>

#include "sleuth/common/files.h"

namespace sleuth {
namespace {

// The file mapped at `address` according to the kernel, which names it by
// its absolute path: for the main executable (where dladdr gives "" or
// argv[0]) and for a library loaded by a relative path.
std::string MappedFileAt(uintptr_t address) {
  Result<std::string> maps = ReadFile("/proc/self/maps");
  if (!maps.ok()) return "";
  size_t line_start = 0;
  while (line_start < maps->size()) {
    size_t line_end = maps->find('\n', line_start);
    if (line_end == std::string::npos) line_end = maps->size();
    const std::string_view line(maps->data() + line_start, line_end - line_start);
    line_start = line_end + 1;
    uint64_t low = 0, high = 0;
    const size_t dash = line.find('-');
    const size_t space = line.find(' ');
    if (dash == std::string_view::npos || space == std::string_view::npos) continue;
    std::from_chars(line.data(), line.data() + dash, low, 16);
    std::from_chars(line.data() + dash + 1, line.data() + space, high, 16);
    if (address < low || address >= high) continue;
    const size_t slash = line.find('/');
    return slash == std::string_view::npos ? "" : std::string(line.substr(slash));
  }
  return "";
}

}  // namespace

Result<std::string> PathOfThisObject() {
  const auto self = reinterpret_cast<uintptr_t>(&PathOfThisObject);
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(self), &info) != 0 && info.dli_fname != nullptr &&
      info.dli_fname[0] == '/')
    return std::string(info.dli_fname);
  std::string mapped = MappedFileAt(self);
  if (mapped.empty())
    return Unavailable("cannot tell where sleuth's library was loaded from (dladdr and "
                       "/proc/self/maps name no file)");
  return mapped;
}

Result<std::string> PathBesideThisLibrary(std::string_view name) {
  SLEUTH_ASSIGN_OR_RETURN(std::string self, PathOfThisObject());
  size_t slash = self.rfind('/');
  std::string dir = slash == std::string::npos ? std::string(".") : self.substr(0, slash);
  return dir + "/" + std::string(name);
}

}  // namespace sleuth
