// Threads of the agent never take the host's signals: each one starts with
// every signal blocked (a new thread inherits its creator's mask), and any
// library that starts threads for us (prometheus-cpp's civetweb, libcurl's
// resolver) is called with every signal blocked too.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <exception>
#include <new>
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
// propagated into the host; the handlers allocate nothing, since the
// exception is often std::bad_alloc from a host that ran out of memory.
// Fails (kUnavailable) when no thread can be made.
inline Result<std::thread> StartQuietThread(const char* name, std::function<void()> body) {
  ScopedBlockAllSignals quiet;
  try {
    return std::thread([name, body = std::move(body)]() noexcept {
      pthread_setname_np(pthread_self(), name);
      try {
        body();
      } catch (const std::bad_alloc&) {
        log::Error("an agent thread stopped: out of memory; the host goes on without it");
      } catch (const std::exception& e) {
        char line[256];
        std::snprintf(line, sizeof line, "%s stopped by an unexpected error: %s", name, e.what());
        log::Error(line);
      } catch (...) {
        log::Error("an agent thread stopped by an unexpected error");
      }
    });
  } catch (...) {  // std::system_error or std::bad_alloc; no allocation here either
    return Status(StatusCode::kUnavailable, "cannot start an agent thread");
  }
}

}  // namespace sleuth::agent
