#include "sleuth/profiles/stacks_text.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace sleuth::profiles {

namespace {

const Label* FindLabel(const RawSample& s, std::string_view key) {
  for (const Label& l : s.labels) {
    if (l.key == key) return &l;
  }
  return nullptr;
}

std::string FrameNumber(size_t i) {
  std::string out = "#" + std::to_string(i);
  out.resize(std::max<size_t>(out.size() + 1, 4), ' ');  // "#0  ", "#12 "
  return out;
}

}  // namespace

std::string RenderStacksText(const RawProfile& threads_profile, Symbolizer& sym) {
  std::string out;
  for (size_t t = 0; t < threads_profile.samples.size(); ++t) {
    const RawSample& s = threads_profile.samples[t];
    if (t > 0) out += '\n';
    const Label* id = FindLabel(s, "thread_id");
    const Label* name = FindLabel(s, "thread_name");
    out += "Thread ";
    out += id != nullptr ? (id->str.empty() ? std::to_string(id->num) : id->str) : "?";
    out += " (";
    out += name != nullptr && !name->str.empty() ? name->str : "?";
    out += "):\n";

    if (s.pcs.empty()) {
      for (size_t i = 0; i < s.names.size(); ++i) out += FrameNumber(i) + s.names[i] + '\n';
      continue;
    }
    for (size_t i = 0; i < s.pcs.size(); ++i) {
      uint64_t pc = s.pcs[i];
      bool return_address = i > 0 || !threads_profile.leaf_is_exact_pc;
      SymbolizedPc where = sym.Lookup(return_address && pc > 0 ? pc - 1 : pc);
      char address[32];
      std::snprintf(address, sizeof address, "0x%016" PRIx64, pc);
      out += FrameNumber(i);
      out += address;
      out += " in ";
      out += where.function.empty() ? "??" : where.function;
      // gdb's "foo ()"; demangled C++ names already carry their parameters.
      if (where.function.find('(') == std::string::npos) out += " ()";
      if (where.mapping_index >= 0) {
        const std::string& path = sym.mappings()[static_cast<size_t>(where.mapping_index)].path;
        if (!path.empty()) {
          out += " from ";
          out += path;
        }
      }
      out += '\n';
    }
  }
  return out;
}

RawProfile NewThreadsProfile(int64_t time_nanos) {
  RawProfile profile;
  profile.sample_types = {{"threads", "count"}};
  profile.period_type = {"threads", "count"};
  profile.period = 1;
  profile.time_nanos = time_nanos;
  profile.leaf_is_exact_pc = true;
  profile.default_sample_type = "threads";
  return profile;
}

}  // namespace sleuth::profiles
