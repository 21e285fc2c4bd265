#include "sleuth/dumps/writer.h"

#include "sleuth/dumps/layout.h"

namespace sleuth::dumps {

Result<WrittenDump> WriteDump(const DumpDir& dir, const DumpMeta& meta_in,
                              std::string_view profile_gz, std::optional<std::string_view> text) {
  DumpMeta meta = meta_in;
  WrittenDump out;
  out.base = DumpBaseName(meta);
  std::string profile_name = out.base + std::string(kProfileExt);
  std::string text_name = out.base + std::string(kTextExt);
  std::string sidecar_name = out.base + std::string(kSidecarExt);
  out.profile_path = dir.PathOf(profile_name);
  out.sidecar_path = dir.PathOf(sidecar_name);
  meta.profile_file = profile_name;
  meta.profile_bytes = profile_gz.size();

  SLEUTH_RETURN_IF_ERROR(dir.WriteAtomic(profile_name, profile_gz, Sync::kYes));
  out.bytes += profile_gz.size();
  auto undo = [&](Status why) {
    // Without its sidecar nothing would ever collect the rest.
    (void)dir.Remove(profile_name);
    if (text) (void)dir.Remove(text_name);
    return why;
  };
  if (text) {
    if (Status s = dir.WriteAtomic(text_name, *text, Sync::kYes); !s.ok()) return undo(s);
    out.bytes += text->size();
  }
  std::string sidecar = SidecarJson(meta);
  if (sidecar.empty()) return undo(Internal("cannot render the sidecar of " + out.base));
  // Last: the sidecar's arrival marks the dump complete.
  if (Status s = dir.WriteAtomic(sidecar_name, sidecar, Sync::kYes); !s.ok()) return undo(s);
  out.bytes += sidecar.size();
  return out;
}

bool IsComplete(const DumpDir& dir, std::string_view base) {
  return dir.Exists(std::string(base) + std::string(kSidecarExt));
}

}  // namespace sleuth::dumps
