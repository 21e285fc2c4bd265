// bench_host: workloads for the agent benchmarks (bench/agent/agent_bench.py).
//   work MS          burn one core for MS milliseconds of fixed work batches;
//                    prints the number of batches done (throughput)
//   fixed N          do exactly N batches of work and exit (CPU time is then
//                    compared with and without the agent)
//   pause THREADS K  park THREADS threads, take K thread dumps via
//                    sleuth_dump, and report the longest stall a spinning
//                    host thread saw during each dump
//   idle MS          sleep
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
volatile uint64_t g_sink;

__attribute__((noinline)) uint64_t WorkBatch(uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 200000; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}

int Work(int ms) {
  auto until = Clock::now() + std::chrono::milliseconds(ms);
  uint64_t batches = 0, x = 1;
  while (Clock::now() < until) {
    x = WorkBatch(x);
    batches++;
  }
  g_sink = x;
  std::printf("batches %llu\n", static_cast<unsigned long long>(batches));
  return 0;
}

int Fixed(long n) {
  uint64_t x = 1;
  for (long i = 0; i < n; i++) x = WorkBatch(x);
  g_sink = x;
  std::printf("done\n");
  return 0;
}

std::mutex g_mu;
std::condition_variable g_cv;
bool g_release = false;

// Complete dumps (sidecars) in the agent's dump directory.
int CountSidecars() {
  const char* dir = std::getenv("SLEUTH_AGENT_DUMP_DIR");
  DIR* d = dir != nullptr ? opendir(dir) : nullptr;
  if (d == nullptr) return 0;
  int n = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) n++;
  }
  closedir(d);
  return n;
}

int Pause(int threads, int dumps) {
  using DumpFn = int (*)(const char*, const char*);
  auto dump = reinterpret_cast<DumpFn>(dlsym(RTLD_DEFAULT, "sleuth_dump"));
  if (!dump) {
    std::fprintf(stderr, "bench_host: run with libsleuth.so preloaded\n");
    return 2;
  }
  std::vector<std::thread> parked;
  for (int i = 0; i < threads; i++)
    parked.emplace_back([] {
      std::unique_lock<std::mutex> lock(g_mu);
      g_cv.wait(lock, [] { return g_release; });
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // A spinning thread measures the longest gap between two of its clock
  // reads: the time it was stopped (for its own stack walk and the wait).
  std::atomic<bool> stop{false};
  std::atomic<int64_t> worst_ns{0};
  std::thread spinner([&] {
    auto last = Clock::now();
    while (!stop) {
      auto now = Clock::now();
      int64_t gap = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last).count();
      if (gap > worst_ns) worst_ns = gap;
      last = now;
    }
  });
  std::vector<double> worst_ms;
  for (int k = 0; k < dumps; k++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    worst_ns = 0;
    const int before = CountSidecars();
    while (dump("threads", "bench") != 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // The whole dump, however long it takes (bounded): the stall can come
    // at any point of it.
    auto give_up = Clock::now() + std::chrono::seconds(30);
    while (CountSidecars() <= before && Clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    worst_ms.push_back(static_cast<double>(worst_ns.load()) / 1e6);
  }
  stop = true;
  spinner.join();
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_release = true;
  }
  g_cv.notify_all();
  for (auto& t : parked) t.join();
  std::sort(worst_ms.begin(), worst_ms.end());
  std::printf("stall_ms median %.3f max %.3f\n", worst_ms[worst_ms.size() / 2], worst_ms.back());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_host work MS | fixed N | pause THREADS DUMPS | idle MS\n");
    return 2;
  }
  if (!std::strcmp(argv[1], "work")) return Work(atoi(argv[2]));
  if (!std::strcmp(argv[1], "fixed")) return Fixed(atol(argv[2]));
  if (!std::strcmp(argv[1], "pause")) return Pause(atoi(argv[2]), argc > 3 ? atoi(argv[3]) : 10);
  if (!std::strcmp(argv[1], "idle")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(atoi(argv[2])));
    return 0;
  }
  return 2;
}
