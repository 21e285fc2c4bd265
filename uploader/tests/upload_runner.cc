// sleuth_upload_runner --dir DIR --url URL [--protocol P] [--concurrency N]
//                      [--timeout-ms N]
// Runs one-shot Uploader over DIR, the way `sleuth upload` does, then prints
//   delivered=N left=M vmhwm_kib=K sanitized=0|1
// and exits 0 if nothing is left. The slow tests kill it with SIGKILL in the
// middle of a queue, and read its peak memory.
#include <cstdio>
#include <cstring>
#include <string>

#include "sleuth/common/clock.h"
#include "sleuth/common/files.h"
#include "sleuth/uploader/uploader.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kSanitized = 1;
#else
constexpr int kSanitized = 0;
#endif

namespace {

long PeakRssKib() {
  sleuth::Result<std::string> status = sleuth::ReadFile("/proc/self/status");
  if (!status.ok()) return -1;
  size_t at = status->find("VmHWM:");
  return at == std::string::npos ? -1 : std::stol(status->substr(at + 6));
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, url, protocol = "pyroscope";
  int concurrency = 2;
  long timeout_ms = 5000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--dir")
      dir = value;
    else if (flag == "--url")
      url = value;
    else if (flag == "--protocol")
      protocol = value;
    else if (flag == "--concurrency")
      concurrency = std::stoi(value);
    else if (flag == "--timeout-ms")
      timeout_ms = std::stol(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (dir.empty() || url.empty()) {
    std::fprintf(stderr, "usage: %s --dir DIR --url URL [--protocol P] [--concurrency N]\n",
                 argv[0]);
    return 2;
  }
  sleuth::config::UploadSection cfg;
  sleuth::config::SinkConfig sink;
  sink.url = url;
  sink.protocol = protocol;
  cfg.sinks.push_back(sink);
  cfg.concurrency = concurrency;
  cfg.timeout = std::chrono::milliseconds(timeout_ms);
  cfg.retry_initial = std::chrono::milliseconds(20);
  cfg.retry_max = std::chrono::milliseconds(200);
  sleuth::uploader::UploaderOptions options;
  options.exit_when_drained = true;
  options.wait_for_lock = false;
  sleuth::uploader::Uploader uploader(cfg, dir, nullptr, sleuth::SystemClock::Instance(), options);
  if (sleuth::Status s = uploader.Start(); !s.ok()) {
    std::fprintf(stderr, "upload_runner: %s\n", s.message().c_str());
    return 3;
  }
  while (!uploader.WaitDone(std::chrono::seconds(1))) {
  }
  uploader.Stop(std::chrono::nanoseconds(0));
  unsigned long long left = 0;
  (void)uploader.ForEachUndelivered([&](const sleuth::uploader::Undelivered&) { ++left; });
  std::printf("delivered=%llu left=%llu vmhwm_kib=%ld sanitized=%d\n",
              static_cast<unsigned long long>(uploader.Stats().delivered), left, PeakRssKib(),
              kSanitized);
  return left == 0 ? 0 : 1;
}
