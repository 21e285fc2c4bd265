// sleuth: the command-line face of the agent. Thin: each subcommand lives in
// its own file.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "commands.h"
#include "exit_codes.h"
#include "upload_command.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"watch", sleuth::cli::RunWatchCommand,
     "watch --pid N: sample a process, print its readings and the rules' verdicts"},
    {"run", sleuth::cli::RunRunCommand,
     "run [--tcmalloc] -- CMD...: start CMD with the agent preloaded"},
    {"upload", sleuth::cli::RunUploadCommand,
     "upload --dir DIR: ship the dumps waiting in DIR to the configured backends"},
    {"config", sleuth::cli::RunConfigCommand,
     "config defaults|reference|check: print defaults, the option reference, or check a config"},
};

void Usage(FILE* out) {
  std::fprintf(out, "usage: sleuth <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-8s %s\n", c.name, c.summary);
  std::fprintf(out, "\n`sleuth <command> --help` describes a command's options.\n\nexit codes:\n");
  for (const auto& e : sleuth::cli::kExitCodes)
    std::fprintf(out, "  %d %-10s %s\n", e.code, e.name, e.meaning);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage(stderr);
    return sleuth::cli::kExitUsage;
  }
  std::string_view name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") {
    Usage(stdout);
    return sleuth::cli::kExitOk;
  }
  for (const auto& c : kCommands)
    if (name == c.name) return c.run(argc - 1, argv + 1);
  std::fprintf(stderr, "sleuth: unknown command \"%s\"\n\n", argv[1]);
  Usage(stderr);
  return sleuth::cli::kExitUsage;
}
