// One function per `sleuth` subcommand; argv[0] is the subcommand's name.
#pragma once

namespace sleuth::cli {

int RunConfigCommand(int argc, char** argv);
int RunWatchCommand(int argc, char** argv);
int RunRunCommand(int argc, char** argv);

}  // namespace sleuth::cli
