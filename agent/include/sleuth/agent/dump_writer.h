// The agent's side of the dump directory: a thin user of sleuth::dumps,
// which owns the layout, the sidecar (DumpMeta), the ownership checks, the
// atomic writes, leftovers and retention. Prepare() opens and checks the
// directory once (refusing one another user could write); every write then
// goes through that descriptor.
// Thread-safety: thread safe (one mutex around retention; writes are rare).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "sleuth/common/status.h"
#include "sleuth/dumps/dump_dir.h"
#include "sleuth/dumps/dump_meta.h"
#include "sleuth/dumps/layout.h"
#include "sleuth/dumps/retention.h"
#include "sleuth/dumps/writer.h"

namespace sleuth::agent {

using dumps::DumpBaseName;
using dumps::DumpMeta;
using dumps::NewEventId;
using dumps::WrittenDump;

class DumpWriter {
 public:
  // `dir` empty: the private default (dumps::DefaultDumpDir()).
  DumpWriter(std::string dir, int max_dumps, uint64_t max_dump_bytes);

  // Opens the directory (creating it 0700), refusing it with the fix if it
  // is a symlink, someone else's, or writable by others; then removes the
  // leftovers of processes that died mid-write.
  Status Prepare();

  // Writes one dump, then applies retention. Fails if Prepare() did not
  // succeed.
  Result<WrittenDump> Write(const DumpMeta& meta, const std::string& profile_gz,
                            const std::optional<std::string>& text);

  // Removes leftovers, then the oldest complete dumps until at most
  // max_dumps remain and the directory holds at most max_dump_bytes (every
  // byte counted); logs each removal. Returns how many dumps it removed.
  int EnforceRetention();

  // The directory, resolved (never empty).
  const std::string& dir() const { return path_; }

  // Dumps for which `exempt(base_name)` is true (e.g. still waiting for
  // upload) are never removed by retention. Called under the writer's lock.
  void SetRetentionExemption(std::function<bool(const std::string& base_name)> exempt) {
    std::lock_guard<std::mutex> lock(mu_);
    exempt_ = std::move(exempt);
  }

 private:
  // Requires mu_. Re-opens the directory if the host took its descriptor.
  Status EnsureOpenLocked();
  std::function<bool(const std::string&)> exempt_;
  std::string path_;
  dumps::RetentionLimits limits_;
  std::mutex mu_;  // guards exempt_ and dir_'s assignment
  dumps::DumpDir dir_;
};

}  // namespace sleuth::agent
