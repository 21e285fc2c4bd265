// sleuth config defaults | reference | check
#include <cstdio>
#include <string_view>

#include "cli_config.h"
#include "commands.h"
#include "exit_codes.h"
#include "sleuth/config/render.h"

namespace sleuth::cli {

int RunConfigCommand(int argc, char** argv) {
  cxxopts::Options options("sleuth config",
                           "sleuth config defaults   print every option with its default, as TOML\n"
                           "sleuth config reference  print the option reference (Markdown)\n"
                           "sleuth config check      load the config (--config, SLEUTH_*, --set), "
                           "print it or every problem found");
  AddConfigFlags(options);
  options.add_options()("what", "defaults | reference | check", cxxopts::value<std::string>());
  options.parse_positional({"what"});
  auto flags = ParseFlags(options, argc, argv);
  if (!flags.ok()) {
    if (flags.status().code() == StatusCode::kNotFound) return kExitOk;
    std::fprintf(stderr, "sleuth config: %s\n", flags.status().message().c_str());
    return kExitUsage;
  }
  std::string what = flags->count("what") ? (*flags)["what"].as<std::string>() : "";
  if (what == "defaults") {
    std::fputs(config::RenderDefaultsToml().c_str(), stdout);
    return kExitOk;
  }
  if (what == "reference") {
    std::fputs(config::RenderMarkdownReference().c_str(), stdout);
    return kExitOk;
  }
  if (what == "check") {
    auto cfg = LoadFromFlags(*flags);
    if (!cfg.ok()) {
      std::fprintf(stderr, "sleuth config: invalid configuration:\n%s\n",
                   cfg.status().message().c_str());
      return kExitConfig;
    }
    std::fputs(config::RenderEffectiveToml(*cfg).c_str(), stdout);
    return kExitOk;
  }
  std::fprintf(stderr, "sleuth config: expected defaults, reference or check%s%s\n",
               what.empty() ? "" : ", got ", what.c_str());
  return kExitUsage;
}

}  // namespace sleuth::cli
