#include "sleuth/capture/cpu_profiler.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "libprofiler_api.h"
#include "process_lock.h"
#include "sleuth/common/files.h"
#include "sleuth/profiles/gperftools_cpu.h"

namespace sleuth::capture {
namespace {

// Serializes Collect() across all CpuProfiler instances: libprofiler is one
// per process. Not a mutex, so a child forked mid-profile is not locked out.
constinit std::atomic<pid_t> g_profile_owner_pid{0};

std::string DescribeFunction(void* address) {
  Dl_info info{};
  if (dladdr(address, &info) == 0) return "an unknown handler";
  std::string text = info.dli_sname != nullptr ? info.dli_sname : "an unnamed handler";
  if (info.dli_fname != nullptr) text += std::string(" in ") + info.dli_fname;
  return text;
}

bool IsLibprofilerHandler(const internal::LibprofilerApi& profiler, void* handler) {
  if (profiler.signal_handler != nullptr) return handler == profiler.signal_handler;
  // Another gperftools build: accept a handler inside the library that
  // defines ProfilerStartWithOptions.
  Dl_info handler_info{};
  return profiler.library_base != nullptr && dladdr(handler, &handler_info) != 0 &&
         handler_info.dli_fbase == profiler.library_base;
}

bool IsArmed(const itimerval& timer) {
  return timer.it_value.tv_sec != 0 || timer.it_value.tv_usec != 0 ||
         timer.it_interval.tv_sec != 0 || timer.it_interval.tv_usec != 0;
}

int64_t IntervalMicros(const itimerval& timer) {
  return int64_t{timer.it_interval.tv_sec} * 1'000'000 + timer.it_interval.tv_usec;
}

// Read-only checks of everything that says the host owns CPU profiling.
// Never loads libprofiler: before it is in the process, SIGPROF must still
// be SIG_DFL (libprofiler takes it when loaded); after, it must be
// libprofiler's handler.
Status CheckHostLeavesProfilingToUs() {
  if (const char* own = std::getenv("CPUPROFILE"); own != nullptr && *own != '\0') {
    return Unavailable(std::string("the host profiles itself with gperftools (CPUPROFILE=") + own +
                       "); CPU profiles are off so its profile stays intact");
  }
  for (const char* name :
       {"CPUPROFILE_REALTIME", "CPUPROFILE_PER_THREAD_TIMERS", "CPUPROFILE_TIMER_SIGNAL"}) {
    if (std::getenv(name) != nullptr) {
      return Unavailable(std::string(name) +
                         " is set: libprofiler then samples with a timer sleuth does not drive; "
                         "unset it to get CPU profiles");
    }
  }
  const internal::LibprofilerApi* profiler = internal::FindLoadedLibprofiler();
  if (profiler == nullptr) {
    SLEUTH_RETURN_IF_ERROR(internal::LibprofilerLoadable());
  } else if (profiler->is_enabled_for_all_threads() != 0) {
    return Status(StatusCode::kBusy,
                  "a gperftools CPU profile is already running in this process (started by the "
                  "host or another profile); try again when it ends");
  }
  struct sigaction current {};
  if (sigaction(SIGPROF, nullptr, &current) != 0) {
    return ErrnoStatus("cannot read the SIGPROF disposition", errno);
  }
  void* handler = (current.sa_flags & SA_SIGINFO) != 0
                      ? reinterpret_cast<void*>(current.sa_sigaction)
                      : reinterpret_cast<void*>(current.sa_handler);
  if (profiler == nullptr) {
    // Not loaded yet. libprofiler would take over SIG_IGN as well, but a
    // host that ignores SIGPROF chose to; only SIG_DFL is free to take.
    if (current.sa_handler == SIG_IGN) {
      return Unavailable(
          "the host ignores SIGPROF (SIG_IGN) and loading libprofiler would replace that; CPU "
          "profiles are off");
    }
    if (current.sa_handler != SIG_DFL) {
      return Unavailable("the host installed its own SIGPROF handler (" +
                         DescribeFunction(handler) + "); CPU profiles are off");
    }
  } else if (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN) {
    // libprofiler installs its handler when it loads, unless SIGPROF was
    // taken then; someone reset it since. Arming the timer now would kill
    // the host (SIG_DFL) or sample nothing (SIG_IGN).
    return Unavailable(
        std::string("SIGPROF is set to ") +
        (current.sa_handler == SIG_DFL ? "SIG_DFL" : "SIG_IGN") +
        ", not libprofiler's handler (the host had SIGPROF when libprofiler loaded, or reset it "
        "since); CPU profiles are off");
  } else if (!IsLibprofilerHandler(*profiler, handler)) {
    return Unavailable("the host installed its own SIGPROF handler (" + DescribeFunction(handler) +
                       "); CPU profiles are off");
  }
  itimerval timer{};
  if (getitimer(ITIMER_PROF, &timer) != 0) {
    return ErrnoStatus("cannot read ITIMER_PROF", errno);
  }
  if (IsArmed(timer)) {
    return Unavailable("the host armed its own ITIMER_PROF (every " +
                       std::to_string(IntervalMicros(timer)) + "us); CPU profiles are off");
  }
  return Status::Ok();
}

std::string ScratchDir(const CaptureRequest& request) {
  if (!request.scratch_dir.empty()) return request.scratch_dir;
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') return tmp;
  return "/tmp";
}

// Creates an empty 0600 file for libprofiler to write (it would create one
// with the umask's mode), and removes it when destroyed.
class ScratchFile {
 public:
  static Result<ScratchFile> Create(const std::string& dir) {
    static std::atomic<uint32_t> counter{0};
    std::string path = dir + "/sleuth-cpu." + std::to_string(getpid()) + "." +
                       std::to_string(counter.fetch_add(1)) + ".prof";
    SLEUTH_ASSIGN_OR_RETURN(ScopedFd fd,
                            OpenFile(path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0600));
    (void)fd;
    return ScratchFile(std::move(path));
  }
  ScratchFile(ScratchFile&& other) noexcept : path_(std::exchange(other.path_, "")) {}
  ScratchFile& operator=(ScratchFile&&) = delete;
  ~ScratchFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  explicit ScratchFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

int64_t WallNowNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::string ThreadName(pid_t tid) {
  Result<std::string> comm = ReadFile("/proc/self/task/" + std::to_string(tid) + "/comm", 256);
  if (!comm.ok()) return "exited";
  std::string name = std::move(comm).value();
  while (!name.empty() && name.back() == '\n') name.pop_back();
  return name;
}

}  // namespace

int CpuProfiler::CountTick(void* self_arg) {  // async-signal-safe
  auto* self = static_cast<CpuProfiler*>(self_arg);
  const auto tid = static_cast<int32_t>(syscall(SYS_gettid));
  const size_t start = static_cast<uint32_t>(tid) * 2654435761u % kMaxThreadCounters;
  // A few probes only: a handler must not walk a full table.
  for (size_t probe = 0; probe < 16; ++probe) {
    ThreadTicks& slot = self->thread_ticks_[(start + probe) % kMaxThreadCounters];
    int32_t owner = slot.tid.load(std::memory_order_relaxed);
    if (owner == 0 && slot.tid.compare_exchange_strong(owner, tid, std::memory_order_relaxed)) {
      owner = tid;
    }
    if (owner == tid) {
      slot.ticks.fetch_add(1, std::memory_order_relaxed);
      return 1;
    }
  }
  self->other_ticks_.fetch_add(1, std::memory_order_relaxed);
  return 1;  // keep every sample: the filter only counts
}

Status CpuProfiler::Available() const {
  return CheckHostLeavesProfilingToUs();
}

Result<Capture> CpuProfiler::Collect(const CaptureRequest& request) {
  if (request.hz < 1 || request.hz > kMaxHz) {
    return InvalidArgument("cpu profile rate " + std::to_string(request.hz) +
                           " Hz is out of range: use 1 to " + std::to_string(kMaxHz) + " Hz");
  }
  if (request.duration <= std::chrono::nanoseconds::zero()) {
    return InvalidArgument("cpu profile duration must be positive");
  }
  internal::ScopedProcessTryLock lock(g_profile_owner_pid);
  if (!lock.locked()) {
    return Status(StatusCode::kBusy, "a CPU profile is already being captured in this process");
  }
  try {
    SLEUTH_RETURN_IF_ERROR(CheckHostLeavesProfilingToUs());
    SLEUTH_ASSIGN_OR_RETURN(ScratchFile file, ScratchFile::Create(ScratchDir(request)));
    // Only a profile about to run loads libprofiler (and its handler).
    SLEUTH_ASSIGN_OR_RETURN(const internal::LibprofilerApi* libprofiler,
                            internal::LoadLibprofiler());
    // Again, now against the loaded library: a host that took SIGPROF
    // between the first check and the load kept it, and must keep it.
    SLEUTH_RETURN_IF_ERROR(CheckHostLeavesProfilingToUs());

    for (ThreadTicks& slot : thread_ticks_) {
      slot.tid.store(0, std::memory_order_relaxed);
      slot.ticks.store(0, std::memory_order_relaxed);
    }
    other_ticks_.store(0, std::memory_order_relaxed);

    ProfilerOptions options{};
    options.filter_in_thread = &CpuProfiler::CountTick;
    options.filter_in_thread_arg = this;
    const int64_t start_wall_nanos = WallNowNanos();
    const auto start = std::chrono::steady_clock::now();
    if (libprofiler->start_with_options(file.path().c_str(), &options) == 0) {
      return Unavailable("libprofiler could not start a profile writing " + file.path() +
                         " (is the directory writable?)");
    }
    // Stops the profile on every path out, exceptions included.
    struct StopOnExit {
      void (*stop)();
      bool running = true;
      void Stop() {
        if (running) stop();
        running = false;
      }
      ~StopOnExit() { Stop(); }
    } profiler{libprofiler->stop};

    // libprofiler armed ITIMER_PROF at the rate it read at load time; set
    // ours. Its handler samples on every SIGPROF whatever the rate.
    const int64_t wanted_us = std::max<int64_t>(1, 1'000'000 / request.hz);
    itimerval timer{};
    int64_t period_us = 0;
    std::vector<std::string> notes;
    if (getitimer(ITIMER_PROF, &timer) == 0 && IsArmed(timer)) {
      period_us = IntervalMicros(timer);
      if (period_us != wanted_us) {
        timer.it_interval.tv_sec = static_cast<time_t>(wanted_us / 1'000'000);
        timer.it_interval.tv_usec = static_cast<suseconds_t>(wanted_us % 1'000'000);
        timer.it_value = timer.it_interval;
        if (setitimer(ITIMER_PROF, &timer, nullptr) == 0) {
          period_us = wanted_us;
        } else {
          notes.push_back("could not set the sampling rate to " + std::to_string(request.hz) +
                          " Hz; sampled at libprofiler's " + std::to_string(1'000'000 / period_us) +
                          " Hz");
        }
      }
    }

    const auto deadline = start + request.duration;
    bool cancelled = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (request.cancel != nullptr && request.cancel->load(std::memory_order_relaxed)) {
        cancelled = true;
        break;
      }
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(
          std::chrono::milliseconds(10), deadline - std::chrono::steady_clock::now()));
    }
    profiler.Stop();
    const auto profiled = std::chrono::steady_clock::now() - start;

    SLEUTH_ASSIGN_OR_RETURN(std::string bytes, ReadFile(file.path()));
    SLEUTH_ASSIGN_OR_RETURN(profiles::GperftoolsCpuProfile parsed,
                            profiles::ParseGperftoolsCpuProfile(bytes));
    Capture capture;
    capture.profile = std::move(parsed.profile);
    capture.notes = std::move(notes);
    profiles::RawProfile& profile = capture.profile;
    if (period_us == 0) period_us = parsed.period_us;
    if (period_us != parsed.period_us) {
      // The header holds libprofiler's load-time rate; the samples were taken
      // at ours.
      const int64_t period_ns = period_us * 1000;
      profile.period = period_ns;
      for (profiles::RawSample& sample : profile.samples) {
        for (size_t i = 0; i < profile.sample_types.size() && i < sample.values.size(); ++i) {
          if (profile.sample_types[i].type == "cpu") {
            sample.values[i] = sample.values[0] * period_ns;  // values[0]: samples/count
          }
        }
      }
    }
    profile.time_nanos = start_wall_nanos;
    profile.duration_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(profiled).count();
    profile.comments.push_back("sampled by gperftools libprofiler at " +
                               std::to_string(1'000'000 / period_us) + " Hz");
    if (cancelled) {
      capture.notes.push_back("cancelled after " +
                              std::to_string(profile.duration_nanos / 1'000'000) + "ms");
    }

    // Per-thread tick counts, busiest first.
    std::vector<std::pair<uint32_t, int32_t>> busiest;
    for (const ThreadTicks& slot : thread_ticks_) {
      const int32_t tid = slot.tid.load(std::memory_order_relaxed);
      const uint32_t ticks = slot.ticks.load(std::memory_order_relaxed);
      if (tid != 0 && ticks != 0) busiest.emplace_back(ticks, tid);
    }
    std::sort(busiest.rbegin(), busiest.rend());
    constexpr size_t kThreadsShown = 10;
    std::string summary;
    for (size_t i = 0; i < busiest.size() && i < kThreadsShown; ++i) {
      const auto [ticks, tid] = busiest[i];
      const std::string line = "thread " + std::to_string(tid) + " (" + ThreadName(tid) +
                               "): " + std::to_string(ticks) + " samples";
      profile.comments.push_back(line);
      summary += (summary.empty() ? "" : ", ") + line;
    }
    if (const uint32_t other = other_ticks_.load(); other != 0) {
      profile.comments.push_back("other threads: " + std::to_string(other) + " samples");
    }
    if (!summary.empty()) {
      capture.notes.push_back("libprofiler cannot attribute samples to threads; busiest threads: " +
                              summary);
    }
    return capture;
  } catch (const std::exception& e) {
    return Internal(std::string("cpu profile failed: ") + e.what());
  }
}

}  // namespace sleuth::capture
