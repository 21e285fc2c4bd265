#include "sleuth/common/clock.h"

#include <time.h>

namespace sleuth {
namespace {
std::chrono::nanoseconds Read(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}
}  // namespace

std::chrono::nanoseconds SystemClock::Monotonic() const { return Read(CLOCK_MONOTONIC); }
std::chrono::nanoseconds SystemClock::Wall() const { return Read(CLOCK_REALTIME); }

const SystemClock& SystemClock::Instance() {
  // Never destroyed: agent threads may still read it while the process's
  // static destructors run at exit.
  static const SystemClock* clock = new SystemClock;
  return *clock;
}

}  // namespace sleuth
