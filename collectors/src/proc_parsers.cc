#include "sleuth/collectors/proc_parsers.h"

#include <array>
#include <limits>

#include "parse_util.h"
#include "sleuth/collectors/cgroup_parsers.h"

namespace sleuth::collectors {

using internal::NextField;
using internal::Malformed;
using internal::NextLine;
using internal::ParseInt64;
using internal::ParseKilobytes;
using internal::ParseUint64;
using internal::Quote;
using internal::Trim;

namespace {


// Splits a "Key:<spaces>value" line. Returns false if there is no ':'.
bool SplitKeyValue(std::string_view line, std::string_view* key, std::string_view* value) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  *key = line.substr(0, colon);
  *value = Trim(line.substr(colon + 1));
  return true;
}

template <typename Int>
bool ParseId(std::string_view text, Int* out) {
  int64_t v = 0;
  if (!ParseInt64(text, &v) || v < 0 || v > std::numeric_limits<Int>::max()) return false;
  *out = static_cast<Int>(v);
  return true;
}

}  // namespace

Result<ProcStat> ParseProcStat(std::string_view text, std::string_view source) {
  if (Trim(text).empty()) return Malformed(source, "file is empty");
  // The comm field is the only one that may hold spaces or parentheses, so
  // it runs from the first '(' to the last ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return Malformed(source,
                     "no \"(command name)\" field; expected \"<pid> (<comm>) <state> ...\"");

  ProcStat stat;
  std::string_view pid_text = Trim(text.substr(0, open));
  if (!ParseId(pid_text, &stat.pid))
    return Malformed(source, "field 1 (pid) is " + Quote(pid_text) + ", expected a process id");
  stat.comm.assign(text.substr(open + 1, close - open - 1));

  // Fields 3..24 follow the comm; field N is fields[N - 3].
  constexpr size_t kNeeded = 22;
  std::array<std::string_view, kNeeded> fields;
  std::string_view rest = text.substr(close + 1);
  size_t count = 0;
  while (count < kNeeded && NextField(&rest, &fields[count])) ++count;
  if (count < kNeeded)
    return Malformed(source, "only " + std::to_string(count + 2) +
                                 " fields, expected at least 24 (truncated file?)");

  auto field_error = [&](int number, std::string_view name) {
    return Malformed(source, "field " + std::to_string(number) + " (" + std::string(name) +
                                 ") is " + Quote(fields[number - 3]) + ", expected a number");
  };
  if (fields[0].size() != 1)
    return Malformed(source, "field 3 (state) is " + Quote(fields[0]) + ", expected one letter");
  stat.state = fields[0][0];
  if (!ParseId(fields[4 - 3], &stat.ppid)) return field_error(4, "ppid");
  if (!ParseUint64(fields[14 - 3], &stat.utime_ticks)) return field_error(14, "utime");
  if (!ParseUint64(fields[15 - 3], &stat.stime_ticks)) return field_error(15, "stime");
  if (!ParseInt64(fields[20 - 3], &stat.num_threads)) return field_error(20, "num_threads");
  if (!ParseUint64(fields[22 - 3], &stat.starttime_ticks)) return field_error(22, "starttime");
  if (!ParseUint64(fields[23 - 3], &stat.vsize_bytes)) return field_error(23, "vsize");
  int64_t rss_pages = 0;
  if (!ParseInt64(fields[24 - 3], &rss_pages)) return field_error(24, "rss");
  stat.rss_pages = rss_pages > 0 ? static_cast<uint64_t>(rss_pages) : 0;
  return stat;
}

Result<ProcStatus> ParseProcStatus(std::string_view text, std::string_view source) {
  ProcStatus status;
  enum Seen : unsigned {
    kName = 1 << 0,
    kState = 1 << 1,
    kTgid = 1 << 2,
    kPid = 1 << 3,
    kPpid = 1 << 4,
    kUid = 1 << 5,
    kGid = 1 << 6,
    kThreads = 1 << 7,
  };
  unsigned seen = 0;
  std::string_view line;
  int line_number = 0;
  while (NextLine(&text, &line)) {
    ++line_number;
    std::string_view key, value;
    if (!SplitKeyValue(line, &key, &value)) {
      if (Trim(line).empty()) continue;
      return Malformed(source, "line " + std::to_string(line_number) + " " + Quote(line) +
                                   " has no ':' (truncated file?)");
    }
    auto bad = [&](std::string_view expected) {
      return Malformed(
          source, std::string(key) + " is " + Quote(value) + ", expected " + std::string(expected));
    };
    auto kilobytes = [&](std::optional<uint64_t>* out) -> Status {
      uint64_t bytes = 0;
      if (!ParseKilobytes(value, &bytes)) return bad("\"<number> kB\"");
      *out = bytes;
      return Status::Ok();
    };
    if (key == "Name") {
      status.name.assign(value);
      seen |= kName;
    } else if (key == "State") {
      if (value.empty() || (value.size() > 1 && value[1] != ' '))
        return bad("a state letter such as \"S (sleeping)\"");
      status.state = value[0];
      seen |= kState;
    } else if (key == "Tgid") {
      if (!ParseId(value, &status.tgid)) return bad("a process id");
      seen |= kTgid;
    } else if (key == "Pid") {
      if (!ParseId(value, &status.pid)) return bad("a process id");
      seen |= kPid;
    } else if (key == "PPid") {
      if (!ParseId(value, &status.ppid)) return bad("a process id");
      seen |= kPpid;
    } else if (key == "Uid" || key == "Gid") {
      std::string_view rest = value, real, effective;
      bool is_uid = key == "Uid";
      if (!NextField(&rest, &real) || !NextField(&rest, &effective))
        return bad("four ids (real, effective, saved, filesystem)");
      bool ok = is_uid
                    ? ParseId(real, &status.uid_real) && ParseId(effective, &status.uid_effective)
                    : ParseId(real, &status.gid_real) && ParseId(effective, &status.gid_effective);
      if (!ok) return bad("four ids (real, effective, saved, filesystem)");
      seen |= is_uid ? kUid : kGid;
    } else if (key == "Threads") {
      if (!ParseId(value, &status.threads)) return bad("a thread count");
      seen |= kThreads;
    } else if (key == "VmPeak") {
      SLEUTH_RETURN_IF_ERROR(kilobytes(&status.vm_peak_bytes));
    } else if (key == "VmSize") {
      SLEUTH_RETURN_IF_ERROR(kilobytes(&status.vm_size_bytes));
    } else if (key == "VmHWM") {
      SLEUTH_RETURN_IF_ERROR(kilobytes(&status.vm_hwm_bytes));
    } else if (key == "VmRSS") {
      SLEUTH_RETURN_IF_ERROR(kilobytes(&status.vm_rss_bytes));
    } else if (key == "RssAnon") {
      SLEUTH_RETURN_IF_ERROR(kilobytes(&status.rss_anon_bytes));
    } else if (key == "RssFile") {
      SLEUTH_RETURN_IF_ERROR(kilobytes(&status.rss_file_bytes));
    } else if (key == "RssShmem") {
      SLEUTH_RETURN_IF_ERROR(kilobytes(&status.rss_shmem_bytes));
    } else if (key == "VmSwap") {
      SLEUTH_RETURN_IF_ERROR(kilobytes(&status.vm_swap_bytes));
    } else if (key == "Cpus_allowed_list") {
      SLEUTH_ASSIGN_OR_RETURN(int cpus, ParseCpuListCount(value, source));
      status.cpus_allowed = cpus;
    }
  }
  static constexpr std::pair<unsigned, const char*> kRequired[] = {
      {kName, "Name"}, {kState, "State"}, {kTgid, "Tgid"}, {kPid, "Pid"},
      {kPpid, "PPid"}, {kUid, "Uid"},     {kGid, "Gid"},   {kThreads, "Threads"},
  };
  for (const auto& [bit, name] : kRequired) {
    if ((seen & bit) == 0)
      return Malformed(source, std::string("no ") + name + ": line (truncated file?)");
  }
  return status;
}

Result<ProcStatm> ParseProcStatm(std::string_view text, std::string_view source) {
  std::array<uint64_t, 7> values{};
  std::string_view rest = text, field;
  size_t count = 0;
  while (NextField(&rest, &field)) {
    if (count == values.size())
      return Malformed(source,
                       "more than 7 fields, expected \"size resident shared text lib data dt\"");
    if (!ParseUint64(field, &values[count]))
      return Malformed(source, "field " + std::to_string(count + 1) + " is " + Quote(field) +
                                   ", expected a page count");
    ++count;
  }
  if (count != values.size())
    return Malformed(source, "found " + std::to_string(count) +
                                 " fields, expected 7 page counts (truncated file?)");
  ProcStatm statm;
  statm.size_pages = values[0];
  statm.resident_pages = values[1];
  statm.shared_pages = values[2];
  statm.text_pages = values[3];
  statm.data_pages = values[5];
  return statm;
}

Result<SmapsRollup> ParseSmapsRollup(std::string_view text, std::string_view source) {
  std::string_view line;
  if (!NextLine(&text, &line) || Trim(line).empty())
    return Malformed(source, "file is empty (a kernel thread or a zombie has no memory map)");
  if (Trim(line).ends_with("[rollup]") == false)
    return Malformed(source, "first line " + Quote(line) + " is not the \"[rollup]\" header");

  SmapsRollup rollup;
  bool have_rss = false, have_pss = false;
  while (NextLine(&text, &line)) {
    if (Trim(line).empty()) continue;
    std::string_view key, value;
    if (!SplitKeyValue(line, &key, &value))
      return Malformed(source, "line " + Quote(line) + " has no ':' (truncated file?)");
    uint64_t bytes = 0;
    if (!ParseKilobytes(value, &bytes))
      return Malformed(source, std::string(key) + " is " + Quote(value) +
                                   ", expected \"<number> kB\" (truncated file?)");
    if (key == "Rss") {
      rollup.rss_bytes = bytes;
      have_rss = true;
    } else if (key == "Pss") {
      rollup.pss_bytes = bytes;
      have_pss = true;
    } else if (key == "Pss_Anon") {
      rollup.pss_anon_bytes = bytes;
    } else if (key == "Pss_File") {
      rollup.pss_file_bytes = bytes;
    } else if (key == "Pss_Shmem") {
      rollup.pss_shmem_bytes = bytes;
    } else if (key == "Shared_Clean") {
      rollup.shared_clean_bytes = bytes;
    } else if (key == "Shared_Dirty") {
      rollup.shared_dirty_bytes = bytes;
    } else if (key == "Private_Clean") {
      rollup.private_clean_bytes = bytes;
    } else if (key == "Private_Dirty") {
      rollup.private_dirty_bytes = bytes;
    } else if (key == "Anonymous") {
      rollup.anonymous_bytes = bytes;
    } else if (key == "Swap") {
      rollup.swap_bytes = bytes;
    } else if (key == "SwapPss") {
      rollup.swap_pss_bytes = bytes;
    }
  }
  if (!have_rss) return Malformed(source, "no Rss: line (truncated file?)");
  if (!have_pss) return Malformed(source, "no Pss: line (truncated file?)");
  return rollup;
}

Result<MemInfo> ParseMemInfo(std::string_view text, std::string_view source) {
  MemInfo info;
  bool have_total = false;
  std::string_view line;
  while (NextLine(&text, &line)) {
    std::string_view key, value;
    if (!SplitKeyValue(line, &key, &value)) continue;
    std::optional<uint64_t>* target = nullptr;
    std::optional<uint64_t> total;
    if (key == "MemTotal") {
      target = &total;
    } else if (key == "MemFree") {
      target = &info.mem_free_bytes;
    } else if (key == "MemAvailable") {
      target = &info.mem_available_bytes;
    } else {
      continue;
    }
    uint64_t bytes = 0;
    if (!ParseKilobytes(value, &bytes))
      return Malformed(source,
                       std::string(key) + " is " + Quote(value) + ", expected \"<number> kB\"");
    *target = bytes;
    if (total) {
      if (bytes == 0) return Malformed(source, "MemTotal is 0 kB, expected the host's RAM size");
      info.mem_total_bytes = bytes;
      have_total = true;
    }
  }
  if (!have_total) return Malformed(source, "no MemTotal: line (truncated file?)");
  return info;
}

}  // namespace sleuth::collectors
