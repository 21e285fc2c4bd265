#include "sleuth/profiles/proc_maps.h"

#include "text_util.h"

namespace sleuth::profiles {

using internal::NextToken;
using internal::ParseUnsigned;
using internal::Quote;

namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

Status LineError(std::string_view what, std::string_view line) {
  return InvalidArgument("expected " + std::string(what) + " in " + Quote(line));
}

}  // namespace

Result<ProcMapping> ParseProcMapsLine(std::string_view line) {
  ProcMapping m;
  std::string_view rest = line;

  std::string_view range = NextToken(&rest);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos || !ParseUnsigned(range.substr(0, dash), &m.start, 16) ||
      !ParseUnsigned(range.substr(dash + 1), &m.limit, 16) || m.limit < m.start) {
    return LineError("\"start-limit\" hex addresses", line);
  }

  std::string_view perms = NextToken(&rest);
  if (perms.size() != 4) return LineError("permissions like \"r-xp\"", line);
  m.readable = perms[0] == 'r';
  m.writable = perms[1] == 'w';
  m.executable = perms[2] == 'x';
  m.shared = perms[3] == 's';

  if (!ParseUnsigned(NextToken(&rest), &m.file_offset, 16)) {
    return LineError("a hex file offset after the permissions", line);
  }

  std::string_view dev = NextToken(&rest);
  size_t colon = dev.find(':');
  uint64_t major = 0, minor = 0;
  if (colon == std::string_view::npos || !ParseUnsigned(dev.substr(0, colon), &major, 16) ||
      !ParseUnsigned(dev.substr(colon + 1), &minor, 16)) {
    return LineError("a \"major:minor\" device", line);
  }
  m.dev_major = static_cast<uint32_t>(major);
  m.dev_minor = static_cast<uint32_t>(minor);

  if (!ParseUnsigned(NextToken(&rest), &m.inode, 10)) {
    return LineError("a decimal inode after the device", line);
  }

  // The path is the rest of the line after the padding; it may contain
  // spaces, so it is not tokenized.
  std::string_view path = internal::TrimLeft(rest);
  while (!path.empty() && (path.back() == '\r' || path.back() == '\n')) path.remove_suffix(1);
  if (path.size() > kDeletedSuffix.size() &&
      path.substr(path.size() - kDeletedSuffix.size()) == kDeletedSuffix) {
    m.deleted = true;
    path.remove_suffix(kDeletedSuffix.size());
  }
  m.path = std::string(path);
  return m;
}

Result<std::vector<ProcMapping>> ParseProcMaps(std::string_view text) {
  std::vector<ProcMapping> out;
  Status error;
  internal::ForEachLine(text, [&](std::string_view line, size_t number) {
    if (internal::Trim(line).empty()) return true;
    Result<ProcMapping> m = ParseProcMapsLine(line);
    if (!m.ok()) {
      error = m.status().WithContext("/proc/maps line " + std::to_string(number));
      return false;
    }
    out.push_back(std::move(m).value());
    return true;
  });
  if (!error.ok()) return error;
  return out;
}

}  // namespace sleuth::profiles
