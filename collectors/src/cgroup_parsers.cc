#include "sleuth/collectors/cgroup_parsers.h"

#include <algorithm>
#include <array>

#include "parse_util.h"

namespace sleuth::collectors {

using internal::NextField;
using internal::Malformed;
using internal::NextLine;
using internal::ParseInt64;
using internal::ParseUint64;
using internal::Quote;
using internal::Trim;

namespace {


std::string LineRef(int line_number, std::string_view line) {
  return "line " + std::to_string(line_number) + " " + Quote(line);
}

void SplitInto(std::string_view text, char separator, std::vector<std::string>* out) {
  out->clear();
  while (!text.empty()) {
    size_t end = text.find(separator);
    std::string_view part = text.substr(0, end);
    if (!part.empty()) out->emplace_back(part);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

}  // namespace

bool CgroupMembership::HasController(std::string_view controller) const {
  return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
}

bool CgroupMount::HasController(std::string_view controller) const {
  return std::find(super_options.begin(), super_options.end(), controller) != super_options.end();
}

Result<std::vector<CgroupMembership>> ParseProcCgroup(std::string_view text,
                                                      std::string_view source) {
  std::vector<CgroupMembership> memberships;
  std::string_view line;
  int line_number = 0;
  while (NextLine(&text, &line)) {
    ++line_number;
    if (Trim(line).empty()) continue;
    size_t first = line.find(':');
    size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos)
      return Malformed(source, LineRef(line_number, line) +
                                   " is not \"hierarchy-ID:controller-list:cgroup-path\"");
    CgroupMembership membership;
    int64_t id = 0;
    std::string_view id_text = line.substr(0, first);
    if (!ParseInt64(id_text, &id) || id < 0 || id > 1 << 20)
      return Malformed(source, LineRef(line_number, line) + ": hierarchy id " + Quote(id_text) +
                                   " is not a small non-negative number");
    membership.hierarchy_id = static_cast<int>(id);
    SplitInto(line.substr(first + 1, second - first - 1), ',', &membership.controllers);
    // Everything after the second ':' is the path: cgroup names may hold ':'.
    std::string_view path = line.substr(second + 1);
    if (path.empty() || path.front() != '/')
      return Malformed(source, LineRef(line_number, line) + ": cgroup path " + Quote(path) +
                                   " does not start with '/' (truncated file?)");
    membership.path.assign(path);
    memberships.push_back(std::move(membership));
  }
  return memberships;
}

std::string UnescapeMountPath(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '\\' && i + 3 < path.size()) {
      std::string_view digits = path.substr(i + 1, 3);
      bool octal =
          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '7'; });
      if (octal) {
        out +=
            static_cast<char>((digits[0] - '0') * 64 + (digits[1] - '0') * 8 + (digits[2] - '0'));
        i += 3;
        continue;
      }
    }
    out += path[i];
  }
  return out;
}

Result<std::vector<CgroupMount>> ParseCgroupMounts(std::string_view mountinfo_text,
                                                   std::string_view source) {
  // Each line: id parent major:minor root mount-point options [optional...] - fstype source
  // super-options
  std::vector<CgroupMount> mounts;
  std::string_view line;
  int line_number = 0;
  while (NextLine(&mountinfo_text, &line)) {
    ++line_number;
    if (Trim(line).empty()) continue;
    std::string_view rest = line;
    std::array<std::string_view, 6> head;
    size_t count = 0;
    while (count < head.size() && NextField(&rest, &head[count])) ++count;
    if (count < head.size())
      return Malformed(source, LineRef(line_number, line) +
                                   " has fewer than 6 fields before the \" - \" separator "
                                   "(truncated file?)");
    std::string_view field;
    bool found_separator = false;
    while (NextField(&rest, &field)) {
      if (field == "-") {
        found_separator = true;
        break;
      }
    }
    std::string_view fs_type, fs_source, super_options;
    if (!found_separator || !NextField(&rest, &fs_type) || !NextField(&rest, &fs_source) ||
        !NextField(&rest, &super_options))
      return Malformed(source, LineRef(line_number, line) +
                                   " lacks \" - <fstype> <source> <super-options>\" "
                                   "(truncated file?)");
    if (fs_type != "cgroup" && fs_type != "cgroup2") continue;
    CgroupMount mount;
    mount.version = fs_type == "cgroup2" ? CgroupVersion::kV2 : CgroupVersion::kV1;
    mount.root = UnescapeMountPath(head[3]);
    mount.mount_point = UnescapeMountPath(head[4]);
    SplitInto(super_options, ',', &mount.super_options);
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

Result<CpuMax> ParseCpuMax(std::string_view text, std::string_view source) {
  std::string_view rest = text, quota, period, extra;
  if (!NextField(&rest, &quota))
    return Malformed(source, "file is empty, expected \"<quota_us|max> <period_us>\"");
  CpuMax cpu_max;
  if (quota != "max") {
    uint64_t quota_us = 0;
    if (!ParseUint64(quota, &quota_us) || quota_us == 0)
      return Malformed(source, "quota " + Quote(quota) +
                                   " is neither \"max\" nor a positive number of microseconds");
    cpu_max.quota_us = quota_us;
  }
  // The kernel always writes the period; a lone quota means a cut-off file.
  if (!NextField(&rest, &period))
    return Malformed(source, Quote(Trim(text)) +
                                 " has no period, expected \"<quota_us|max> <period_us>\" "
                                 "(truncated file?)");
  if (!ParseUint64(period, &cpu_max.period_us) || cpu_max.period_us == 0)
    return Malformed(source,
                     "period " + Quote(period) + " is not a positive number of microseconds");
  if (NextField(&rest, &extra))
    return Malformed(
        source, Quote(Trim(text)) + " has extra text, expected \"<quota_us|max> <period_us>\"");
  return cpu_max;
}

Result<std::optional<uint64_t>> ParseMemoryMaxOrHigh(std::string_view text,
                                                     std::string_view source) {
  std::string_view value = Trim(text);
  if (value == "max") return std::optional<uint64_t>();
  uint64_t bytes = 0;
  if (!ParseUint64(value, &bytes))
    return Malformed(source, Quote(value) + " is neither \"max\" nor a number of bytes");
  return std::optional<uint64_t>(bytes);
}

Result<std::optional<uint64_t>> ParseCfsQuotaUs(std::string_view text, std::string_view source) {
  std::string_view value = Trim(text);
  int64_t quota_us = 0;
  if (!ParseInt64(value, &quota_us))
    return Malformed(source, Quote(value) + " is not a number, expected -1 or microseconds");
  if (quota_us == -1) return std::optional<uint64_t>();
  if (quota_us <= 0)
    return Malformed(source, Quote(value) + " is not -1 (no limit) or a positive number");
  return std::optional<uint64_t>(static_cast<uint64_t>(quota_us));
}

Result<uint64_t> ParseCfsPeriodUs(std::string_view text, std::string_view source) {
  std::string_view value = Trim(text);
  uint64_t period_us = 0;
  if (!ParseUint64(value, &period_us) || period_us == 0)
    return Malformed(source, Quote(value) + " is not a positive number of microseconds");
  return period_us;
}

Result<std::optional<uint64_t>> ParseMemoryLimitInBytes(std::string_view text,
                                                        std::string_view source) {
  std::string_view value = Trim(text);
  uint64_t bytes = 0;
  if (!ParseUint64(value, &bytes)) {
    // Some kernels print -1 for "unlimited" in memsw files; accept it here too.
    if (value == "-1") return std::optional<uint64_t>();
    return Malformed(source, Quote(value) + " is not a number of bytes");
  }
  if (bytes >= kCgroupV1UnlimitedBytes) return std::optional<uint64_t>();
  return std::optional<uint64_t>(bytes);
}

Result<int> ParseCpuListCount(std::string_view text, std::string_view source) {
  // Real lists are short ("0-63"), but the count must not overflow whatever
  // a broken file says.
  constexpr uint64_t kMaxCpuId = 1 << 20;
  std::string_view list = Trim(text);
  if (list.empty()) return 0;
  uint64_t count = 0;
  while (true) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    size_t dash = item.find('-');
    uint64_t first = 0, last = 0;
    bool ok;
    if (dash == std::string_view::npos) {
      ok = ParseUint64(item, &first);
      last = first;
    } else {
      ok = ParseUint64(item.substr(0, dash), &first) && ParseUint64(item.substr(dash + 1), &last);
    }
    if (!ok || first > last || last > kMaxCpuId)
      return Malformed(source, "item " + Quote(item) + " of " + Quote(Trim(text)) +
                                   " is not a CPU number or an ascending range like \"0-3\"");
    count += last - first + 1;
    if (count > kMaxCpuId)
      return Malformed(source, Quote(Trim(text)) + " lists more CPUs than any machine has");
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return static_cast<int>(count);
}

}  // namespace sleuth::collectors
