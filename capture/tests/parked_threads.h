// Test support: threads parked in a known function, so a thread dump can be
// checked against what each thread is really doing.
#pragma once

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sleuth/profiles/profile.h"

// The function parked threads wait in. It lives in its own section so a test
// knows its exact address range from the linker's __start_/__stop_ symbols,
// without trusting any symbolizer.
__attribute__((noinline, section("sleuth_parked_text"))) static void SleuthParkedInKnownFunction(
    std::atomic<uint32_t>* wake_word, uint32_t seen) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(wake_word), FUTEX_WAIT_PRIVATE, seen, nullptr,
          nullptr, 0);
  asm volatile("" ::: "memory");  // keeps code after the call, so the return address is inside
}
extern "C" char __start_sleuth_parked_text[];
extern "C" char __stop_sleuth_parked_text[];

namespace sleuth::capture::testing {

inline bool InParkingFunction(uint64_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__start_sleuth_parked_text) &&
         pc < reinterpret_cast<uintptr_t>(__stop_sleuth_parked_text);
}

// True if the stack (leaf first, leaf exact, others return addresses) has a
// frame inside the parking function.
inline bool StackInParkingFunction(const std::vector<uint64_t>& pcs) {
  for (size_t i = 0; i < pcs.size(); ++i) {
    if (InParkingFunction(i == 0 ? pcs[i] : pcs[i] - 1)) return true;
  }
  return false;
}

inline const profiles::Label* FindLabel(const profiles::RawSample& sample, const std::string& key) {
  for (const profiles::Label& label : sample.labels) {
    if (label.key == key) return &label;
  }
  return nullptr;
}

inline pid_t Gettid() {
  return static_cast<pid_t>(syscall(SYS_gettid));
}

// Starts `count` threads named "<prefix><i>", each parked in
// SleuthParkedInKnownFunction until the object is destroyed. SetBlocked()
// makes them block (or unblock) every signal, the way many thread pools run.
class ParkedThreads {
 public:
  explicit ParkedThreads(int count, std::string prefix = "park-", bool block_all_signals = false)
      : prefix_(std::move(prefix)), want_blocked_(block_all_signals ? 1 : 0) {
    tids_.resize(static_cast<size_t>(count));
    threads_.resize(static_cast<size_t>(count));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    for (int i = 0; i < count; ++i) {
      args_.push_back({this, i});
    }
    for (int i = 0; i < count; ++i) {
      if (pthread_create(&threads_[i], &attr, &ParkedThreads::Main, &args_[i]) != 0) abort();
    }
    pthread_attr_destroy(&attr);
    WaitForAcks(static_cast<uint32_t>(count));
  }
  ~ParkedThreads() {
    stop_.store(1);
    Wake();
    for (pthread_t t : threads_) pthread_join(t, nullptr);
  }
  ParkedThreads(const ParkedThreads&) = delete;
  ParkedThreads& operator=(const ParkedThreads&) = delete;

  const std::vector<pid_t>& tids() const { return tids_; }
  std::string NameOf(size_t i) const { return prefix_ + std::to_string(i); }

  // Makes every thread block (or unblock) all signals; returns once all are
  // parked again with the new mask.
  void SetBlocked(bool blocked) {
    const uint32_t acks = acks_.load();
    want_blocked_.store(blocked ? 1 : 0);
    Wake();
    WaitForAcks(acks + static_cast<uint32_t>(threads_.size()));
  }

 private:
  // The state letter of /proc/self/task/<tid>/stat ('R', 'S', ...).
  static char StateOf(pid_t tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
    FILE* file = fopen(path, "re");
    if (file == nullptr) return '?';
    char buffer[512] = {};
    const size_t n = fread(buffer, 1, sizeof buffer - 1, file);
    fclose(file);
    const char* close_paren = strrchr(buffer, ')');  // the name may hold spaces
    return n > 0 && close_paren != nullptr && close_paren[1] == ' ' ? close_paren[2] : '?';
  }

  // Waits until `target` acknowledgements arrived, then until each thread
  // sleeps, which after acknowledging it only does in the parking function.
  void WaitForAcks(uint32_t target) {
    while (true) {
      const uint32_t seen = acks_.load();
      if (seen >= target) break;
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&acks_), FUTEX_WAIT_PRIVATE, seen, nullptr,
              nullptr, 0);
    }
    for (pid_t tid : tids_) {
      while (StateOf(tid) != 'S') sched_yield();
    }
  }

  struct Arg {
    ParkedThreads* self;
    int index;
  };
  void Wake() {
    wake_.fetch_add(1);
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&wake_), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
            nullptr, 0);
  }
  void Ack() {
    acks_.fetch_add(1);
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&acks_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr,
            0);
  }
  static void ApplyMask(int blocked) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &all, nullptr);
  }
  static void* Main(void* raw) {
    auto* arg = static_cast<Arg*>(raw);
    ParkedThreads* self = arg->self;
    int blocked = self->want_blocked_.load();
    ApplyMask(blocked);
    pthread_setname_np(pthread_self(), self->NameOf(static_cast<size_t>(arg->index)).c_str());
    self->tids_[static_cast<size_t>(arg->index)] = Gettid();
    self->Ack();
    while (self->stop_.load() == 0) {
      const uint32_t seen = self->wake_.load();
      if (const int want = self->want_blocked_.load(); want != blocked) {
        ApplyMask(want);
        blocked = want;
        self->Ack();
        continue;
      }
      if (self->stop_.load() != 0) break;
      SleuthParkedInKnownFunction(&self->wake_, seen);
    }
    return nullptr;
  }

  std::string prefix_;
  std::vector<pid_t> tids_;
  std::vector<pthread_t> threads_;
  std::vector<Arg> args_;
  std::atomic<uint32_t> acks_{0};
  std::atomic<uint32_t> wake_{0};
  std::atomic<int> stop_{0};
  std::atomic<int> want_blocked_;
};

}  // namespace sleuth::capture::testing
