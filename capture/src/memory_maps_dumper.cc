#include "sleuth/capture/memory_maps_dumper.h"

#include <time.h>
#include <unistd.h>

#include "sleuth/common/files.h"
#include "sleuth/profiles/memory_maps.h"

namespace sleuth::capture {

Status MemoryMapsDumper::Available() const {
  if (access(smaps_path_.c_str(), R_OK) != 0) {
    return ErrnoStatus("cannot read " + smaps_path_ + " (is /proc mounted?)", errno);
  }
  return Status::Ok();
}

Result<Capture> MemoryMapsDumper::Collect(const CaptureRequest&) {
  try {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    // smaps of a process with many mappings runs to megabytes; 256 MiB is
    // far beyond any real one and still bounds a broken read.
    SLEUTH_ASSIGN_OR_RETURN(std::string text, ReadFile(smaps_path_, size_t{256} << 20));
    Result<profiles::RawProfile> profile = profiles::MemoryMapsProfile(text);
    if (!profile.ok()) return profile.status().WithContext(smaps_path_);
    Capture capture;
    capture.profile = std::move(profile).value();
    capture.profile.time_nanos = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    return capture;
  } catch (const std::exception& e) {
    return Internal(std::string("memory maps dump failed: ") + e.what());
  }
}

}  // namespace sleuth::capture
