// The clock, injected wherever time matters so tests need no real time.
#pragma once

#include <chrono>
#include <cstdint>

namespace sleuth {

// Thread-safety: implementations are thread safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time since an arbitrary epoch, for intervals and cooldowns.
  virtual std::chrono::nanoseconds Monotonic() const = 0;
  // Wall-clock time since the Unix epoch, for timestamps in dumps.
  virtual std::chrono::nanoseconds Wall() const = 0;
};

// CLOCK_MONOTONIC and CLOCK_REALTIME.
class SystemClock final : public Clock {
 public:
  std::chrono::nanoseconds Monotonic() const override;
  std::chrono::nanoseconds Wall() const override;
  // A process-wide instance.
  static const SystemClock& Instance();
};

// A clock tests move by hand. Not thread safe.
class FakeClock final : public Clock {
 public:
  std::chrono::nanoseconds Monotonic() const override { return now_; }
  std::chrono::nanoseconds Wall() const override { return wall_base_ + now_; }
  void Advance(std::chrono::nanoseconds d) { now_ += d; }
  void Set(std::chrono::nanoseconds t) { now_ = t; }

 private:
  std::chrono::nanoseconds now_{0};
  std::chrono::nanoseconds wall_base_{std::chrono::seconds(1'700'000'000)};
};

}  // namespace sleuth
