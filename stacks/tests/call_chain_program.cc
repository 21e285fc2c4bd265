// Burns CPU in SleuthChainLeaf (via Outer -> Middle) in two threads, one of
// which blocks every signal, and prints "ready <tid> <blocking tid>" once
// both run. Exits after argv[1] seconds (default 120) so that a crashed
// test leaves nothing behind; tests kill it sooner.
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "call_chain.h"

int main(int argc, char** argv) {
  const int lifetime_s = argc > 1 ? std::atoi(argv[1]) : 120;
  static std::atomic<bool> stop{false};
  std::atomic<long> plain_tid{0};
  std::atomic<long> blocking_tid{0};
  std::thread plain([&] {
    plain_tid.store(syscall(SYS_gettid));
    SleuthChainRun(&stop);
  });
  std::thread blocking([&] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    blocking_tid.store(syscall(SYS_gettid));
    SleuthChainRun(&stop);
  });
  while (plain_tid.load() == 0 || blocking_tid.load() == 0) usleep(1000);
  std::printf("ready %ld %ld\n", plain_tid.load(), blocking_tid.load());
  std::fflush(stdout);
  sleep(static_cast<unsigned>(lifetime_s));
  stop.store(true);
  plain.join();
  blocking.join();
  return 0;
}
