// `sleuth upload`: ships the dumps waiting in a directory to the configured
// sinks. argv[0] is "upload".
#pragma once

namespace sleuth::cli {

int RunUploadCommand(int argc, char** argv);

}  // namespace sleuth::cli
