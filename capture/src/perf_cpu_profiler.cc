#include "sleuth/capture/perf_cpu_profiler.h"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "process_lock.h"
#include "sleuth/common/files.h"
#include "sleuth/stacks/dwarf_unwinder.h"
#include "sleuth/stacks/perf_sampler.h"

namespace sleuth::capture {
namespace {

// One perf CPU profile per process at a time: two would double the locked
// ring-buffer memory and sample each other's readers.
constinit std::atomic<pid_t> g_perf_profile_owner_pid{0};

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

// Stacks counted per (thread, pcs), and what the walks said.
struct Tally {
  std::map<std::pair<pid_t, std::vector<uint64_t>>, int64_t> stacks;
  std::unordered_map<pid_t, std::string> thread_names;  // read at a thread's first sample
  std::map<std::string, int64_t> stopped_early;         // reason -> stacks
  std::vector<uint64_t> pcs = std::vector<uint64_t>(PerfCpuProfiler::kMaxFrames);
};

Status CheckAvailable() {
  SLEUTH_RETURN_IF_ERROR(stacks::CheckPerfEventsAvailable());
  return stacks::DwarfUnwinderAvailable();
}

}  // namespace

Status PerfCpuProfiler::Available() const {
  return CheckAvailable();
}

Result<Capture> PerfCpuProfiler::Collect(const CaptureRequest& request) {
  if (request.hz < 1 || request.hz > kMaxHz) {
    return InvalidArgument("cpu profile rate " + std::to_string(request.hz) +
                           " Hz is out of range: use 1 to " + std::to_string(kMaxHz) + " Hz");
  }
  if (request.duration <= std::chrono::nanoseconds::zero()) {
    return InvalidArgument("cpu profile duration must be positive");
  }
  internal::ScopedProcessTryLock lock(g_perf_profile_owner_pid);
  if (!lock.locked()) {
    return Status(StatusCode::kBusy, "a CPU profile is already being captured in this process");
  }
  try {
    SLEUTH_RETURN_IF_ERROR(CheckAvailable());
    const pid_t pid = getpid();
    SLEUTH_ASSIGN_OR_RETURN(std::unique_ptr<stacks::DwarfUnwinder> unwinder,
                            stacks::DwarfUnwinder::ForProcess(pid));
    stacks::PerfSamplerOptions options;
    options.hz = request.hz;
    options.exclude_tids = request.exclude_tids;
    SLEUTH_ASSIGN_OR_RETURN(std::unique_ptr<stacks::PerfSampler> sampler,
                            stacks::PerfSampler::ForProcess(pid, options));

    Tally tally;
    const int64_t start_wall_nanos = WallNowNanos();
    // Unwinds right here, on this thread, while the sample's stack copy is
    // still in the ring: nothing is copied twice.
    SLEUTH_ASSIGN_OR_RETURN(
        stacks::PerfSamplerResult sampled,
        sampler->Run(request.duration, request.cancel, [&](const stacks::PerfSample& sample) {
          const stacks::UnwindResult walk = unwinder->Unwind(
              sample.tid, sample.regs, &sample.stack, tally.pcs.data(), tally.pcs.size());
          if (walk.frames == 0) return;
          if (*walk.stopped_because != '\0') ++tally.stopped_early[walk.stopped_because];
          if (tally.thread_names.count(sample.tid) == 0) {
            tally.thread_names[sample.tid] = ThreadName(sample.tid);
          }
          ++tally.stacks[{sample.tid, std::vector<uint64_t>(tally.pcs.begin(),
                                                            tally.pcs.begin() + walk.frames)}];
        }));
    sampler.reset();  // every event fd and ring is closed from here on

    const int64_t period_nanos = 1'000'000'000 / request.hz;
    Capture capture;
    profiles::RawProfile& profile = capture.profile;
    profile.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
    profile.period_type = {"cpu", "nanoseconds"};
    profile.period = period_nanos;
    profile.time_nanos = start_wall_nanos;
    profile.duration_nanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(sampled.profiled).count();
    profile.leaf_is_exact_pc = true;
    profile.default_sample_type = "cpu";
    const std::string how = "profiled with perf_event cpu-clock at " +
                            std::to_string(request.hz) + " Hz, user mode, DWARF unwinding";
    profile.comments.push_back(how);
    capture.notes.push_back(how);
    int64_t total = 0;
    for (auto& [key, count] : tally.stacks) {
      profiles::RawSample sample;
      sample.pcs = key.second;
      sample.values = {count, count * period_nanos};
      profiles::Label id;
      id.key = "thread_id";
      id.num = key.first;
      profiles::Label name;
      name.key = "thread_name";
      name.str = tally.thread_names[key.first];
      sample.labels = {std::move(id), std::move(name)};
      profile.samples.push_back(std::move(sample));
      total += count;
    }
    if (sampled.cancelled) {
      capture.notes.push_back("cancelled after " +
                              std::to_string(profile.duration_nanos / 1'000'000) + "ms");
    }
    if (sampled.threads_skipped != 0) {
      std::string reasons;
      for (const std::string& reason : sampled.skipped_because) {
        reasons += (reasons.empty() ? "" : "; ") + reason;
      }
      capture.notes.push_back(std::to_string(sampled.threads_skipped) + " of " +
                              std::to_string(sampled.threads_skipped + sampled.threads_sampled) +
                              " threads were not sampled: " + reasons);
    }
    if (sampled.threads_with_smaller_buffer != 0) {
      capture.notes.push_back(std::to_string(sampled.threads_with_smaller_buffer) +
                              " threads got a smaller perf ring buffer (per-user perf memory "
                              "limit); some of their samples may be lost");
    }
    if (sampled.lost_samples != 0) {
      capture.notes.push_back(std::to_string(sampled.lost_samples) +
                              " samples were lost (a perf ring buffer was full)");
    }
    if (sampled.unusable_samples != 0) {
      capture.notes.push_back(std::to_string(sampled.unusable_samples) +
                              " samples had no user registers and were dropped");
    }
    for (const auto& [reason, count] : tally.stopped_early) {
      capture.notes.push_back(std::to_string(count) + " of " + std::to_string(total) +
                              " stacks end early: " + reason);
    }
    return capture;
  } catch (const std::exception& e) {
    return Internal(std::string("cpu profile failed: ") + e.what());
  }
}

}  // namespace sleuth::capture
