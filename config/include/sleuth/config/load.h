// Loading a Config from its sources. Later sources win:
//   1. the built-in defaults (Config{}),
//   2. the TOML file named by --config (ConfigSources::file_path), else by
//      the SLEUTH_CONFIG environment variable,
//   3. environment variables SLEUTH_<SECTION>_<KEY> (EnvVarName()),
//   4. --set section.key=value arguments, in order.
//
// TOML values may be native (10, 12.5, true) or strings ("5s", "64MiB");
// a bare number where a duration is expected is an error. Tables
// (agent.labels, upload.headers) are TOML tables in the file and
// "k=v,k2=v2" text elsewhere ("\," is a comma inside a value); a source that
// sets a table replaces it whole. Named upload sinks are [upload.sinks.NAME]
// tables in the file or `--set upload.sinks.NAME.key=value`; they have no
// environment variables.
//
// Nothing falls back silently: any bad value, unknown key or variable,
// unreadable file or broken cross-option rule makes LoadConfig fail, and the
// error lists every problem found, one per line, each naming where it came
// from (file:line:column, the variable or the --set key), and the nearest
// valid key for unknown ones.
//
// Oversized input is refused before it is parsed, with a short message that
// never echoes it: a config file over kMaxConfigFileBytes, an environment
// variable or --set argument whose value is over kMaxValueBytes or whose
// name is over kMaxKeyBytes. Values and unknown names are shown in messages
// by a short prefix only, and at most kMaxProblems problems are listed.
//
// LoadConfig is the one validation of a configuration: the preloaded agent
// (sleuth_start), `sleuth config check` and every other subcommand call it,
// so a config that `sleuth config check` accepts is one the agent accepts.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sleuth/common/status.h"
#include "sleuth/config/config.h"

namespace sleuth::config {

// A config file is a page of settings: 1 MiB is thousands of times the
// largest real one, and parsing it takes milliseconds, so a file named by
// SLEUTH_CONFIG cannot delay the host's start.
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;
// The longest value of one environment variable or --set argument: every
// option's own bound is far below it (the longest, upload.headers, is 32
// headers of 4 KiB in the file but a line of text elsewhere).
inline constexpr size_t kMaxValueBytes = 4 << 10;
// The longest key or variable name: every real one is under 64 bytes.
inline constexpr size_t kMaxKeyBytes = 128;
// The most problems one error lists; the rest are counted.
inline constexpr size_t kMaxProblems = 20;

struct ConfigSources {
  // The file given with --config; empty: none, unless SLEUTH_CONFIG names one.
  std::string file_path = {};
  // Whether SLEUTH_CONFIG (looked up in `env`) names the file when
  // file_path is empty.
  bool use_env_config_path = true;
  // "NAME=value" entries such as EnvironFromProcess() returns. Only the
  // SLEUTH_* ones are read; a SLEUTH_* name that is neither an option nor in
  // NonOptionEnvVars() is an error.
  std::vector<std::string> env = {};
  // "section.key=value" or "upload.sinks.NAME.key=value", applied in order.
  std::vector<std::string> set_args = {};
};

// Thread-safety: thread safe (reads only the config file and `sources`).
// Not async-signal-safe.
[[nodiscard]] Result<Config> LoadConfig(const ConfigSources& sources);

// A copy of the process's environment. Thread-safety: must not race with
// setenv/putenv in another thread (no libc function can promise that).
std::vector<std::string> EnvironFromProcess();

}  // namespace sleuth::config
