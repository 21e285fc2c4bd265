// Parsing and printing of the units sleuth's config uses.
// Durations: "250ms", "5s", "1m", "1h", "1h30m", "0" (a bare 0 only).
// Sizes: "512KiB", "64MiB", "1GiB", "4096", "10KB" (KB/MB/GB are decimal).
// Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"

namespace sleuth {

using Nanos = std::chrono::nanoseconds;

// Errors name the text and what was expected, e.g.
//   invalid duration "5 sec": expected a number followed by ns, us, ms, s, m or h (e.g. 250ms, 5s, 1m)
Result<Nanos> ParseDuration(std::string_view text);
Result<uint64_t> ParseSize(std::string_view text);

// The shortest exact form: 1500ms -> "1500ms", 60s -> "1m", 0 -> "0s".
std::string FormatDuration(Nanos d);
// Exact binary units where they divide: 524288 -> "512KiB", 1000 -> "1000B".
std::string FormatSize(uint64_t bytes);

}  // namespace sleuth
