#include "sleuth/collectors/sampler.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "parse_util.h"
#include "sleuth/collectors/proc_parsers.h"
#include "sleuth/common/log.h"

namespace sleuth::collectors {

using internal::JoinRoot;
using internal::ReadFileInto;

namespace {

long SysconfOr(int name, long fallback) {
  long value = ::sysconf(name);
  return value > 0 ? value : fallback;
}

bool IsGoneErrno(int err) {
  return err == ENOENT || err == ESRCH;
}

uint64_t TicksToNanos(uint64_t ticks, uint64_t ticks_per_second) {
  constexpr uint64_t kNanosPerSecond = 1'000'000'000;
  return ticks / ticks_per_second * kNanosPerSecond +
         ticks % ticks_per_second * kNanosPerSecond / ticks_per_second;
}

}  // namespace

Sampler::Sampler(pid_t pid, const Clock& clock, SamplerOptions options)
    : pid_(pid), clock_(clock), options_(std::move(options)) {
  ticks_per_second_ = options_.clock_ticks_per_second > 0 ? options_.clock_ticks_per_second
                                                          : SysconfOr(_SC_CLK_TCK, 100);
  page_size_bytes_ =
      options_.page_size_bytes > 0 ? options_.page_size_bytes : SysconfOr(_SC_PAGESIZE, 4096);
  const std::string proc = "/proc/" + std::to_string(pid);
  stat_path_ = JoinRoot(options_.root, proc + "/stat");
  rss_path_ =
      JoinRoot(options_.root, proc + (options_.use_smaps_rollup ? "/smaps_rollup" : "/statm"));
}

Status Sampler::GoneStatus(std::string_view why) const {
  return Gone("process " + std::to_string(pid_) + " is gone (" + std::string(why) + ")");
}

Result<Reading> Sampler::Sample() {
  // Once gone, always gone: the pid may already name another process.
  if (gone_) return GoneStatus(gone_reason_);
  auto mark_gone = [this](std::string why) {
    gone_ = true;
    gone_reason_ = std::move(why);
    return GoneStatus(gone_reason_);
  };
  const std::chrono::nanoseconds now = clock_.Monotonic();

  int err = ReadFileInto(stat_path_.c_str(), &buffer_);
  if (IsGoneErrno(err) || (err == 0 && buffer_.empty()))
    return mark_gone(starttime_ticks_ ? "it exited" : "no such process");
  if (err != 0) return ErrnoStatus("cannot read " + stat_path_, err);
  SLEUTH_ASSIGN_OR_RETURN(ProcStat stat, ParseProcStat(buffer_, stat_path_));
  if (stat.state == 'Z' || stat.state == 'X')
    return mark_gone("it exited and is a zombie waiting for its parent");
  if (!starttime_ticks_) {
    starttime_ticks_ = stat.starttime_ticks;
  } else if (*starttime_ticks_ != stat.starttime_ticks) {
    return mark_gone("its pid now belongs to another process: start time changed from " +
                     std::to_string(*starttime_ticks_) + " to " +
                     std::to_string(stat.starttime_ticks) + " ticks after boot");
  }

  Reading reading;
  reading.pid = pid_;
  reading.monotonic = now;
  reading.threads = static_cast<int>(std::max<int64_t>(stat.num_threads, 0));

  if (Status s = ReadRss(&reading.rss_bytes); !s.ok()) {
    if (s.code() == StatusCode::kGone) return mark_gone("it exited");
    return s;
  }
  if (Status s = RefreshLimits(now); !s.ok()) {
    if (s.code() == StatusCode::kGone) return mark_gone("it exited");
    return s;
  }
  reading.limits = limits_;
  if (limits_.memory_limit_bytes > 0)
    reading.memory_percent = static_cast<double>(reading.rss_bytes) /
                             static_cast<double>(limits_.memory_limit_bytes) * 100.0;

  const uint64_t cpu_time_ns =
      TicksToNanos(stat.utime_ticks + stat.stime_ticks, static_cast<uint64_t>(ticks_per_second_));
  reading.cpu_time_ns_total = cpu_time_ns;
  if (!previous_monotonic_) {
    previous_monotonic_ = now;
    previous_cpu_time_ns_ = cpu_time_ns;
  } else if (now > *previous_monotonic_) {
    // With no time elapsed there is no rate; the old baseline stays so the
    // next tick measures over the whole span.
    const double elapsed_ns = static_cast<double>((now - *previous_monotonic_).count());
    const uint64_t used_ns =
        cpu_time_ns >= previous_cpu_time_ns_ ? cpu_time_ns - previous_cpu_time_ns_ : 0;
    const double cores = limits_.cpu_limit_cores > 0 ? limits_.cpu_limit_cores : 1.0;
    reading.cpu_percent = static_cast<double>(used_ns) / elapsed_ns / cores * 100.0;
    previous_monotonic_ = now;
    previous_cpu_time_ns_ = cpu_time_ns;
  }
  return reading;
}

Status Sampler::ReadRss(uint64_t* rss_bytes) {
  int err = ReadFileInto(rss_path_.c_str(), &buffer_);
  if (IsGoneErrno(err)) return Gone(rss_path_ + " vanished");
  if (err == EACCES || err == EPERM) {
    return ErrnoStatus("cannot read " + rss_path_ +
                           (options_.use_smaps_rollup
                                ? " (smaps_rollup needs ptrace access to the process: run as "
                                  "its user or with CAP_SYS_PTRACE, or turn use_smaps_rollup off)"
                                : ""),
                       err);
  }
  if (err != 0) return ErrnoStatus("cannot read " + rss_path_, err);
  if (options_.use_smaps_rollup) {
    SLEUTH_ASSIGN_OR_RETURN(SmapsRollup rollup, ParseSmapsRollup(buffer_, rss_path_));
    *rss_bytes = rollup.rss_bytes;
  } else {
    SLEUTH_ASSIGN_OR_RETURN(ProcStatm statm, ParseProcStatm(buffer_, rss_path_));
    *rss_bytes = statm.resident_pages * static_cast<uint64_t>(page_size_bytes_);
  }
  return Status::Ok();
}

Status Sampler::RefreshLimits(std::chrono::nanoseconds now) {
  if (limits_read_at_ && now - *limits_read_at_ < options_.limits_refresh_interval) {
    return Status::Ok();
  }
  Result<LimitInputs> inputs = ReadLimitInputs(options_.root, pid_);
  if (!inputs.ok()) {
    if (inputs.status().code() == StatusCode::kNotFound) return Gone(inputs.status().message());
    // Keep the last good limits rather than fail every sample.
    if (limits_read_at_) {
      log::Warn("pid " + std::to_string(pid_) +
                ": cannot refresh limits, keeping the last ones: " + inputs.status().message());
      limits_read_at_ = now;
      return Status::Ok();
    }
    return inputs.status();
  }
  // Each warning is logged when it first appears, not on every refresh.
  for (const std::string& warning : inputs->warnings) {
    if (std::find(logged_warnings_.begin(), logged_warnings_.end(), warning) ==
        logged_warnings_.end())
      log::Warn("pid " + std::to_string(pid_) + ": " + warning);
  }
  logged_warnings_ = std::move(inputs->warnings);
  limits_ = ResolveLimits(*inputs);
  limits_read_at_ = now;
  return Status::Ok();
}

}  // namespace sleuth::collectors
