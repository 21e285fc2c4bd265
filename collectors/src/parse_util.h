// Private helpers shared by the /proc and cgroup parsers and readers.
// Pure functions except ReadFileInto; thread-safe.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"

namespace sleuth::collectors::internal {

inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Whole-string decimal parses: no sign for unsigned, no spaces, no trailing text.
inline bool ParseUint64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

inline bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Takes the next line (without its '\n') off the front of *text. Returns
// false when *text is empty.
inline bool NextLine(std::string_view* text, std::string_view* line) {
  if (text->empty()) return false;
  size_t nl = text->find('\n');
  if (nl == std::string_view::npos) {
    *line = *text;
    text->remove_prefix(text->size());
  } else {
    *line = text->substr(0, nl);
    text->remove_prefix(nl + 1);
  }
  return true;
}

// Takes the next whitespace-separated field off the front of *text.
inline bool NextField(std::string_view* text, std::string_view* field) {
  size_t start = 0;
  while (start < text->size() && IsSpace((*text)[start])) ++start;
  if (start == text->size()) {
    text->remove_prefix(text->size());
    return false;
  }
  size_t end = start;
  while (end < text->size() && !IsSpace((*text)[end])) ++end;
  *field = text->substr(start, end - start);
  text->remove_prefix(end);
  return true;
}

// `"text"` for error messages, shortened so a huge bad file does not make a
// huge message.
inline std::string Quote(std::string_view text) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  for (char c : text.substr(0, kMax)) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  if (text.size() > kMax) out += "...";
  out += '"';
  return out;
}

// Parses "<number> kB" (the unit /proc/*/status, meminfo and smaps use) into
// bytes.
inline bool ParseKilobytes(std::string_view value, uint64_t* bytes) {
  value = Trim(value);
  if (value.size() < 3 || value.substr(value.size() - 3) != " kB") return false;
  uint64_t kib = 0;
  if (!ParseUint64(Trim(value.substr(0, value.size() - 3)), &kib)) return false;
  if (kib > UINT64_MAX / 1024) return false;
  *bytes = kib * 1024;
  return true;
}

// `logical` (an absolute path as the host sees it) placed under `root`, the
// prefix tests use to point readers at a fake tree. "" and "/" mean none.
inline std::string JoinRoot(std::string_view root, std::string_view logical) {
  while (!root.empty() && root.back() == '/') root.remove_suffix(1);
  std::string out(root);
  out += logical;
  return out;
}

// Reads the whole file at `path` into *out, reusing its capacity so a
// sampler that reads the same small files every tick does not allocate.
// Returns 0 or the errno of the failed open/read. Thread-compatible.
int ReadFileInto(const char* path, std::string* out);

// "<source>: <what>" as kInvalidArgument: every parser's error names the
// file it read.
inline Status Malformed(std::string_view source, std::string_view what) {
  std::string m(source);
  m += ": ";
  m += what;
  return InvalidArgument(std::move(m));
}

}  // namespace sleuth::collectors::internal
