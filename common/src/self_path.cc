#include "sleuth/common/self_path.h"

#include <dlfcn.h>

namespace sleuth {

Result<std::string> PathOfThisObject() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(&PathOfThisObject), &info) == 0 ||
      info.dli_fname == nullptr || info.dli_fname[0] == '\0')
    return Unavailable("cannot tell where sleuth's library was loaded from (dladdr failed)");
  return std::string(info.dli_fname);
}

Result<std::string> PathBesideThisLibrary(std::string_view name) {
  SLEUTH_ASSIGN_OR_RETURN(std::string self, PathOfThisObject());
  size_t slash = self.rfind('/');
  std::string dir = slash == std::string::npos ? std::string(".") : self.substr(0, slash);
  return dir + "/" + std::string(name);
}

}  // namespace sleuth
