// A development tool: prints the option table's renderings, and rewrites
// README.md's option reference after the table changed:
//   sleuth_config_render defaults|reference
//   sleuth_config_render update-readme README.md
// The `sleuth config defaults|reference` commands of the CLI print the same.
#include <cstdio>
#include <string>
#include <string_view>

#include "sleuth/common/files.h"
#include "sleuth/config/render.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "sleuth_config_render: %s\n", message.c_str());
  return 1;
}

int UpdateReadme(const std::string& path) {
  sleuth::Result<std::string> readme = sleuth::ReadFile(path);
  if (!readme.ok()) return Fail(readme.status().message());
  sleuth::Result<std::string> updated = sleuth::config::WithRenderedReference(*readme);
  if (!updated.ok()) return Fail(path + ": " + updated.status().message());
  if (*updated == *readme) return 0;
  sleuth::Status written = sleuth::WriteFileAtomic(path, *updated, 0644);
  if (!written.ok()) return Fail(written.message());
  std::printf("updated the option reference in %s\n", path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view command = argc >= 2 ? argv[1] : "";
  if (command == "defaults" && argc == 2) {
    std::fputs(sleuth::config::RenderDefaultsToml().c_str(), stdout);
    return 0;
  }
  if (command == "reference" && argc == 2) {
    std::fputs(sleuth::config::RenderMarkdownReference().c_str(), stdout);
    return 0;
  }
  if (command == "update-readme" && argc == 3) return UpdateReadme(argv[2]);
  return Fail("usage: sleuth_config_render defaults | reference | update-readme README.md");
}
