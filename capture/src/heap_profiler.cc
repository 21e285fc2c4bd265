#include "sleuth/capture/heap_profiler.h"

#include <time.h>

#include <atomic>
#include <string>

#include "sleuth/profiles/tcmalloc_heap.h"
#include "tcmalloc_access.h"

namespace sleuth::capture {
namespace {

constexpr int64_t kMaxSampleBytes = int64_t{1} << 58;  // gperftools' bound

Status TcmallocMissing(const internal::Tcmalloc& tcmalloc) {
  return Unavailable(tcmalloc.absent_reason + "; " + kTcmallocHowTo);
}

Status CannotSample(const internal::Tcmalloc& tcmalloc) {
  return Unavailable("the host runs tcmalloc_minimal (" + tcmalloc.library_path +
                     "), which cannot sample the heap; " + kTcmallocHowTo);
}

Status SamplingOff() {
  return Unavailable(
      "tcmalloc's heap sampling is off (TCMALLOC_SAMPLE_PARAMETER is unset or 0, "
      "gperftools 2.10's default); set heap.sample_bytes, or " +
      std::string(kTcmallocHowTo));
}

Status CheckSampling(const internal::Tcmalloc& tcmalloc) {
  if (tcmalloc.extension == nullptr) return TcmallocMissing(tcmalloc);
  if (!tcmalloc.can_sample) return CannotSample(tcmalloc);
  if (internal::SamplePeriodBytes(tcmalloc) == 0) return SamplingOff();
  return Status::Ok();
}

int64_t WallNowNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

Status HeapProfiler::Available() const {
  return CheckSampling(internal::FindTcmalloc());
}

Result<Capture> HeapProfiler::Collect(const CaptureRequest&) {
  try {
    const internal::Tcmalloc tcmalloc = internal::FindTcmalloc();
    SLEUTH_RETURN_IF_ERROR(CheckSampling(tcmalloc));
    const int64_t time_nanos = WallNowNanos();
    const std::string text = internal::HeapSampleText(tcmalloc);
    // A gperftools without the exported flag: the text says it instead.
    if (text.rfind("%warn", 0) == 0) return SamplingOff();
    SLEUTH_ASSIGN_OR_RETURN(profiles::RawProfile profile, profiles::ParseTcmallocHeapSample(text));
    profile.time_nanos = time_nanos;
    Capture capture;
    capture.profile = std::move(profile);
    capture.notes.push_back("heap sampled by tcmalloc (" + tcmalloc.library_path +
                            ") about every " + std::to_string(capture.profile.period) +
                            " bytes allocated");
    return capture;
  } catch (const std::exception& e) {
    return Internal(std::string("heap profile failed: ") + e.what());
  }
}

Result<std::string> EnableTcmallocSampling(int64_t sample_bytes) {
  if (sample_bytes < 1 || sample_bytes > kMaxSampleBytes) {
    return InvalidArgument("heap sample period " + std::to_string(sample_bytes) +
                           " bytes is out of range: use 1 byte to 2^58 bytes (512KiB is usual)");
  }
  const internal::Tcmalloc tcmalloc = internal::FindTcmalloc();
  if (tcmalloc.extension == nullptr) return TcmallocMissing(tcmalloc);
  if (!tcmalloc.can_sample) return CannotSample(tcmalloc);
  if (tcmalloc.sample_parameter == nullptr) {
    return Unavailable(
        "this tcmalloc does not export its sampling period; set TCMALLOC_SAMPLE_PARAMETER=" +
        std::to_string(sample_bytes) + " in the host's environment instead");
  }
  std::atomic_ref<int64_t> period(*tcmalloc.sample_parameter);
  int64_t current = 0;
  if (period.compare_exchange_strong(current, sample_bytes, std::memory_order_relaxed)) {
    return "tcmalloc heap sampling turned on, one sample every " + std::to_string(sample_bytes) +
           " bytes on average; allocations made before now are not in heap profiles";
  }
  if (current == sample_bytes) {
    return "tcmalloc heap sampling already on at " + std::to_string(current) + " bytes";
  }
  return "tcmalloc heap sampling already on at " + std::to_string(current) +
         " bytes (set by the host); keeping it rather than " + std::to_string(sample_bytes);
}

}  // namespace sleuth::capture
