// Flags shared by the subcommands that read a config (--config, --set).
#pragma once

#include <cxxopts.hpp>
#include <string>
#include <vector>

#include "sleuth/common/status.h"
#include "sleuth/config/config.h"

namespace sleuth::cli {

// Adds --config FILE and --set section.key=value (repeatable).
void AddConfigFlags(cxxopts::Options& options);

// Loads the config from defaults, --config or SLEUTH_CONFIG, SLEUTH_*
// variables and --set flags; errors are printed by the caller.
Result<config::Config> LoadFromFlags(const cxxopts::ParseResult& flags);

// Parses argv with cxxopts, turning its exceptions into a usage error that
// names the bad flag. Prints --help and returns nullopt-like status kNotFound
// when --help was given.
Result<cxxopts::ParseResult> ParseFlags(cxxopts::Options& options, int argc, char** argv);

}  // namespace sleuth::cli
