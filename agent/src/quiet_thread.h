// Threads of the agent never take the host's signals: each one starts with
// every signal blocked (a new thread inherits its creator's mask), and any
// library that starts threads for us (prometheus-cpp's civetweb, libcurl's
// resolver) is called with every signal blocked too.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <exception>
#include <functional>
#include <string>
#include <thread>

#include "sleuth/common/log.h"
#include "sleuth/common/status.h"

namespace sleuth::agent {

// Blocks every signal in the calling thread for its lifetime, then restores
// the previous mask.
class ScopedBlockAllSignals {
 public:
  ScopedBlockAllSignals() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  ~ScopedBlockAllSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  ScopedBlockAllSignals(const ScopedBlockAllSignals&) = delete;
  ScopedBlockAllSignals& operator=(const ScopedBlockAllSignals&) = delete;

 private:
  sigset_t old_;
};

// Starts `body` on a new thread named `name` (at most 15 characters) with
// every signal blocked. An exception escaping `body` is logged, never
// propagated into the host. Fails (kUnavailable) when no thread can be made.
inline Result<std::thread> StartQuietThread(const char* name, std::function<void()> body) {
  ScopedBlockAllSignals quiet;
  try {
    return std::thread([name, body = std::move(body)] {
      pthread_setname_np(pthread_self(), name);
      try {
        body();
      } catch (const std::exception& e) {
        log::Error(std::string(name) + " stopped by an unexpected error: " + e.what());
      } catch (...) {
        log::Error(std::string(name) + " stopped by an unexpected error");
      }
    });
  } catch (const std::exception& e) {
    return Unavailable(std::string("cannot start thread ") + name + ": " + e.what());
  }
}

}  // namespace sleuth::agent
