// Fuzzes the dump sidecar parser, dumps::ParseSidecar (dumps/src/
// dump_meta.cc; the uploader reads sidecars through it), and the dump name
// parser. A sidecar that parses must write (SidecarJson) and parse back to
// the same DumpMeta.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sleuth/dumps/dump_meta.h"
#include "sleuth/dumps/layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto meta = sleuth::dumps::ParseSidecar(text);
  if (meta.ok()) {
    std::string json = sleuth::dumps::SidecarJson(*meta);
    auto again = sleuth::dumps::ParseSidecar(json);
    if (!again.ok()) {
      fprintf(stderr, "written sidecar does not parse back: %s\n%s\n",
              again.status().message().c_str(), json.c_str());
      abort();
    }
    if (!(*again == *meta)) {
      fprintf(stderr, "written sidecar parses back to another DumpMeta:\n%s\n", json.c_str());
      abort();
    }
  } else if (meta.status().message().empty()) {
    abort();
  }
  if (size < 512) (void)sleuth::dumps::ParseDumpBase(text);
  return 0;
}
