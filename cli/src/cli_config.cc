#include "cli_config.h"

#include <cstdio>

#include "sleuth/config/load.h"

namespace sleuth::cli {

void AddConfigFlags(cxxopts::Options& options) {
  options.add_options("config")(
      "config", "TOML config file (else $SLEUTH_CONFIG)", cxxopts::value<std::string>())(
      "set", "override one option, e.g. --set cpu.abs=50 (repeatable)",
      cxxopts::value<std::vector<std::string>>());
}

Result<config::Config> LoadFromFlags(const cxxopts::ParseResult& flags) {
  config::ConfigSources sources;
  if (flags.count("config")) sources.file_path = flags["config"].as<std::string>();
  if (flags.count("set")) sources.set_args = flags["set"].as<std::vector<std::string>>();
  sources.env = config::EnvironFromProcess();
  return config::LoadConfig(sources);
}

Result<cxxopts::ParseResult> ParseFlags(cxxopts::Options& options, int argc, char** argv) {
  options.add_options()("h,help", "show this help");
  try {
    auto result = options.parse(argc, argv);
    if (result.count("help")) {
      std::printf("%s\n", options.help().c_str());
      return NotFound("help shown");
    }
    if (!result.unmatched().empty())
      return InvalidArgument("unexpected argument \"" + result.unmatched().front() +
                             "\" (see --help)");
    return result;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string(e.what()) + " (see --help)");
  }
}

}  // namespace sleuth::cli
