// Child processes for the live tests: a spinner, a thread holder and a
// waiter, each killed and reaped when the test ends however it ends.
#pragma once

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>

namespace sleuth::collectors::testing {

// Owns a forked child: kills (SIGKILL) and reaps it on destruction.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (release_fd_ >= 0) ::close(release_fd_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      Reap();
    }
  }

  // A child that burns one core until killed.
  static void Spinner(ChildProcess* child) {
    child->pid_ = ::fork();
    ASSERT_GE(child->pid_, 0) << "fork failed";
    if (child->pid_ == 0) {
      volatile uint64_t counter = 0;
      for (;;) counter = counter + 1;
    }
  }

  // A child running `extra_threads` threads besides its main one, all
  // blocked until Release(); then it exits with status 0. Returns once every
  // thread has started.
  static void Waiter(ChildProcess* child, int extra_threads) {
    int ready[2], release[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(release), 0);
    child->pid_ = ::fork();
    ASSERT_GE(child->pid_, 0) << "fork failed";
    if (child->pid_ == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      static int release_fd;
      release_fd = release[0];
      for (int i = 0; i < extra_threads; ++i) {
        pthread_t thread;
        auto block = [](void*) -> void* {
          char byte;
          while (::read(release_fd, &byte, 1) > 0) {
          }
          return nullptr;
        };
        if (::pthread_create(&thread, nullptr, block, nullptr) != 0) ::_exit(2);
        char name[32];
        ::snprintf(name, sizeof name, "worker-%d", i);
        name[15] = '\0';  // the kernel's limit for thread names
        ::pthread_setname_np(thread, name);
      }
      char byte = 'r';
      if (::write(ready[1], &byte, 1) != 1) ::_exit(3);
      while (::read(release_fd, &byte, 1) > 0) {
      }
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    child->release_fd_ = release[1];
    char byte;
    ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "child did not start its threads";
    ::close(ready[0]);
  }

  // Lets a Waiter exit (EOF on its pipe) without reaping it: it becomes a
  // zombie until Reap().
  void Release() {
    ::close(release_fd_);
    release_fd_ = -1;
  }

  // Waits for the child to exit; returns its wait status.
  int Reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return status;
  }

  // Blocks until the child has exited, leaving it unreaped (a zombie).
  bool WaitUntilZombie() {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) == 0;
  }

  pid_t pid() const { return pid_; }

  // The child's CPU time (utime + stime) in ns from its CPU-time clock: an
  // independent measure to hold the sampler against.
  uint64_t CpuTimeNs() const {
    clockid_t clock;
    if (::clock_getcpuclockid(pid_, &clock) != 0) return 0;
    timespec ts{};
    if (::clock_gettime(clock, &ts) != 0) return 0;
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
  }

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;
  bool reaped_ = false;
};

}  // namespace sleuth::collectors::testing
