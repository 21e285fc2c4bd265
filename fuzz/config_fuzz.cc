// Fuzzes LoadConfig, the one entry the agent (sleuth_start), `sleuth config
// check` and every subcommand load a configuration through, with the input
// as a TOML file, as --set arguments and as SLEUTH_* variables (one per
// line). What loads must render (RenderEffectiveToml) to a file that loads
// back to the same configuration.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/config/load.h"
#include "sleuth/config/render.h"

namespace {

// One memfd for the whole run: a regular file, as LoadConfig requires,
// without touching the disk per input.
int ConfigFd() {
  static const int fd = memfd_create("sleuth_config_fuzz", MFD_CLOEXEC);
  if (fd < 0) abort();
  return fd;
}

std::string WriteConfig(std::string_view text) {
  int fd = ConfigFd();
  if (ftruncate(fd, 0) != 0) abort();
  if (!text.empty() && pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    abort();
  return "/proc/self/fd/" + std::to_string(fd);
}

// The first lines of `text`, each with `prefix`: a few are enough to reach
// every path of the env and --set readers, and keep the target fast.
std::vector<std::string> Lines(std::string_view text, std::string_view prefix) {
  constexpr size_t kMaxLines = 16;
  std::vector<std::string> lines;
  while (!text.empty() && lines.size() < kMaxLines) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    lines.push_back(std::string(prefix) + std::string(line));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

// Secret header values render as "(hidden)": leave them out of the
// comparison.
sleuth::config::Config WithoutHeaders(sleuth::config::Config config) {
  for (auto& sink : config.upload.sinks) sink.headers.clear();
  return config;
}

void CheckRoundTrip(const sleuth::config::Config& config) {
  std::string rendered = sleuth::config::RenderEffectiveToml(config);
  auto again = sleuth::config::LoadConfig(
      {.file_path = WriteConfig(rendered), .use_env_config_path = false});
  if (!again.ok()) {
    fprintf(stderr, "rendered config does not load back:\n%s\n--- rendered:\n%s\n",
            again.status().message().c_str(), rendered.c_str());
    abort();
  }
  if (!(WithoutHeaders(*again) == WithoutHeaders(config))) {
    fprintf(stderr, "rendered config loads back to another config:\n%s\n", rendered.c_str());
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using sleuth::config::ConfigSources;
  for (const ConfigSources& sources :
       {ConfigSources{.file_path = WriteConfig(text), .use_env_config_path = false},
        ConfigSources{.use_env_config_path = false, .set_args = Lines(text, "")},
        ConfigSources{.use_env_config_path = false, .env = Lines(text, "SLEUTH_")}}) {
    auto config = sleuth::config::LoadConfig(sources);
    if (config.ok()) {
      CheckRoundTrip(*config);
    } else if (config.status().message().empty()) {
      abort();  // every refusal says why
    }
  }
  return 0;
}
