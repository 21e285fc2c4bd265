// A try-lock for process-wide capture mechanisms that survives fork: it
// records the pid of the holding process, so a child forked while its
// parent held it (whose holding thread does not exist in the child) can take
// it over instead of finding it held forever. Thread-safety: thread safe.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <atomic>

namespace sleuth::capture::internal {

class ScopedProcessTryLock {
 public:
  explicit ScopedProcessTryLock(std::atomic<pid_t>& owner_pid) : owner_pid_(owner_pid) {
    const pid_t self = getpid();
    pid_t current = 0;
    if (owner_pid_.compare_exchange_strong(current, self)) {
      locked_ = true;
    } else if (current != self) {
      // Held by the parent this process was forked from.
      locked_ = owner_pid_.compare_exchange_strong(current, self);
    }
  }
  ~ScopedProcessTryLock() {
    if (locked_) owner_pid_.store(0);
  }
  ScopedProcessTryLock(const ScopedProcessTryLock&) = delete;
  ScopedProcessTryLock& operator=(const ScopedProcessTryLock&) = delete;

  bool locked() const { return locked_; }

 private:
  std::atomic<pid_t>& owner_pid_;
  bool locked_ = false;
};

}  // namespace sleuth::capture::internal
