// The sleuth CLI's exit codes, each with the text `sleuth help` prints.
#pragma once

namespace sleuth::cli {

struct ExitCode {
  int code;
  const char* name;
  const char* meaning;
};

enum : int {
  kExitOk = 0,
  kExitFailure = 1,     // the command ran and failed (e.g. dumps left undelivered)
  kExitUsage = 2,       // bad flags or arguments
  kExitConfig = 3,      // the configuration is invalid
  kExitGone = 4,        // the watched process exited
  kExitPermission = 5,  // not allowed to read the process or write the directory
};

inline constexpr ExitCode kExitCodes[] = {
    {kExitOk, "ok", "the command did what it was asked"},
    {kExitFailure, "failure", "the command ran but did not finish its job (it said why)"},
    {kExitUsage, "usage", "unknown command, flag or argument"},
    {kExitConfig, "config", "the configuration is invalid (every problem is listed)"},
    {kExitGone, "gone", "the watched process exited"},
    {kExitPermission, "permission", "not permitted to read the process or write the directory"},
};

}  // namespace sleuth::cli
