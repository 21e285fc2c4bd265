// Where the library (or executable) holding this code was loaded from, for
// finding the files installed beside it (libsleuth-net.so, sleuth-stackwalk).
#pragma once

#include <string>
#include <string_view>

#include "sleuth/common/status.h"

namespace sleuth {

// The path of the ELF object that contains this function (dladdr).
[[nodiscard]] Result<std::string> PathOfThisObject();
// `name` in the directory of PathOfThisObject().
[[nodiscard]] Result<std::string> PathBesideThisLibrary(std::string_view name);

}  // namespace sleuth
