// libunwind and libprofiler are not linked but opened privately (dlopen
// RTLD_LOCAL): libunwind when a ThreadDumper is constructed, libprofiler
// only when a CPU profile is about to run. Every case runs in a fresh
// process (threadsafe death tests re-execute this binary, which links
// neither library), so "not loaded yet" means what it says.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "libprofiler_api.h"
#include "libunwind_api.h"
#include "sleuth/capture/cpu_profiler.h"
#include "sleuth/capture/thread_dumper.h"
#include "sleuth/common/files.h"

namespace sleuth::capture {
namespace {

constexpr const char* kLibprofiler = "libprofiler.so.0";
constexpr const char* kLibunwind = "libunwind.so.8";

// Runs `body` in a fresh process; it returns what went wrong, or "".
void ExpectInFreshProcess(std::string (*body)()) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        // gtest starts the child with SIGPROF ignored (it sets SIG_IGN
        // around the spawn, and that survives execve); a host starts with
        // SIG_DFL.
        signal(SIGPROF, SIG_DFL);
        const std::string failure = body();
        if (!failure.empty()) std::fprintf(stderr, "%s\n", failure.c_str());
        _exit(failure.empty() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

bool Loaded(const char* soname) {
  void* library = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
  if (library != nullptr) dlclose(library);
  return library != nullptr;
}

bool MapsMention(const std::string& name) {
  Result<std::string> maps = ReadFile("/proc/self/maps");
  return maps.ok() && maps->find(name) != std::string::npos;
}

void* SigprofHandler() {
  struct sigaction current {};
  sigaction(SIGPROF, nullptr, &current);
  return (current.sa_flags & SA_SIGINFO) != 0 ? reinterpret_cast<void*>(current.sa_sigaction)
                                              : reinterpret_cast<void*>(current.sa_handler);
}

bool TimerArmed() {
  itimerval timer{};
  getitimer(ITIMER_PROF, &timer);
  return timer.it_value.tv_sec != 0 || timer.it_value.tv_usec != 0 ||
         timer.it_interval.tv_sec != 0 || timer.it_interval.tv_usec != 0;
}

std::string Describe(const Status& status) {
  return std::string(" (status: ") + status.ToString() + ")";
}

Result<Capture> ShortCpuProfile(CpuProfiler& profiler) {
  CaptureRequest request;
  request.duration = std::chrono::milliseconds(20);
  request.hz = 100;
  return profiler.Collect(request);
}

void HostSigprofHandler(int) {}

TEST(LibraryLoadingDeathTest, CpuEngineAvailableDoesNotLoadLibprofiler) {
  ExpectInFreshProcess([]() -> std::string {
    if (Loaded(kLibprofiler)) return "precondition: libprofiler is already loaded";
    CpuProfiler profiler;
    const Status available = profiler.Available();
    if (!available.ok()) return "Available() refused" + Describe(available);
    if (Loaded(kLibprofiler) || MapsMention("libprofiler")) return "Available() loaded libprofiler";
    if (SigprofHandler() != reinterpret_cast<void*>(SIG_DFL)) return "SIGPROF is no longer SIG_DFL";
    return "";
  });
}

TEST(LibraryLoadingDeathTest, FirstCpuProfileLoadsLibprofilerPrivately) {
  ExpectInFreshProcess([]() -> std::string {
    if (Loaded(kLibprofiler)) return "precondition: libprofiler is already loaded";
    CpuProfiler profiler;
    Result<Capture> capture = ShortCpuProfile(profiler);
    if (!capture.ok()) return "the profile failed" + Describe(capture.status());
    if (!Loaded(kLibprofiler) || !MapsMention("libprofiler")) return "libprofiler is not loaded";
    // RTLD_LOCAL: nothing of it is in the global scope.
    if (dlsym(RTLD_DEFAULT, "ProfilerStart") != nullptr) return "libprofiler is in global scope";
    // Its handler stays, recognised as libprofiler's by the next check.
    const internal::LibprofilerApi* api = internal::FindLoadedLibprofiler();
    if (api == nullptr || SigprofHandler() != api->signal_handler) {
      return "SIGPROF is not libprofiler's handler after the profile";
    }
    if (const Status again = profiler.Available(); !again.ok()) {
      return "libprofiler's own handler is not recognised" + Describe(again);
    }
    if (TimerArmed()) return "ITIMER_PROF is left armed";
    return "";
  });
}

TEST(LibraryLoadingDeathTest, HostSigprofHandlerIsSeenWithoutLoadingLibprofiler) {
  ExpectInFreshProcess([]() -> std::string {
    struct sigaction host {};
    host.sa_handler = &HostSigprofHandler;
    sigaction(SIGPROF, &host, nullptr);
    CpuProfiler profiler;
    const Status available = profiler.Available();
    if (available.code() != StatusCode::kUnavailable ||
        available.message().find("own SIGPROF handler") == std::string::npos) {
      return "the host's handler was not detected" + Describe(available);
    }
    if (ShortCpuProfile(profiler).status().code() != StatusCode::kUnavailable) {
      return "a profile ran over the host's handler";
    }
    if (Loaded(kLibprofiler)) return "libprofiler was loaded anyway";
    if (SigprofHandler() != reinterpret_cast<void*>(&HostSigprofHandler)) {
      return "the host lost its SIGPROF handler";
    }
    return "";
  });
}

TEST(LibraryLoadingDeathTest, HostIgnoringSigprofKeepsIgnoringIt) {
  // libprofiler would take SIGPROF over SIG_IGN when loaded.
  ExpectInFreshProcess([]() -> std::string {
    signal(SIGPROF, SIG_IGN);
    CpuProfiler profiler;
    const Status available = profiler.Available();
    if (available.code() != StatusCode::kUnavailable ||
        available.message().find("SIG_IGN") == std::string::npos) {
      return "SIG_IGN was not respected" + Describe(available);
    }
    if (ShortCpuProfile(profiler).ok()) return "a profile ran although SIGPROF is ignored";
    if (Loaded(kLibprofiler)) return "libprofiler was loaded anyway";
    if (SigprofHandler() != reinterpret_cast<void*>(SIG_IGN)) return "SIGPROF is no longer SIG_IGN";
    return "";
  });
}

TEST(LibraryLoadingDeathTest, MissingLibprofilerNamesThePackage) {
  ExpectInFreshProcess([]() -> std::string {
    internal::SetLibprofilerSonameForTesting("libsleuth-test-no-such-profiler.so.0");
    CpuProfiler profiler;
    const Status available = profiler.Available();
    if (available.code() != StatusCode::kUnavailable ||
        available.message().find("libgoogle-perftools4") == std::string::npos) {
      return "Available() does not name the package" + Describe(available);
    }
    const Status collected = ShortCpuProfile(profiler).status();
    if (collected.code() != StatusCode::kUnavailable) {
      return "Collect() did not refuse" + Describe(collected);
    }
    if (SigprofHandler() != reinterpret_cast<void*>(SIG_DFL) || TimerArmed()) {
      return "SIGPROF or ITIMER_PROF changed";
    }
    return "";
  });
}

TEST(LibraryLoadingDeathTest, UnloadableLibprofilerIsReportedByTheProfileAndThenByAvailable) {
  // A file that exists (so Available() cannot tell in advance) but is no
  // library: the first profile finds out, and Available() says so after.
  ExpectInFreshProcess([]() -> std::string {
    static const std::string path = SLEUTH_FIXTURE_DIR "/capture/not_a_library.so.0";
    internal::SetLibprofilerSonameForTesting(path.c_str());
    CpuProfiler profiler;
    if (const Status before = profiler.Available(); !before.ok()) {
      return "Available() refused before any load" + Describe(before);
    }
    const Status collected = ShortCpuProfile(profiler).status();
    if (collected.code() != StatusCode::kUnavailable ||
        collected.message().find("libgoogle-perftools4") == std::string::npos) {
      return "Collect() does not name the package" + Describe(collected);
    }
    const Status after = profiler.Available();
    if (after.code() != StatusCode::kUnavailable || after.message() != collected.message()) {
      return "Available() forgot the failed load" + Describe(after);
    }
    if (SigprofHandler() != reinterpret_cast<void*>(SIG_DFL) || TimerArmed()) {
      return "SIGPROF or ITIMER_PROF changed";
    }
    return "";
  });
}

TEST(LibraryLoadingDeathTest, ThreadDumperLoadsLibunwindPrivatelyWhenConstructed) {
  ExpectInFreshProcess([]() -> std::string {
    if (Loaded(kLibunwind)) return "precondition: libunwind is already loaded";
    ThreadDumper dumper;
    if (!Loaded(kLibunwind)) return "constructing the dumper did not load libunwind";
    // RTLD_LOCAL: neither its API nor its _Unwind_* reach the global scope,
    // where they would take over this program's C++ exceptions.
    if (dlsym(RTLD_DEFAULT, "_ULx86_64_step") != nullptr) return "libunwind is in global scope";
    Dl_info raise_info{};
    void* raise = dlsym(RTLD_DEFAULT, "_Unwind_RaiseException");
    if (raise != nullptr && dladdr(raise, &raise_info) != 0 && raise_info.dli_fname != nullptr &&
        std::string(raise_info.dli_fname).find("libunwind") != std::string::npos) {
      return std::string("_Unwind_RaiseException resolves to ") + raise_info.dli_fname;
    }
    Result<Capture> capture = dumper.Collect({});
    if (!capture.ok()) return "the dump failed" + Describe(capture.status());
    return "";
  });
}

TEST(LibraryLoadingDeathTest, MissingLibunwindNamesThePackageAndInstallsNothing) {
  ExpectInFreshProcess([]() -> std::string {
    internal::SetLibunwindSonameForTesting("libsleuth-test-no-such-unwind.so.8");
    ThreadDumper dumper;
    const Status available = dumper.Available();
    if (available.code() != StatusCode::kUnavailable ||
        available.message().find("libunwind8") == std::string::npos) {
      return "Available() does not name the package" + Describe(available);
    }
    const Status collected = dumper.Collect({}).status();
    if (collected.code() != StatusCode::kUnavailable) {
      return "Collect() did not refuse" + Describe(collected);
    }
    if (ThreadDumper::CurrentSignal() != 0) return "a signal handler was installed";
    return "";
  });
}

}  // namespace
}  // namespace sleuth::capture
