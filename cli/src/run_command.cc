// sleuth run [--tcmalloc] -- CMD ARGS...: starts CMD with libsleuth.so
// preloaded (and, with --tcmalloc, gperftools' tcmalloc with heap sampling,
// so heap dumps work), keeping any LD_PRELOAD already set.
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "exit_codes.h"

namespace sleuth::cli {
namespace {

bool Exists(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

std::string ExeDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  std::string path(buf);
  return path.substr(0, path.rfind('/'));
}

// $SLEUTH_LIBRARY, else beside the executable in the build tree or an install.
std::string FindLibrary() {
  if (const char* env = getenv("SLEUTH_LIBRARY"); env && *env) return env;
  std::string dir = ExeDir();
  for (const char* rel : {"/libsleuth.so", "/../agent/libsleuth.so", "/../lib/libsleuth.so",
                          "/../lib/sleuth/libsleuth.so"}) {
    if (Exists(dir + rel)) {
      char resolved[PATH_MAX];
      if (realpath((dir + rel).c_str(), resolved)) return resolved;
    }
  }
  return "";
}

std::string FindTcmalloc() {
  for (const char* path : {"/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4", "/usr/lib/libtcmalloc.so.4",
                           "/usr/lib64/libtcmalloc.so.4"})
    if (Exists(path)) return path;
  return "";
}

}  // namespace

int RunRunCommand(int argc, char** argv) {
  bool tcmalloc = false;
  int i = 1;
  for (; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--") {
      i++;
      break;
    }
    if (arg == "--tcmalloc") {
      tcmalloc = true;
    } else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: sleuth run [--tcmalloc] -- CMD [ARGS...]\n"
          "Runs CMD with libsleuth.so preloaded; SLEUTH_* variables configure the agent.\n"
          "--tcmalloc also preloads gperftools' tcmalloc and sets TCMALLOC_SAMPLE_PARAMETER\n"
          "(from SLEUTH_HEAP_SAMPLE_BYTES, default 524288) so heap dumps work.\n");
      return kExitOk;
    } else {
      std::fprintf(stderr, "sleuth run: unknown option \"%s\" (usage: sleuth run [--tcmalloc] -- CMD...)\n",
                   arg.c_str());
      return kExitUsage;
    }
  }
  if (i >= argc) {
    std::fprintf(stderr, "sleuth run: no command given (usage: sleuth run [--tcmalloc] -- CMD...)\n");
    return kExitUsage;
  }
  std::string lib = FindLibrary();
  if (lib.empty()) {
    std::fprintf(stderr, "sleuth run: cannot find libsleuth.so next to %s; set SLEUTH_LIBRARY\n",
                 ExeDir().c_str());
    return kExitFailure;
  }
  std::string preload = lib;
  if (tcmalloc) {
    std::string tc = FindTcmalloc();
    if (tc.empty()) {
      std::fprintf(stderr, "sleuth run: --tcmalloc: libtcmalloc.so.4 not found (apt-get install "
                           "libgoogle-perftools4)\n");
      return kExitFailure;
    }
    // tcmalloc first, so it is the allocator from the first malloc on.
    preload = tc + " " + lib;
    if (!getenv("TCMALLOC_SAMPLE_PARAMETER")) {
      const char* bytes = getenv("SLEUTH_HEAP_SAMPLE_BYTES");
      setenv("TCMALLOC_SAMPLE_PARAMETER", bytes && *bytes && strspn(bytes, "0123456789") == strlen(bytes)
                                              ? bytes
                                              : "524288",
             1);
    }
  }
  if (const char* existing = getenv("LD_PRELOAD"); existing && *existing)
    preload += std::string(" ") + existing;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  execvp(argv[i], argv + i);
  std::fprintf(stderr, "sleuth run: cannot run %s: %s\n", argv[i], strerror(errno));
  return errno == ENOENT ? kExitUsage : kExitFailure;
}

}  // namespace sleuth::cli
