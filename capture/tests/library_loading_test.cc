// libunwind and libdw are not linked but opened privately (dlopen
// RTLD_LOCAL): libunwind when the signal-driven ThreadDumper is
// constructed, libdw when a CPU profile first unwinds a stack. Every case runs in a fresh
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

#include "libunwind_api.h"
#include "sleuth/capture/perf_cpu_profiler.h"
#include "sleuth/capture/thread_dumper.h"
#include "sleuth/common/files.h"

namespace sleuth::capture {
namespace {

constexpr const char* kLibdw = "libdw.so.1";
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

Result<Capture> ShortCpuProfile(PerfCpuProfiler& profiler) {
  CaptureRequest request;
  request.duration = std::chrono::milliseconds(100);
  request.hz = 100;
  return profiler.Collect(request);
}

void HostSigprofHandler(int) {}

// The start-up check runs in every host: it must not map libdw and the
// compression libraries it brings.
TEST(LibraryLoadingDeathTest, CpuEngineAvailableDoesNotLoadLibdw) {
  ExpectInFreshProcess([]() -> std::string {
    if (Loaded(kLibdw)) return "precondition: libdw is already loaded";
    PerfCpuProfiler profiler;
    const Status available = profiler.Available();
    if (!available.ok()) return "Available() refused" + Describe(available);
    if (Loaded(kLibdw) || MapsMention("libdw")) return "Available() loaded libdw";
    return "";
  });
}

// A CPU profile comes from perf events: libdw is loaded privately by the
// first one, and SIGPROF and ITIMER_PROF stay the host's, whatever the host
// did with them (its own handler and timer here).
TEST(LibraryLoadingDeathTest, CpuProfileLeavesTheHostsSigprofAndTimerAlone) {
  ExpectInFreshProcess([]() -> std::string {
    struct sigaction host {};
    host.sa_handler = &HostSigprofHandler;
    sigaction(SIGPROF, &host, nullptr);
    itimerval timer{{0, 50000}, {0, 50000}};
    setitimer(ITIMER_PROF, &timer, nullptr);
    PerfCpuProfiler profiler;
    Result<Capture> capture = ShortCpuProfile(profiler);
    if (!capture.ok()) return "the profile failed" + Describe(capture.status());
    if (!Loaded(kLibdw)) return "libdw is not loaded after a profile";
    if (dlsym(RTLD_DEFAULT, "dwfl_begin") != nullptr) return "libdw is in global scope";
    if (SigprofHandler() != reinterpret_cast<void*>(&HostSigprofHandler))
      return "the host lost its SIGPROF handler";
    if (!TimerArmed()) return "the host's ITIMER_PROF was disarmed";
    itimerval off{};
    setitimer(ITIMER_PROF, &off, nullptr);
    return "";
  });
}

TEST(LibraryLoadingDeathTest, CpuProfileWithoutAHostTimerArmsNone) {
  ExpectInFreshProcess([]() -> std::string {
    PerfCpuProfiler profiler;
    Result<Capture> capture = ShortCpuProfile(profiler);
    if (!capture.ok()) return "the profile failed" + Describe(capture.status());
    if (SigprofHandler() != reinterpret_cast<void*>(SIG_DFL)) return "SIGPROF is no longer SIG_DFL";
    if (TimerArmed()) return "ITIMER_PROF was armed";
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
