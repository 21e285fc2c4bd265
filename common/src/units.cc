#include "sleuth/common/units.h"

#include <cctype>
#include <charconv>
#include <limits>

namespace sleuth {
namespace {

struct UnitScale {
  std::string_view suffix;
  uint64_t scale;
};

constexpr UnitScale kDurationUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};

constexpr UnitScale kSizeUnits[] = {
    {"", 1},          {"B", 1},
    {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
    {"KB", 1'000},    {"MB", 1'000'000},    {"GB", 1'000'000'000}, {"TB", 1'000'000'000'000},
    {"K", 1ull << 10}, {"M", 1ull << 20},   {"G", 1ull << 30},
};

// Reads leading digits of `s` into *value; returns how many chars were used
// (0 when there are none or the number overflows).
size_t ReadNumber(std::string_view s, uint64_t* value) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *value);
  if (ec != std::errc()) return 0;
  return static_cast<size_t>(ptr - s.data());
}

bool MulAdd(uint64_t a, uint64_t b, uint64_t* acc) {
  if (b != 0 && a > std::numeric_limits<uint64_t>::max() / b) return false;
  uint64_t p = a * b;
  if (*acc > std::numeric_limits<uint64_t>::max() - p) return false;
  *acc += p;
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<Nanos> ParseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("invalid duration \"" + std::string(text) + "\": " + std::string(why) +
                           " (expected a number followed by ns, us, ms, s, m or h, e.g. 250ms, "
                           "5s, 1m, 1h30m)");
  };
  std::string_view s = Trim(text);
  if (s.empty()) return bad("it is empty");
  if (s == "0") return Nanos(0);
  uint64_t total = 0;
  while (!s.empty()) {
    uint64_t n = 0;
    size_t used = ReadNumber(s, &n);
    if (used == 0) return bad("a number is missing or too large");
    s.remove_prefix(used);
    size_t unit_len = 0;
    while (unit_len < s.size() && std::isalpha(static_cast<unsigned char>(s[unit_len]))) unit_len++;
    std::string_view unit = s.substr(0, unit_len);
    if (unit.empty()) return bad("a unit is missing");
    const UnitScale* match = nullptr;
    for (const auto& u : kDurationUnits)
      if (u.suffix == unit) match = &u;
    if (match == nullptr) return bad("unknown unit \"" + std::string(unit) + "\"");
    if (!MulAdd(n, match->scale, &total)) return bad("it is too large");
    s.remove_prefix(unit_len);
  }
  if (total > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return bad("it is too large");
  return Nanos(static_cast<int64_t>(total));
}

Result<uint64_t> ParseSize(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("invalid size \"" + std::string(text) + "\": " + std::string(why) +
                           " (expected a whole number of bytes, optionally followed by B, KiB, "
                           "MiB, GiB, TiB, KB, MB, GB or TB, e.g. 512KiB, 64MiB)");
  };
  std::string_view s = Trim(text);
  if (s.empty()) return bad("it is empty");
  uint64_t n = 0;
  size_t used = ReadNumber(s, &n);
  if (used == 0) return bad("a number is missing or too large");
  std::string_view unit = Trim(s.substr(used));
  for (const auto& u : kSizeUnits) {
    if (u.suffix == unit) {
      uint64_t total = 0;
      if (!MulAdd(n, u.scale, &total)) return bad("it is too large");
      return total;
    }
  }
  return bad("unknown unit \"" + std::string(unit) + "\"");
}

std::string FormatDuration(Nanos d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  for (int i = static_cast<int>(std::size(kDurationUnits)) - 1; i >= 0; --i) {
    const auto& u = kDurationUnits[i];
    if (ns % static_cast<int64_t>(u.scale) == 0)
      return std::to_string(ns / static_cast<int64_t>(u.scale)) + std::string(u.suffix);
  }
  return std::to_string(ns) + "ns";
}

std::string FormatSize(uint64_t bytes) {
  if (bytes == 0) return "0B";
  constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
  for (const auto& [scale, name] : kUnits)
    if (bytes % scale == 0) return std::to_string(bytes / scale) + name;
  return std::to_string(bytes) + "B";
}

}  // namespace sleuth
