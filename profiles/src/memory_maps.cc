#include "sleuth/profiles/memory_maps.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "sleuth/profiles/proc_maps.h"
#include "text_util.h"

namespace sleuth::profiles {

namespace {

enum Value { kRss = 0, kPss, kAnonymous, kSwap, kSize, kValueCount };

// The smaps fields that feed a value.
int ValueOfField(std::string_view key) {
  if (key == "Rss") return kRss;
  if (key == "Pss") return kPss;
  if (key == "Anonymous") return kAnonymous;
  if (key == "Swap") return kSwap;
  if (key == "Size") return kSize;
  return -1;
}

// The leaf-first synthetic frames of the group a mapping belongs to.
std::vector<std::string> GroupOf(const ProcMapping& m) {
  const std::string& path = m.path;
  if (path.empty()) return {"anonymous"};
  if (path == "[heap]") return {"[heap]"};
  if (path == "[stack]" || path.rfind("[stack:", 0) == 0) return {"[stack]"};
  if (path.rfind("[anon:", 0) == 0) return {path, "anonymous"};
  if (path[0] == '[') return {path};
  std::string file = "file:" + path;
  if (m.deleted) file += " (deleted)";
  return {file, "files"};
}

struct Group {
  std::vector<std::string> names;
  int64_t values[kValueCount] = {};
  int64_t mappings = 0;
};

Status LineError(size_t number, const std::string& what, std::string_view line) {
  return InvalidArgument("smaps line " + std::to_string(number) + ": " + what + " in " +
                         internal::Quote(line));
}

// A mapping header starts with "<hex>-<hex> "; field lines with "Key:".
bool LooksLikeHeader(std::string_view line) {
  size_t dash = line.find('-');
  size_t space = line.find(' ');
  return dash != std::string_view::npos && dash > 0 && space != std::string_view::npos &&
         dash < space;
}

}  // namespace

Result<RawProfile> MemoryMapsProfile(std::string_view smaps_text) {
  std::map<std::string, Group> groups;  // by leaf name
  Group* current = nullptr;
  Status error;
  size_t mapping_count = 0;

  internal::ForEachLine(smaps_text, [&](std::string_view line, size_t number) {
    if (internal::Trim(line).empty()) return true;
    if (LooksLikeHeader(line)) {
      Result<ProcMapping> m = ParseProcMapsLine(line);
      if (!m.ok()) {
        error = m.status().WithContext("smaps line " + std::to_string(number));
        return false;
      }
      std::vector<std::string> names = GroupOf(*m);
      Group& g = groups[names.front()];
      if (g.names.empty()) g.names = std::move(names);
      ++g.mappings;
      ++mapping_count;
      current = &g;
      return true;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      error = LineError(number, "expected a mapping header or a \"Key: value\" field", line);
      return false;
    }
    if (current == nullptr) {
      error = LineError(number, "a field before the first mapping header (truncated at the start?)",
                        line);
      return false;
    }
    int value = ValueOfField(line.substr(0, colon));
    if (value < 0) return true;  // a field sleuth does not report (VmFlags, Locked...)
    std::string_view rest = line.substr(colon + 1);
    std::string_view number_text = internal::NextToken(&rest);
    std::string_view unit = internal::NextToken(&rest);
    uint64_t kib = 0;
    if (!internal::ParseUnsigned(number_text, &kib) || unit != "kB" ||
        kib > static_cast<uint64_t>(INT64_MAX / 1024)) {
      error = LineError(number, "expected \"<number> kB\"", line);
      return false;
    }
    current->values[value] += static_cast<int64_t>(kib) * 1024;
    return true;
  });
  if (!error.ok()) return error;
  if (mapping_count == 0) {
    return InvalidArgument("smaps: no mappings found (empty input or not /proc/<pid>/smaps text)");
  }

  std::vector<Group*> ordered;
  for (auto& [name, g] : groups) ordered.push_back(&g);
  std::stable_sort(ordered.begin(), ordered.end(), [](const Group* a, const Group* b) {
    return a->values[kRss] > b->values[kRss];
  });

  RawProfile p;
  p.sample_types = {{"rss", "bytes"},
                    {"pss", "bytes"},
                    {"anonymous", "bytes"},
                    {"swap", "bytes"},
                    {"size", "bytes"}};
  p.default_sample_type = "rss";
  for (const Group* g : ordered) {
    RawSample s;
    s.names = g->names;
    s.values.assign(std::begin(g->values), std::end(g->values));
    s.labels.push_back({"mappings", "", g->mappings, "count"});
    p.samples.push_back(std::move(s));
  }
  return p;
}

}  // namespace sleuth::profiles
