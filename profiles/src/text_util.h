// Small text helpers shared by the profile parsers. Private to profiles/.
// Pure functions; thread-safe.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace sleuth::profiles::internal {

// Calls `fn(line, line_number)` for every line of `text` (without its '\n';
// line numbers start at 1). Stops early and returns false if fn does.
template <typename Fn>
bool ForEachLine(std::string_view text, Fn&& fn) {
  size_t line_number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    ++line_number;
    if (!fn(line, line_number)) return false;
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return true;
}

inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

inline std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  return s;
}

inline std::string_view Trim(std::string_view s) {
  s = TrimLeft(s);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Splits off the next whitespace-delimited token from *s (leading blanks are
// skipped). Returns an empty view when nothing is left.
inline std::string_view NextToken(std::string_view* s) {
  *s = TrimLeft(*s);
  size_t end = 0;
  while (end < s->size() && !IsSpace((*s)[end])) ++end;
  std::string_view token = s->substr(0, end);
  s->remove_prefix(end);
  return token;
}

// Whole-string unsigned integer parse in `base`; false on any junk or overflow.
inline bool ParseUnsigned(std::string_view s, uint64_t* out, int base = 10) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out, base);
  return ec == std::errc() && ptr == end;
}

inline bool ParseSigned(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out, 10);
  return ec == std::errc() && ptr == end;
}

// "0x1a2b" or "1a2b" -> value.
inline bool ParseHexAddress(std::string_view s, uint64_t* out) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  return ParseUnsigned(s, out, 16);
}

// A line shortened for an error message, quoted.
inline std::string Quote(std::string_view line, size_t max_chars = 100) {
  std::string out = "\"";
  if (line.size() > max_chars) {
    out.append(line.substr(0, max_chars));
    out.append("...");
  } else {
    out.append(line);
  }
  out.push_back('"');
  return out;
}

}  // namespace sleuth::profiles::internal
