// Test harness for the integration tests: run a program with a chosen
// environment, capture its output, bound its run time, and find the dumps it
// left behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sleuth::testing {

struct RunResult {
  std::string out;
  std::string err;
  int exit_code = -1;      // when it exited normally
  int term_signal = 0;     // when a signal ended it
  bool timed_out = false;  // killed by the harness
};

struct RunOptions {
  std::vector<std::string> argv;
  // Replaces the variables named here; SLEUTH_* and LD_PRELOAD from the
  // test's own environment are always cleared first so runs are independent.
  std::map<std::string, std::string> env;
  std::chrono::milliseconds timeout{60000};
};

RunResult RunProgram(const RunOptions& options);

// Paths of the build products.
std::string LibSleuth();  // build/.../agent/libsleuth.so
std::string TestHost();   // build/.../tests/programs/test_host
std::string CApiHost();   // build/.../tests/programs/c_api_host
std::string SleuthCli();  // build/.../cli/sleuth
std::string Tcmalloc();   // /usr/lib/x86_64-linux-gnu/libtcmalloc.so.4

// A fresh empty directory under /tmp.
std::string MakeTempDir(const std::string& prefix);

struct DumpFiles {
  std::string base;  // path without extension
  std::string kind;
  std::string sidecar_json;
};

// Complete dumps (those with a sidecar) in `dir`, oldest first by name.
std::vector<DumpFiles> FindDumps(const std::string& dir);

// The environment that preloads libsleuth.so with its dumps in `dump_dir`,
// sampling every `interval` over `history` readings, every rule off: a test
// turns on the rules it needs (or asks for dumps through the C API).
std::map<std::string, std::string> AgentWithRulesOff(const std::string& dump_dir,
                                                     const std::string& interval = "200ms",
                                                     int history = 3);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Lines of `text` that contain `needle`.
std::vector<std::string> LinesWith(const std::string& text, const std::string& needle);

}  // namespace sleuth::testing
