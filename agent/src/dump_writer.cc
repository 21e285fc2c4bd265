#include "sleuth/agent/dump_writer.h"

#include "sleuth/common/log.h"
#include "sleuth/dumps/leftovers.h"
#include "sleuth/dumps/retention.h"

namespace sleuth::agent {

DumpWriter::DumpWriter(std::string dir, int max_dumps, uint64_t max_dump_bytes)
    : path_(dumps::ResolveDumpDir(dir)),
      limits_{.max_dumps = max_dumps, .max_dump_bytes = max_dump_bytes} {}

Status DumpWriter::Prepare() {
  std::lock_guard<std::mutex> lock(mu_);
  Result<dumps::DumpDir> opened = dumps::DumpDir::Open(path_, dumps::Create::kYes);
  if (!opened.ok()) return opened.status().WithContext("agent.dump_dir");
  dir_ = std::move(*opened);
  dumps::RemoveLeftovers(dir_);
  return Status::Ok();
}

Status DumpWriter::EnsureOpenLocked() {
  if (!dir_.is_open()) return Unavailable("the dump directory " + path_ + " is not open");
  if (dir_.StillOurs()) return Status::Ok();
  // The host closed our descriptor (and may own its number now): forget it
  // without closing, and open the directory again, checked as at start.
  dir_.Forget();
  log::Warn("the dump directory's descriptor was closed by the host; opening " + path_ +
            " again");
  Result<dumps::DumpDir> opened = dumps::DumpDir::Open(path_, dumps::Create::kYes);
  if (!opened.ok()) return opened.status().WithContext("agent.dump_dir");
  dir_ = std::move(*opened);
  return Status::Ok();
}

Result<WrittenDump> DumpWriter::Write(const DumpMeta& meta, const std::string& profile_gz,
                                      const std::optional<std::string>& text) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    SLEUTH_RETURN_IF_ERROR(EnsureOpenLocked());
  }
  std::optional<std::string_view> text_view;
  if (text) text_view = *text;
  Result<WrittenDump> written = dumps::WriteDump(dir_, meta, profile_gz, text_view);
  if (!written.ok()) return written;
  EnforceRetention();
  return written;
}

int DumpWriter::EnforceRetention() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!EnsureOpenLocked().ok()) return 0;
  dumps::RemoveLeftovers(dir_);
  return dumps::EnforceRetention(dir_, limits_, exempt_).removed;
}

}  // namespace sleuth::agent
