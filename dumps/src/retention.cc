#include "sleuth/dumps/retention.h"

#include <algorithm>
#include <vector>

#include "sleuth/common/log.h"
#include "sleuth/dumps/layout.h"

namespace sleuth::dumps {
namespace {

uint64_t SizeIn(const DumpDir& dir, const std::string& name) {
  Result<struct stat> st = dir.Stat(name);
  return st.ok() && S_ISREG(st->st_mode) ? static_cast<uint64_t>(st->st_size) : 0;
}

}  // namespace

RetentionOutcome EnforceRetention(const DumpDir& dir, const RetentionLimits& limits,
                                  const std::function<bool(const std::string& base)>& exempt) {
  struct Entry {
    std::string base;
    int64_t mtime_ns;
    uint64_t bytes;
  };
  std::vector<Entry> dumps;
  RetentionOutcome out;
  Status listed = dir.ForEachEntry([&](std::string_view name, bool is_dir) {
    if (is_dir) return;
    std::optional<std::string> base = SidecarBase(name);
    if (!base) return;
    Result<struct stat> st = dir.Stat(name);
    if (!st.ok() || !S_ISREG(st->st_mode)) return;
    uint64_t bytes = static_cast<uint64_t>(st->st_size) +
                     SizeIn(dir, *base + std::string(kProfileExt)) +
                     SizeIn(dir, *base + std::string(kTextExt));
    dumps.push_back(
        {std::move(*base), st->st_mtim.tv_sec * 1'000'000'000LL + st->st_mtim.tv_nsec, bytes});
  });
  if (!listed.ok()) {
    log::Warn("retention: " + listed.message());
    return out;
  }
  // Oldest first; the name (which starts with the time) breaks ties.
  std::sort(dumps.begin(), dumps.end(), [](const Entry& a, const Entry& b) {
    return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.base < b.base;
  });
  uint64_t total = dir.TotalBytes();
  size_t count = dumps.size();
  for (const Entry& d : dumps) {
    bool over_count = limits.max_dumps > 0 && count > static_cast<size_t>(limits.max_dumps);
    bool over_bytes = limits.max_dump_bytes > 0 && total > limits.max_dump_bytes;
    if (!over_count && !over_bytes) break;
    if (exempt && exempt(d.base)) continue;
    (void)dir.Remove(d.base + std::string(kSidecarExt));
    (void)dir.Remove(d.base + std::string(kProfileExt));
    (void)dir.Remove(d.base + std::string(kTextExt));
    log::Info("retention: removed dump " + dir.PathOf(d.base) + " (" + std::to_string(d.bytes) +
              " bytes; " +
              (over_count ? "more than agent.max_dumps=" + std::to_string(limits.max_dumps)
                          : "the directory holds more than agent.max_dump_bytes=" +
                                std::to_string(limits.max_dump_bytes)) +
              ")");
    count--;
    total -= std::min(total, d.bytes);
    out.removed++;
  }
  out.dumps = count;
  out.total_bytes = total;
  return out;
}

}  // namespace sleuth::dumps
